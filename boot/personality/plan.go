// Package personality is the engine that gives a diskless node its
// personality at boot, the work oneSIS's rc.preinit did. From the shared
// image, the parsed etc/sysimage.conf and the node's hostname it builds a
// Plan: mount the /ram tmpfs, create the RAMDIR, RAMFILE, LINKDIR and
// LINKFILE entries (empty, or copied from the image with -d, with owner
// and mode mirrored from the image unless -m, -u or -g say otherwise), and
// point every LINKBACK at the variant the node should see. Execute then
// carries the plan out into a /ram directory.
//
// Both halves treat the image as hostile: it is read through os.Root with
// every parent component checked to be a real directory, symlinks are
// never followed (a symlink copied with -d stays a symlink with the same
// text), and links created in /ram hold the absolute image path as text,
// never resolved on the machine running the engine.
package personality

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/onesis/git-onesis/boot/sysimage"
)

// RamDir is where the node mounts its tmpfs, and so the prefix of every
// link the transform puts in the image.
const RamDir = "/ram"

// Kind says what a Step does.
type Kind string

// The kinds of step a plan holds.
const (
	// Mount mounts a tmpfs on the ram dir with the step's Options; the
	// caller performs it (Execute only does so through ExecOptions.Mount).
	Mount Kind = "mount"
	// Mkdir creates a directory (an existing directory is kept).
	Mkdir Kind = "mkdir"
	// Copy copies Source from the image (a file, a symlink as a symlink, or
	// a directory tree) with owners and modes.
	Copy Kind = "copy"
	// Touch creates an empty regular file.
	Touch Kind = "touch"
	// Symlink creates a symlink whose text is Target.
	Symlink Kind = "symlink"
	// Chown sets the owner of Path itself (never a symlink's target).
	Chown Kind = "chown"
	// Chmod sets the mode of Path (skipped for a symlink).
	Chmod Kind = "chmod"
)

// Mode is a permission mode that prints and encodes in octal ("0755").
type Mode uint32

func (m Mode) String() string { return fmt.Sprintf("%04o", uint32(m)) }

// MarshalJSON encodes the mode as an octal string.
func (m Mode) MarshalJSON() ([]byte, error) { return json.Marshal(m.String()) }

// UnmarshalJSON decodes an octal string.
func (m *Mode) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := strconv.ParseUint(s, 8, 32)
	if err != nil || v > 0o7777 {
		return fmt.Errorf("mode %q is not an octal permission mode", s)
	}
	*m = Mode(v)
	return nil
}

// Step is one action of a plan.
type Step struct {
	Kind Kind `json:"kind"`
	// Path is the object inside the ram dir, relative to it ("etc/fstab";
	// "." is the ram dir itself).
	Path string `json:"path"`
	// Source is the image-relative object a Copy reads.
	Source string `json:"source,omitempty"`
	// Target is a Symlink's text: an absolute path in the image.
	Target string `json:"target,omitempty"`
	// Options are a Mount's tmpfs options ("size=500m,mode=0755").
	Options string `json:"options,omitempty"`
	// UID and GID are a Chown's new owner.
	UID uint32 `json:"uid,omitempty"`
	GID uint32 `json:"gid,omitempty"`
	// Mode is a Chmod's new mode.
	Mode Mode `json:"mode,omitempty"`
	// Why names the directive (and its file and line) behind the step.
	Why string `json:"why,omitempty"`
}

// String renders the step as one line, with paths as the node sees them.
func (s Step) String() string {
	p := ramPath(s.Path)
	var line string
	switch s.Kind {
	case Mount:
		line = fmt.Sprintf("mount   tmpfs on %s (%s)", RamDir, s.Options)
	case Copy:
		line = fmt.Sprintf("copy    /%s -> %s", s.Source, p)
	case Symlink:
		line = fmt.Sprintf("symlink %s -> %s", p, s.Target)
	case Chown:
		line = fmt.Sprintf("chown   %d:%d %s", s.UID, s.GID, p)
	case Chmod:
		line = fmt.Sprintf("chmod   %s %s", s.Mode, p)
	default:
		line = fmt.Sprintf("%-7s %s", s.Kind, p)
	}
	if s.Why != "" {
		line += "    # " + s.Why
	}
	return line
}

