// Package mksysimage is the transform oneSIS's mk-sysimage made, done inside
// a git work tree: every LINKFILE, LINKDIR and LINKBACK path P of
// etc/sysimage.conf is moved to P.default (.P.default for LINKBACK -h) and
// replaced by a symlink P -> /ram/P, and /ram is created. What was done is
// recorded in StateFile so that paths dropped from the configuration are
// restored on the next run, a second run changes nothing, and a revert
// gives back the original tree.
//
// Every operation is confined to the image with os.Root, and each parent
// component is checked to be a real directory, so no symlink of the image
// is ever followed.
package mksysimage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"

	"github.com/onesis/git-onesis/boot/personality"
	"github.com/onesis/git-onesis/boot/sysimage"
)

// Kind says what an Op does.
type Kind string

// The kinds of operation a transform holds.
const (
	// Mkdir creates a directory (mode 0755, owned by root) and records it.
	Mkdir Kind = "mkdir"
	// Link moves Path to Default (when Moved) and makes Path -> /ram/Path.
	Link Kind = "link"
	// Restore removes the link at Path and moves Default back (when Moved).
	Restore Kind = "restore"
	// Rmdir removes a directory the transform created, if it is empty.
	Rmdir Kind = "rmdir"
	// Record writes the state file with Data, or removes it when Data is nil.
	Record Kind = "record"
)

// Op is one change to the image.
type Op struct {
	Kind    Kind   `json:"kind"`
	Path    string `json:"path"`              // image-relative
	Default string `json:"default,omitempty"` // Link, Restore: the original's other name
	Moved   bool   `json:"moved,omitempty"`   // Link, Restore: the original moves
	Data    []byte `json:"-"`                 // Record: the new state file
	Why     string `json:"why,omitempty"`     // the directive behind it
}

// String renders the op as one line with paths as the image sees them.
func (o Op) String() string {
	var s string
	switch o.Kind {
	case Link:
		s = fmt.Sprintf("link    /%s -> %s", o.Path, ramTarget(o.Path))
		if o.Moved {
			s += fmt.Sprintf("  (original kept as /%s)", o.Default)
		}
	case Restore:
		s = fmt.Sprintf("restore /%s", o.Path)
		if o.Moved {
			s += fmt.Sprintf("  (from /%s)", o.Default)
		} else {
			s += "  (link removed)"
		}
	case Rmdir:
		s = fmt.Sprintf("rmdir   /%s  (if empty)", o.Path)
	case Record:
		if o.Data == nil {
			s = fmt.Sprintf("remove  /%s", o.Path)
		} else {
			s = fmt.Sprintf("record  /%s", o.Path)
		}
	default:
		s = fmt.Sprintf("%-7s /%s", o.Kind, o.Path)
	}
	if o.Why != "" {
		s += "    # " + o.Why
	}
	return s
}

// ramTarget is the text of the link the transform puts at p.
func ramTarget(p string) string { return personality.RamDir + "/" + p }

// ramDirRel is the image-relative ram dir.
var ramDirRel = strings.TrimPrefix(personality.RamDir, "/")

// Transform is a planned set of changes.
type Transform struct {
	Ops      []Op
	Warnings []string
}

// want is one path the configuration wants linked.
type want struct {
	path, def, kind, why string
}

