package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var diffCmd = &cli.Command{
	Name:      "diff",
	Usage:     "show metadata changes in words",
	UsageText: "git onesis diff [--porcelain [-z] | --json] [--exit-code] [REV [REV]]",
	Description: "With no revision, compares HEAD's .gitmeta with the work tree as it is now.\n" +
		"With one, compares REV with the work tree; with two, REV with REV.\n" +
		"User and group names come from the image's own etc/passwd and etc/group\n" +
		"(at the newer side), never from the host's.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "porcelain", Usage: "one stable line per change: KIND FIELDS PATH"},
		&cli.BoolFlag{Name: "z", Usage: "with --porcelain, NUL-terminated records and raw paths"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
		&cli.BoolFlag{Name: "exit-code", Usage: "exit 1 when there are differences, as git diff --exit-code"},
		progressFlag, quietFlag,
	},
	Action: runDiff,
}

func runDiff(c *cli.Context) error {
	if err := noFlagsAfterArgs(c); err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) > 2 {
		return usageErr("diff takes at most two revisions")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	oldRev, newRev := "HEAD", ""
	switch len(args) {
	case 1:
		oldRev = args[0]
	case 2:
		oldRev, newRev = args[0], args[1]
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
	} else {
		cur, err = manifestAt(im, newRev)
	}
	if err != nil {
		return fatal(err)
	}
	names := im.NamesAt(newRev)
	changes := meta.Compare(old, cur)
	w := c.App.Writer
	switch {
	case c.Bool("json"):
		out := []jsonChange{}
		for _, ch := range changes {
			out = append(out, jsonChange{Path: display(ch.Path), Kind: kindWord(ch.Kind), Fields: ch.Fields(), Words: meta.Describe(ch, names)})
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	case c.Bool("porcelain"):
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
	default:
		for _, ch := range changes {
			for _, s := range meta.Describe(ch, names) {
				fmt.Fprintln(w, s)
			}
		}
	}
	if c.Bool("exit-code") && len(changes) > 0 {
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