// ramPath is a ram-relative path as the node sees it.
func ramPath(p string) string {
	if p == "." || p == "" {
		return RamDir
	}
	return RamDir + "/" + p
}

// Plan is what a node does to its /ram at boot.
type Plan struct {
	Host     string   `json:"host"`
	Class    string   `json:"class"`
	Classes  []string `json:"classes"`
	Props    []string `json:"properties"`
	Steps    []Step   `json:"steps"`
	Warnings []string `json:"warnings,omitempty"`
}

// Write prints the plan for an admin: the node, then one step a line.
func (p *Plan) Write(w io.Writer) error {
	class := p.Class
	if class == "" {
		class = "(none)"
	}
	fmt.Fprintf(w, "# host %s  class %s", p.Host, class)
	if len(p.Classes) > 1 {
		fmt.Fprintf(w, " (%s)", strings.Join(p.Classes, " -> "))
	}
	props := "(none)"
	if len(p.Props) > 0 {
		props = strings.Join(p.Props, ",")
	}
	fmt.Fprintf(w, "  properties %s\n", props)
	for _, s := range p.Steps {
		if _, err := fmt.Fprintln(w, s.String()); err != nil {
			return err
		}
	}
	return nil
}

// Default modes for objects the image has no model for.
const (
	defaultDirMode  = 0o755
	defaultFileMode = 0o644
)

// planner accumulates the steps of one plan.
type planner struct {
	img   Image
	cfg   *sysimage.Config
	node  *sysimage.Node
	plan  *Plan
	made  map[string]bool // ram-relative paths the plan creates
	names *idNames
}

// Build plans the personality of host from the image and its parsed
// configuration. classOverride is the classname= kernel argument ("" for
// none). Existence checks and owner/mode mirroring consult img, which
// never follows the image's symlinks.
func Build(img Image, cfg *sysimage.Config, host, classOverride string) (*Plan, error) {
	if cfg == nil {
		return nil, errors.New("no sysimage configuration was given")
	}
	node, err := cfg.Resolve(host, classOverride)
	if err != nil {
		return nil, fmt.Errorf("resolving the class of %s: %w", host, err)
	}
	props := append([]string(nil), node.Props...)
	sort.Strings(props)
	pl := &planner{
		img: img, cfg: cfg, node: node, made: map[string]bool{},
		plan: &Plan{Host: host, Class: node.Class, Classes: node.Classes, Props: props},
	}
	if pl.plan.Classes == nil {
		pl.plan.Classes = []string{}
	}
	if pl.plan.Props == nil {
		pl.plan.Props = []string{}
	}
	pl.mount()
	for _, e := range cfg.RamFor(node) {
		if err := pl.ramEntry(e); err != nil {
			return nil, err
		}
	}
	for _, lb := range cfg.LinkbacksFor(node) {
		if err := pl.linkback(lb); err != nil {
			return nil, err
		}
	}
	if err := pl.unconfiguredLinks(); err != nil {
		return nil, err
	}
	if pl.plan.Steps == nil {
		pl.plan.Steps = []Step{}
	}
	return pl.plan, nil
}

func (pl *planner) add(s Step) { pl.plan.Steps = append(pl.plan.Steps, s) }
func (pl *planner) warn(f string, a ...any) {
	pl.plan.Warnings = append(pl.plan.Warnings, fmt.Sprintf(f, a...))
}
func where(p sysimage.Pos) string { return fmt.Sprintf("%s:%d", p.File, p.Line) }
func directive(kind, p string, pos sysimage.Pos) string {
	return fmt.Sprintf("%s %s (%s)", kind, p, where(pos))
}