// Plan works out what the transform must change in the image at root for
// cfg. Nothing is changed; an empty Ops means the image is already in step.
func Plan(root string, cfg *sysimage.Config) (*Transform, error) {
	img, err := personality.OpenDir(root)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	st, _, err := readState(img.Root)
	if err != nil {
		return nil, err
	}
	wants, err := wanted(img, cfg)
	if err != nil {
		return nil, err
	}
	t := &Transform{}
	next := &State{}
	planned := map[string]bool{} // dirs the plan creates

	// ensureDirs plans the missing directories of p's parent chain.
	ensureDirs := func(dir, why string) error {
		if dir == "." {
			return nil
		}
		comps := strings.Split(dir, "/")
		for i := range comps {
			d := strings.Join(comps[:i+1], "/")
			if planned[d] {
				continue
			}
			fi, err := img.Root.Lstat(d)
			switch {
			case err == nil && fi.IsDir():
				continue
			case err == nil:
				return fmt.Errorf("/%s is %s in the image, not a directory; cannot create /%s below it", d, kindWord(fi.Mode()), dir)
			case !errors.Is(err, fs.ErrNotExist):
				return fmt.Errorf("checking /%s in the image: %w", d, err)
			}
			t.Ops = append(t.Ops, Op{Kind: Mkdir, Path: d, Why: why})
			next.Dirs = append(next.Dirs, d)
			planned[d] = true
		}
		return nil
	}

	// Directories recorded earlier stay recorded while they exist.
	for _, d := range st.Dirs {
		if fi, err := img.Root.Lstat(d); err == nil && fi.IsDir() && personality.CheckParents(img.Root, d) == nil {
			next.Dirs = append(next.Dirs, d)
			planned[d] = true
		}
	}
	if err := ensureDirs(ramDirRel, "the node's tmpfs mount point"); err != nil {
		return nil, err
	}

	keep := map[string]bool{}
	for _, w := range wants {
		keep[w.path] = true
		rec, err := planLink(img, w, st, t, ensureDirs)
		if err != nil {
			return nil, err
		}
		next.Links = append(next.Links, rec)
	}
	for _, rec := range st.Links {
		if keep[rec.Path] {
			continue
		}
		op, warn, err := planRestore(img.Root, rec, "no longer in etc/sysimage.conf")
		if err != nil {
			return nil, err
		}
		if warn != "" {
			t.Warnings = append(t.Warnings, warn)
		}
		if op != nil {
			t.Ops = append(t.Ops, *op)
		}
	}
	data := next.Bytes()
	old, _ := img.Root.ReadFile(StateFile)
	if !bytes.Equal(old, data) {
		if err := ensureDirs(path.Dir(StateFile), "the transform's record"); err != nil {
			return nil, err
		}
		data = next.Bytes() // the record's own directory may have joined Dirs
		t.Ops = append(t.Ops, Op{Kind: Record, Path: StateFile, Data: data})
	}
	return t, nil
}

// planLink plans one wanted path and returns its record for the new state.
func planLink(img *personality.DirImage, w want, st *State, t *Transform, ensureDirs func(string, string) error) (LinkRecord, error) {
	p, def := w.path, w.def
	if err := personality.CheckParents(img.Root, p); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return LinkRecord{}, fmt.Errorf("%s: %w", w.why, err)
	}
	fi, err := img.Root.Lstat(p)
	exists := err == nil
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return LinkRecord{}, fmt.Errorf("%s: checking /%s: %w", w.why, p, err)
	}
	defExists := false
	if _, err := img.Root.Lstat(def); err == nil {
		defExists = true
	}
	if exists && fi.Mode()&fs.ModeSymlink != 0 {
		if l, err := img.Root.Readlink(p); err == nil && l == ramTarget(p) {
			// Already transformed (by us, or by mk-sysimage before).
			if rec, ok := st.link(p); ok {
				return rec, nil
			}
			return LinkRecord{Path: p, Default: def, Moved: defExists}, nil
		}
	}
	if exists {
		isDir := fi.IsDir()
		switch {
		case w.kind == "LINKDIR" && !isDir:
			return LinkRecord{}, fmt.Errorf("%s: /%s is %s in the image, not a directory; use LINKFILE", w.why, p, kindWord(fi.Mode()))
		case w.kind == "LINKFILE" && isDir:
			return LinkRecord{}, fmt.Errorf("%s: /%s is a directory in the image; use LINKDIR", w.why, p)
		case defExists:
			return LinkRecord{}, fmt.Errorf("%s: both /%s and /%s exist in the image; the transform would have to overwrite /%s. Remove or rename one of them", w.why, p, def, def)
		}
		t.Ops = append(t.Ops, Op{Kind: Link, Path: p, Default: def, Moved: true, Why: w.why})
		return LinkRecord{Path: p, Default: def, Moved: true}, nil
	}
	if err := ensureDirs(path.Dir(p), w.why); err != nil {
		return LinkRecord{}, fmt.Errorf("%s: %w", w.why, err)
	}
	t.Ops = append(t.Ops, Op{Kind: Link, Path: p, Default: def, Why: w.why})
	return LinkRecord{Path: p, Default: def}, nil
}

