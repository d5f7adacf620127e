package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var diffCmd = &cli.Command{
	Name:      "diff",
	Usage:     "show metadata changes in words",
	UsageText: "git onesis diff [--security] [--porcelain [-z] | --json | -q] [--exit-code] [REV [REV]]",
	Description: "With no revision, compares HEAD's .gitmeta with the work tree as it is now.\n" +
		"With one, compares REV with the work tree; with two, REV with REV.\n" +
		"User and group names come from the image's own etc/passwd and etc/group\n" +
		"(at the newer side), never from the host's.\n\n" +
		"--security keeps what a security review asks about: setuid and setgid bits\n" +
		"gained or lost, file capabilities, anything becoming world-writable, device\n" +
		"nodes added or changed, and every change (content included) under etc/ssh,\n" +
		"etc/pam.d, etc/sudoers, etc/sudoers.d, etc/security and root/.ssh.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "porcelain", Usage: "one stable line per change: KIND FIELDS PATH"},
		&cli.BoolFlag{Name: "z", Usage: "NUL-terminated records and raw paths (implies --porcelain)"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
		&cli.BoolFlag{Name: "exit-code", Usage: "exit 1 when there are differences, as git diff --exit-code"},
		&cli.BoolFlag{Name: "security", Usage: "only setuid/setgid, capabilities, world-writable, devices, and ssh/pam/sudo changes"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing; implies --exit-code, as git diff --quiet"},
		progressFlag,
	},
	Action: runDiff,
}

func runDiff(c *cli.Context) error {
	oldRev, newRev, err := revPair(c, "diff")
	if err != nil {
		return err
	}
	format, err := reportFormat(c)
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	old, err := manifestAt(im, oldRev)
	if err != nil {
		return fatal(err)
	}
	var cur *meta.Manifest
	if newRev == "" {
		m := meter(c, im, "Scanning")
		im.Progress = m.Set
		cur, err = im.Scan()
		m.Done()
		if err == nil {
			cur, err = asRoot(c, im, cur)
		}
	} else {
		cur, err = manifestAt(im, newRev)
	}
	if err != nil {
		return fatal(err)
	}
	names := im.NamesAt(newRev)
	changes := meta.Compare(old, cur)
	var content []contentChange
	if c.Bool("security") {
		if changes, content, err = securityChanges(im, changes, oldRev, newRev); err != nil {
			return fatal(err)
		}
	}
	w := c.App.Writer
	switch format {
	case "json":
		out := []jsonChange{}
		for _, ch := range changes {
			out = append(out, jsonChange{Path: display(ch.Path), Kind: kindWord(ch.Kind), Fields: ch.Fields(), Words: meta.Describe(ch, names)})
		}
		for _, cc := range content {
			out = append(out, jsonChange{Path: display(cc.path), Kind: cc.kind, Fields: []string{"content"}, Words: []string{cc.words()}})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	case "porcelain":
		end, path := "\n", display
		if c.Bool("z") {
			end, path = "\x00", func(p string) string { return p }
		}
		for _, ch := range changes {
			fields := ch.Fields()
			if ch.Kind != meta.Modified {
				fields = []string{diffKind(ch.Kind)}
			}
			fmt.Fprintf(w, "%s %s %s%s", diffKind(ch.Kind)[:1], strings.Join(fields, ","), path(ch.Path), end)
		}
		for _, cc := range content {
			fmt.Fprintf(w, "%s content %s%s", cc.kind[:1], path(cc.path), end)
		}
	case "human":
		for _, ch := range changes {
			for _, s := range meta.Describe(ch, names) {
				fmt.Fprintln(w, s)
			}
		}
		for _, cc := range content {
			fmt.Fprintln(w, cc.words())
		}
	}
	if (c.Bool("exit-code") || format == "quiet") && len(changes)+len(content) > 0 {
		return cli.Exit("", exitDiff)
	}
	return nil
}

func diffKind(k meta.ChangeKind) string {
	switch k {
	case meta.Added:
		return "added"
	case meta.Removed:
		return "deleted"
	}
	return "modified"
}

// asRoot, for a non-root user, takes what a non-root apply could not make
// (ownership, devices, owner access) from the work tree's .gitmeta instead
// of the scan, so the work tree compares as root would have it; it says
// so on stderr. For root it returns cur.
func asRoot(c *cli.Context, im *image.Image, cur *meta.Manifest) (*meta.Manifest, error) {
	if os.Geteuid() == 0 {
		return cur, nil
	}
	rec, err := im.ReadWorktreeMeta()
	if errors.Is(err, image.ErrNoMeta) {
		return cur, nil
	}
	if err != nil {
		return nil, err
	}
	cur, n := image.AsRoot(rec, cur)
	if n > 0 && !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "note: not root: %d entries of the work tree are taken as .gitmeta records them (ownership, devices and modes only root applies)\n", n)
	}
	return cur, nil
}

// manifestAt reads .gitmeta at rev; a revision without one reads as empty.
func manifestAt(im *image.Image, rev string) (*meta.Manifest, error) {
	if _, err := im.Git.ResolveRev(rev); err != nil {
		return nil, fmt.Errorf("bad revision %q: %w", rev, err)
	}
	m, err := im.MetaAt(rev)
	if err != nil {
		return nil, err
	}
	if m == nil {
		m = &meta.Manifest{}
	}
	return m, nil
}

// contentChange is a file whose content git reports changed.
type contentChange struct {
	kind, path string // kind: added, deleted or modified
}

func (cc contentChange) words() string {
	switch cc.kind {
	case "added":
		return "added " + display(cc.path) + " (content)"
	case "deleted":
		return "removed " + display(cc.path) + " (content)"
	}
	return display(cc.path) + ": content changed"
}

// securityChanges is the one filter of --security, for diff and log: the
// metadata changes meta.SecurityRelevant keeps, and the content changes
// under meta.SensitiveDirs between oldRev and newRev ("" = the work tree).
func securityChanges(im *image.Image, changes []meta.Change, oldRev, newRev string) ([]meta.Change, []contentChange, error) {
	content, err := sensitiveContent(im, oldRev, newRev)
	return securityMeta(changes), content, err
}

// securityMeta keeps the metadata changes meta.SecurityRelevant keeps.
func securityMeta(changes []meta.Change) []meta.Change {
	var kept []meta.Change
	for _, ch := range changes {
		if _, ok := meta.SecurityRelevant(ch); ok {
			kept = append(kept, ch)
		}
	}
	return kept
}

// sensitiveContent lists content changes under meta.SensitiveDirs between
// oldRev and newRev ("" = the work tree), as git sees them.
func sensitiveContent(im *image.Image, oldRev, newRev string) ([]contentChange, error) {
	args := []string{"--literal-pathspecs", "diff", "--no-ext-diff", "--no-renames", "--name-status", "-z", oldRev}
	if newRev != "" {
		args = append(args, newRev)
	}
	args = append(args, "--")
	args = append(args, meta.SensitiveDirs...)
	out, err := im.Git.Run(args...)
	if err != nil {
		return nil, fmt.Errorf("listing content changes under %s: %w", strings.Join(meta.SensitiveDirs, ", "), err)
	}
	f := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
	var cs []contentChange
	for i := 0; i+1 < len(f); i += 2 {
		kind := "modified"
		switch f[i] {
		case "A":
			kind = "added"
		case "D":
			kind = "deleted"
		}
		if f[i+1] == image.MetaFile {
			continue
		}
		cs = append(cs, contentChange{kind: kind, path: f[i+1]})
	}
	return cs, nil
}