// mount plans the tmpfs, sized by the RAMSIZE that applies to the node.
func (pl *planner) mount() {
	opts := "mode=0755"
	why := "no RAMSIZE: the kernel's default tmpfs size"
	if rs, ok := pl.cfg.RamSizeFor(pl.node); ok && rs.Size != "" {
		opts = "size=" + rs.Size + "," + opts
		why = fmt.Sprintf("RAMSIZE %s (%s)", rs.Size, where(rs.Pos))
	}
	pl.add(Step{Kind: Mount, Path: ".", Options: opts, Why: why})
}

// lstat is img.Lstat with "does not exist" as ok=false.
func (pl *planner) lstat(p string) (Info, bool, error) {
	in, err := pl.img.Lstat(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Info{}, false, nil
	}
	if err != nil {
		return Info{}, false, fmt.Errorf("checking /%s in the image: %w", p, err)
	}
	return in, true, nil
}

// ensureDir plans the ram directories leading to dir, each mirroring the
// owner and mode of the image's directory of the same name.
func (pl *planner) ensureDir(dir string) error {
	if dir == "." || dir == "" {
		return nil
	}
	comps := strings.Split(dir, "/")
	for i := range comps {
		p := strings.Join(comps[:i+1], "/")
		if pl.made[p] {
			continue
		}
		in, ok, err := pl.lstat(p)
		if err != nil {
			return err
		}
		uid, gid, mode := uint32(0), uint32(0), uint32(defaultDirMode)
		if ok && in.IsDir() {
			uid, gid, mode = in.UID, in.GID, in.Perm
		} else if ok && in.IsSymlink() {
			// A transformed LINKDIR: mirror its .default.
			if d, dok, _ := pl.lstat(p + ".default"); dok && d.IsDir() {
				uid, gid, mode = d.UID, d.GID, d.Perm
			}
		}
		pl.add(Step{Kind: Mkdir, Path: p})
		pl.add(Step{Kind: Chown, Path: p, UID: uid, GID: gid})
		pl.add(Step{Kind: Chmod, Path: p, Mode: Mode(mode)})
		pl.made[p] = true
	}
	return nil
}

// source finds what the image holds for a RAM*/LINK* path: the path itself
// when it is not a symlink; else its .default (the transform moved the
// original there); else the path itself when it is a symlink of the admin's
// own (copied as a link, never followed). The transform's own link
// P -> /ram/P is not a source. ok is false when there is nothing.
func (pl *planner) source(p string) (string, Info, bool, error) {
	in, ok, err := pl.lstat(p)
	if err != nil {
		return "", Info{}, false, err
	}
	if ok && !in.IsSymlink() {
		return p, in, true, nil
	}
	for _, d := range defaultNames(p) {
		din, dok, err := pl.lstat(d)
		if err != nil {
			return "", Info{}, false, err
		}
		if dok {
			return d, din, true, nil
		}
	}
	if ok && in.Link != RamDir+"/"+p {
		return p, in, true, nil
	}
	return "", Info{}, false, nil
}

// defaultNames are the two spellings of p's default variant: P.default and
// the hidden .P.default in the same directory.
func defaultNames(p string) []string {
	return []string{p + ".default", hiddenName(p, "default")}
}

// hiddenName is the -h spelling of a variant: .P.<suffix> in P's directory.
func hiddenName(p, suffix string) string {
	dir, base := path.Split(p)
	return dir + "." + base + "." + suffix
}