// planRestore plans undoing one recorded link. A path changed by hand since
// the transform is left alone with a warning.
func planRestore(root *os.Root, rec LinkRecord, why string) (*Op, string, error) {
	if err := personality.CheckParents(root, rec.Path); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Sprintf("/%s: its directory is gone; forgetting it", rec.Path), nil
		}
		return nil, "", fmt.Errorf("restoring /%s: %w", rec.Path, err)
	}
	fi, err := root.Lstat(rec.Path)
	ours := false
	if err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		l, _ := root.Readlink(rec.Path)
		ours = l == ramTarget(rec.Path)
	}
	if err == nil && !ours {
		return nil, fmt.Sprintf("/%s is no longer the transform's link to %s (changed by hand?); left as it is", rec.Path, ramTarget(rec.Path)), nil
	}
	if rec.Moved {
		if _, err := root.Lstat(rec.Default); err != nil {
			if !ours {
				return nil, "", nil
			}
			return &Op{Kind: Restore, Path: rec.Path, Default: rec.Default, Why: why},
				fmt.Sprintf("/%s is gone; removing the link /%s only", rec.Default, rec.Path), nil
		}
	}
	if !ours && !rec.Moved {
		return nil, "", nil
	}
	return &Op{Kind: Restore, Path: rec.Path, Default: rec.Default, Moved: rec.Moved, Why: why}, "", nil
}

// PlanRevert works out how to give the image back its original tree: every
// recorded link restored, the state file removed, and the directories the
// transform created removed when empty.
func PlanRevert(root string) (*Transform, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("opening the image at %s: %w", root, err)
	}
	defer r.Close()
	st, found, err := readState(r)
	if err != nil {
		return nil, err
	}
	t := &Transform{}
	if !found {
		t.Warnings = append(t.Warnings, fmt.Sprintf("no /%s: this image holds no transform made by git-onesis; nothing to revert", StateFile))
		return t, nil
	}
	for i := len(st.Links) - 1; i >= 0; i-- {
		op, warn, err := planRestore(r, st.Links[i], "--revert")
		if err != nil {
			return nil, err
		}
		if warn != "" {
			t.Warnings = append(t.Warnings, warn)
		}
		if op != nil {
			t.Ops = append(t.Ops, *op)
		}
	}
	t.Ops = append(t.Ops, Op{Kind: Record, Path: StateFile})
	for i := len(st.Dirs) - 1; i >= 0; i-- {
		t.Ops = append(t.Ops, Op{Kind: Rmdir, Path: st.Dirs[i], Why: "created by the transform"})
	}
	return t, nil
}

// readState loads the state file; found is false when there is none.
func readState(r *os.Root) (*State, bool, error) {
	if err := personality.CheckParents(r, StateFile); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return &State{}, false, nil
		}
		return nil, false, fmt.Errorf("reading /%s: %w", StateFile, err)
	}
	f, err := personality.OpenNoFollow(r, StateFile, false)
	if errors.Is(err, fs.ErrNotExist) {
		return &State{}, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading /%s: %w", StateFile, err)
	}
	defer f.Close()
	var b bytes.Buffer
	if _, err := b.ReadFrom(f); err != nil {
		return nil, false, fmt.Errorf("reading /%s: %w", StateFile, err)
	}
	st, err := ParseState(b.Bytes())
	if err != nil {
		return nil, false, err
	}
	return st, true, nil
}

