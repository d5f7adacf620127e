package hooks

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

// isPartialCommit reports whether pre-commit runs for 'git commit PATHS'
// (--only, the default with paths): git then commits from a temporary
// index, .git/next-index-<pid>.lock, holding HEAD plus the named paths.
func isPartialCommit() bool {
	return strings.HasPrefix(filepath.Base(os.Getenv("GIT_INDEX_FILE")), "next-index-")
}

// partialCommit stages into the temporary index of a partial commit the
// .gitmeta it should commit: HEAD's, with the entries of the paths the
// commit takes (those it names, and those whose content it changes) from
// the record just made, and the files it deletes dropped. Every other
// entry stays exactly as HEAD has it, however the tree has drifted: that
// drift stays in the work tree's .gitmeta, uncommitted. It returns the
// bytes staged.
func partialCommit(im *image.Image, c Caller, stderr io.Writer) ([]byte, error) {
	rec, err := im.ReadWorktreeMeta()
	if err != nil {
		return nil, err
	}
	head, err := im.MetaAt("HEAD")
	if err != nil {
		return nil, err
	}
	recBytes, err := os.ReadFile(im.MetaPath())
	if err != nil {
		return nil, err
	}
	if head == nil {
		return recBytes, stageBlob(im, recBytes)
	}
	tracked, err := im.Git.LsFiles() // the temporary index
	if err != nil {
		return nil, err
	}
	inIndex := make(map[string]bool, len(tracked))
	for _, p := range tracked {
		inIndex[p] = true
	}
	taken := map[string]bool{image.MetaFile: true}
	if out, err := im.Git.Run("diff-index", "--cached", "--name-only", "-z", "--no-renames", "HEAD"); err == nil {
		for _, p := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
			if p != "" {
				taken[p] = true
			}
		}
	}
	if specs, ok := commitPathspecs(c); ok && len(specs) > 0 {
		out, err := im.Git.Run(append([]string{"ls-files", "-z", "--"}, specs...)...)
		if err == nil {
			for _, p := range strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00") {
				if p != "" {
					taken[p] = true
				}
			}
		}
	} else {
		fmt.Fprintln(stderr, "git-onesis: could not read which paths this partial commit names; only the metadata of files whose content it changes is committed")
	}
	m := partialManifest(head, rec, taken, inIndex)
	b, err := m.Bytes()
	if err == nil {
		_, err = meta.ParseBytes(b)
	}
	if err != nil {
		// A hard-link group split across what the commit takes and what it
		// does not: commit the whole record rather than a broken manifest.
		fmt.Fprintf(stderr, "git-onesis: committing the whole recorded .gitmeta: the partial one would not be consistent (%v)\n", err)
		b = recBytes
	}
	return b, stageBlob(im, b)
}

// partialManifest is head with the entries of taken paths from rec, new
// parent directories of those paths from rec, and git-carried entries of
// files the commit deletes (not in the index) dropped.
func partialManifest(head, rec *meta.Manifest, taken, inIndex map[string]bool) *meta.Manifest {
	out := &meta.Manifest{}
	have := map[string]bool{}
	for _, e := range head.Entries {
		if e.Type.GitCarries() && !e.IsRoot() && !inIndex[e.Path] {
			continue // deleted by this commit
		}
		if taken[e.Path] {
			continue // replaced below from the record, or gone
		}
		out.Entries = append(out.Entries, e)
		have[e.Path] = true
	}
	for p := range taken {
		e := rec.Lookup(p)
		if e == nil {
			continue
		}
		out.Entries = append(out.Entries, *e)
		have[p] = true
		for d := meta.Parent(p); d != "."; d = meta.Parent(d) {
			if have[d] {
				break
			}
			if de := rec.Lookup(d); de != nil {
				out.Entries = append(out.Entries, *de)
				have[d] = true
			}
		}
	}
	out.Sort()
	return out
}

// stageBlob writes b as a blob and makes it the .gitmeta of the index
// GIT_INDEX_FILE names.
func stageBlob(im *image.Image, b []byte) error {
	out, err := im.Git.RunInput(b, "hash-object", "-w", "--stdin")
	if err != nil {
		return fmt.Errorf("storing the partial commit's .gitmeta: %w", err)
	}
	oid := strings.TrimSpace(string(out))
	if _, err := im.Git.WithEnv(image.NestedEnv+"=1").Run("update-index", "--add", "--cacheinfo", "100644,"+oid+","+image.MetaFile); err != nil {
		return fmt.Errorf("staging the partial commit's .gitmeta: %w", err)
	}
	return nil
}

// commitValued are git commit's options that take their value as the next
// argument when it is not attached.
var commitValued = map[string]bool{
	"-m": true, "-F": true, "-C": true, "-c": true, "-t": true,
	"--message": true, "--file": true, "--reuse-message": true, "--reedit-message": true,
	"--fixup": true, "--squash": true, "--author": true, "--date": true, "--template": true,
	"--cleanup": true, "--trailer": true, "--pathspec-from-file": true,
}

// commitPathspecs returns the pathspecs of a 'git commit' command line.
// ok is false when they cannot be known (not a commit, or read from a file).
func commitPathspecs(c Caller) ([]string, bool) {
	if !c.Known || c.Command != "commit" {
		return nil, false
	}
	var specs []string
	args := c.Args
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(specs, args[i+1:]...), true
		case strings.HasPrefix(a, "--pathspec-from-file"):
			return nil, false
		case commitValued[a]:
			i++
		case strings.HasPrefix(a, "--"):
		case strings.HasPrefix(a, "-") && len(a) > 1:
			// Bundled short options: a valued one ends the bundle, and
			// takes the next argument when nothing follows it.
			for k := 1; k < len(a); k++ {
				if commitValued["-"+string(a[k])] {
					if k == len(a)-1 {
						i++
					}
					break
				}
			}
		default:
			specs = append(specs, a)
		}
	}
	return specs, true
}

// carryPartial brings what a partial commit changed in .gitmeta into the
// real index, as git does for the files it names: the real index's
// .gitmeta gets the entries that changed between HEAD~1 and HEAD, and
// keeps whatever else it had staged.
func carryPartial(im *image.Image, committed []byte) error {
	now, err := meta.ParseBytes(committed)
	if err != nil {
		return nil
	}
	prev, err := im.MetaAt("HEAD~1")
	if err != nil || prev == nil {
		prev = &meta.Manifest{}
	}
	staged, err := im.MetaInIndex()
	if err != nil || staged == nil {
		return err
	}
	changes := meta.Compare(prev, now)
	if len(changes) == 0 {
		return nil
	}
	byPath := staged.Index()
	for _, c := range changes {
		if c.New != nil {
			byPath[c.Path] = c.New
		} else {
			delete(byPath, c.Path)
		}
	}
	out := &meta.Manifest{Entries: make([]meta.Entry, 0, len(byPath))}
	for _, e := range byPath {
		out.Entries = append(out.Entries, *e)
	}
	out.Sort()
	b, err := out.Bytes()
	if err != nil {
		return nil // an inconsistent mix: leave the index as git left it
	}
	return stageBlob(im, b)
}