// ramEntry plans one RAMDIR, RAMFILE, LINKDIR or LINKFILE.
func (pl *planner) ramEntry(e sysimage.RamEntry) error {
	paths, err := Expand(pl.img, e.Path)
	if err != nil {
		return fmt.Errorf("%s: %s %s: %w", where(e.Pos), e.Kind, e.Path, err)
	}
	if len(paths) == 0 {
		pl.warn("%s: %s %s matches nothing in the image; skipped", where(e.Pos), e.Kind, e.Path)
	}
	isDir := e.Dir()
	for _, p := range paths {
		if p == "." {
			return fmt.Errorf("%s: %s %s: the image root cannot live in %s", where(e.Pos), e.Kind, e.Path, RamDir)
		}
		why := directive(e.Kind, "/"+p, e.Pos)
		if err := pl.ensureDir(path.Dir(p)); err != nil {
			return fmt.Errorf("%s: %w", why, err)
		}
		src, in, ok, err := pl.source(p)
		if err != nil {
			return fmt.Errorf("%s: %w", why, err)
		}
		uid, gid := uint32(0), uint32(0)
		mode := uint32(defaultFileMode)
		if isDir {
			mode = defaultDirMode
		}
		isLink := false
		switch {
		case e.Copy && ok:
			pl.add(Step{Kind: Copy, Path: p, Source: src, Why: why})
			uid, gid, mode, isLink = in.UID, in.GID, in.Perm, in.IsSymlink()
		default:
			if e.Copy {
				pl.warn("%s: /%s does not exist in the image; nothing to copy, created empty", why, p)
			}
			if ok && in.IsDir() == isDir && !in.IsSymlink() {
				uid, gid, mode = in.UID, in.GID, in.Perm
			}
			kind := Touch
			if isDir {
				kind = Mkdir
			}
			pl.add(Step{Kind: kind, Path: p, Why: why})
		}
		explicit := e.Mode != nil || e.User != "" || e.Group != ""
		if e.User != "" {
			if uid, err = pl.userID(e.User); err != nil {
				return fmt.Errorf("%s: %w", why, err)
			}
		}
		if e.Group != "" {
			if gid, err = pl.groupID(e.Group); err != nil {
				return fmt.Errorf("%s: %w", why, err)
			}
		}
		if e.Mode != nil {
			mode = *e.Mode & 0o7777
		}
		if !(e.Copy && ok) || explicit {
			// A copy already carries the image's owner and mode.
			pl.add(Step{Kind: Chown, Path: p, UID: uid, GID: gid})
			if !isLink {
				pl.add(Step{Kind: Chmod, Path: p, Mode: Mode(mode)})
			}
		}
		pl.made[p] = true
	}
	return nil
}

// linkback plans /ram/P -> the variant of P this node should see.
func (pl *planner) linkback(lb sysimage.Linkback) error {
	p, err := Rel(lb.Path)
	if err != nil {
		return fmt.Errorf("%s: LINKBACK %s: %w", where(lb.Pos), lb.Path, err)
	}
	why := fmt.Sprintf("LINKBACK %s %s (%s)", lb.Path, lb.Target, where(lb.Pos))
	if p == "." {
		return fmt.Errorf("%s: the image root cannot be a linkback", why)
	}
	if err := pl.ensureDir(path.Dir(p)); err != nil {
		return fmt.Errorf("%s: %w", why, err)
	}
	target, err := pl.chooseTarget(p, lb)
	if err != nil {
		return fmt.Errorf("%s: %w", why, err)
	}
	pl.add(Step{Kind: Symlink, Path: p, Target: target, Why: why})
	pl.made[p] = true
	return nil
}