// wanted lists the paths the configuration links, globs expanded against
// the image, later directives winning, after refusing the paths that can
// never be links.
func wanted(img *personality.DirImage, cfg *sysimage.Config) ([]want, error) {
	if cfg == nil {
		return nil, errors.New("no sysimage configuration was given")
	}
	byPath := map[string]want{}
	var order []string
	add := func(w want) error {
		if err := linkable(w.path); err != nil {
			return fmt.Errorf("%s: %w", w.why, err)
		}
		if _, ok := byPath[w.path]; !ok {
			order = append(order, w.path)
		}
		byPath[w.path] = w
		return nil
	}
	for _, e := range cfg.Ram {
		if !e.Link() {
			continue
		}
		why := fmt.Sprintf("%s %s (%s:%d)", e.Kind, e.Path, e.Pos.File, e.Pos.Line)
		paths, err := personality.Expand(img, e.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", why, err)
		}
		for _, p := range paths {
			if err := add(want{path: p, def: p + ".default", kind: e.Kind, why: why}); err != nil {
				return nil, err
			}
		}
	}
	for _, lb := range cfg.Linkbacks {
		why := fmt.Sprintf("LINKBACK %s %s (%s:%d)", lb.Path, lb.Target, lb.Pos.File, lb.Pos.Line)
		p, err := personality.Rel(lb.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", why, err)
		}
		def := p + ".default"
		if lb.Hidden {
			dir, base := path.Split(p)
			def = dir + "." + base + ".default"
		}
		if err := add(want{path: p, def: def, kind: "LINKBACK", why: why}); err != nil {
			return nil, err
		}
	}
	sort.Strings(order)
	for i := 1; i < len(order); i++ {
		for j := 0; j < i; j++ {
			if strings.HasPrefix(order[i], order[j]+"/") {
				return nil, fmt.Errorf("%s: /%s lies inside /%s, which %s also links into %s; a path cannot be linked inside a linked directory",
					byPath[order[i]].why, order[i], order[j], byPath[order[j]].why, personality.RamDir)
			}
		}
	}
	out := make([]want, 0, len(order))
	for _, p := range order {
		out = append(out, byPath[p])
	}
	return out, nil
}

// linkable refuses paths that can never be links into /ram: the files
// oneSIS names (sysimage.NotLinkable), anything holding them, the ram dir,
// the state file and git's own files.
func linkable(p string) error {
	if p == "." {
		return errors.New("the image root cannot be linked into " + personality.RamDir)
	}
	if p == ramDirRel || strings.HasPrefix(p, ramDirRel+"/") {
		return fmt.Errorf("/%s is inside %s itself", p, personality.RamDir)
	}
	first, _, _ := strings.Cut(p, "/")
	if first == ".git" || p == ".gitmeta" || p == ".gitignore" || p == ".gitattributes" {
		return fmt.Errorf("/%s belongs to git and cannot be a link", p)
	}
	never := append(append([]string{}, sysimage.NotLinkable...), StateFile)
	for _, n := range never {
		n = strings.TrimPrefix(path.Clean("/"+n), "/")
		if p == n {
			return fmt.Errorf("/%s cannot be a link into %s: the node needs it before %s exists (oneSIS forbids it too)", p, personality.RamDir, personality.RamDir)
		}
		if strings.HasPrefix(n, p+"/") {
			return fmt.Errorf("/%s cannot be linked into %s: it holds /%s, which must stay in the image", p, personality.RamDir, n)
		}
	}
	return nil
}

// kindWord is an object type in words.
func kindWord(m fs.FileMode) string {
	switch m.Type() {
	case 0:
		return "a regular file"
	case fs.ModeDir:
		return "a directory"
	case fs.ModeSymlink:
		return "a symlink"
	}
	return "a special file"
}