// chooseTarget picks a linkback's variant, as an absolute image path.
//
//   - CLASS: P.<class> for the node's classes, most specific first;
//   - NODE: P.<hostname>;
//   - PROPERTY: the first P.<property> that exists, properties in
//     alphanumeric order;
//   - anything else is a path with $CLASS and $NODE interpolated (relative
//     to P's directory when not absolute).
//
// With -h the CLASS, NODE and PROPERTY variants are the hidden .P.<suffix>.
// A candidate must exist in the image (a symlink counts: it is the node's
// to resolve) unless -f forces it; otherwise P.default (or .P.default) is
// chosen.
func (pl *planner) chooseTarget(p string, lb sysimage.Linkback) (string, error) {
	variant := func(suffix string) string {
		if lb.Hidden {
			return hiddenName(p, suffix)
		}
		return p + "." + suffix
	}
	var cands []string
	switch lb.Target {
	case sysimage.TargetClass:
		for _, c := range pl.node.Classes {
			cands = append(cands, variant(c))
		}
	case sysimage.TargetNode:
		cands = []string{variant(pl.node.Host)}
		if pl.node.Host == "" {
			cands = []string{variant(pl.plan.Host)}
		}
	case sysimage.TargetProperty:
		if lb.Force {
			pl.warn("LINKBACK %s PROPERTY (%s): -f is not allowed with PROPERTY; ignored", lb.Path, where(lb.Pos))
			lb.Force = false
		}
		for _, pr := range pl.plan.Props {
			cands = append(cands, variant(pr))
		}
	default:
		t, err := pl.interpolate(lb.Target)
		if err != nil {
			return "", err
		}
		if !strings.HasPrefix(t, "/") {
			t = "/" + path.Join(path.Dir(p), t)
		}
		rel, err := Rel(t)
		if err != nil {
			return "", err
		}
		cands = []string{rel}
	}
	for _, c := range cands {
		_, ok, err := pl.lstat(c)
		if err != nil {
			return "", err
		}
		if ok {
			return "/" + c, nil
		}
	}
	if lb.Force && len(cands) > 0 {
		return "/" + cands[0], nil
	}
	defs := defaultNames(p)
	if lb.Hidden {
		defs[0], defs[1] = defs[1], defs[0]
	}
	for _, d := range defs {
		_, ok, err := pl.lstat(d)
		if err != nil {
			return "", err
		}
		if ok {
			return "/" + d, nil
		}
	}
	pl.warn("LINKBACK %s %s (%s): neither a variant for this node nor /%s exists in the image; the link will dangle",
		lb.Path, lb.Target, where(lb.Pos), defs[0])
	return "/" + defs[0], nil
}

// interpolate replaces $CLASS, ${CLASS}, $NODE and ${NODE}.
func (pl *planner) interpolate(t string) (string, error) {
	if strings.Contains(t, "CLASS") && pl.node.Class == "" && strings.Contains(t, "$") {
		return "", fmt.Errorf("target %q uses $CLASS but host %s has no class", t, pl.plan.Host)
	}
	r := strings.NewReplacer("${CLASS}", pl.node.Class, "$CLASS", pl.node.Class,
		"${NODE}", pl.plan.Host, "$NODE", pl.plan.Host)
	return r.Replace(t), nil
}

// unconfiguredLinks points every path the transform linked into /ram but
// that nothing configured for this node creates back at the image's
// default, so the image's link does not dangle on this node.
func (pl *planner) unconfiguredLinks() error {
	for _, pat := range pl.cfg.AllLinkPaths() {
		paths, err := Expand(pl.img, pat)
		if err != nil {
			return fmt.Errorf("%s: %w", pat, err)
		}
		for _, p := range paths {
			if p == "." || pl.made[p] {
				continue
			}
			in, ok, err := pl.lstat(p)
			if err != nil {
				pl.warn("%s: %v", pat, err)
				continue
			}
			if !ok || !in.IsSymlink() || in.Link != RamDir+"/"+p {
				continue // not transformed: the image path is what the node sees
			}
			for _, d := range defaultNames(p) {
				if _, dok, _ := pl.lstat(d); dok {
					if err := pl.ensureDir(path.Dir(p)); err != nil {
						return err
					}
					pl.add(Step{Kind: Symlink, Path: p, Target: "/" + d, Why: "not configured for this node: the image's default"})
					pl.made[p] = true
					break
				}
			}
		}
	}
	return nil
}
