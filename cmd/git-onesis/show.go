package main

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/meta"
)

func init() { register(showCmd) }

var showCmd = &cli.Command{
	Name:      "show",
	Usage:     "print one entry's recorded metadata at a revision",
	UsageText: "git onesis show [--json] [REV:]PATH...",
	Description: "Prints everything .gitmeta records for PATH as committed at REV (HEAD when\n" +
		"no REV: is given; ':PATH' reads the work tree's .gitmeta): type, mode in\n" +
		"octal and as ls shows it, owner and group with the names of the image's own\n" +
		"etc/passwd and etc/group at that revision, device numbers, symlink target,\n" +
		"hard-link group and every xattr in words (capabilities, ACLs, SELinux).\n" +
		"Works on any clone, as any user.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print one JSON array of entries"},
	},
	Action: runShow,
}

func runShow(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageErr("name at least one [REV:]PATH\nSee 'git onesis show --help'.")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	type loaded struct {
		m     *meta.Manifest
		names *meta.Names
	}
	cache := map[string]loaded{}
	var out []jsonEntry
	missing := 0
	w := c.App.Writer
	for i, arg := range c.Args().Slice() {
		rev, p := "HEAD", arg
		if r, path, ok := strings.Cut(arg, ":"); ok {
			rev, p = r, path
		}
		p = strings.TrimPrefix(strings.TrimPrefix(p, "./"), "/")
		if p == "" {
			p = "."
		}
		l, ok := cache[rev]
		if !ok {
			if rev == "" {
				l.m, err = im.ReadWorktreeMeta()
			} else {
				l.m, err = manifestAt(im, rev)
			}
			if err != nil {
				return fatal(err)
			}
			l.names = im.NamesAt(rev)
			cache[rev] = l
		}
		e := l.m.Lookup(p)
		if e == nil {
			fmt.Fprintf(c.App.ErrWriter, "error: %s has no entry for %s in .gitmeta\n", revName(rev), display(p))
			missing++
			continue
		}
		if c.Bool("json") {
			out = append(out, toJSON(e, l.names))
			continue
		}
		if i > 0 {
			fmt.Fprintln(w)
		}
		writeShow(w, rev, e, l.names)
	}
	if c.Bool("json") {
		if out == nil {
			out = []jsonEntry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if missing > 0 {
		return cli.Exit("", exitDiff)
	}
	return nil
}

func revName(rev string) string {
	if rev == "" {
		return "the work tree"
	}
	return rev
}

func writeShow(w interface{ Write([]byte) (int, error) }, rev string, e *meta.Entry, n *meta.Names) {
	line := func(k, v string) { fmt.Fprintf(w, "%-10s %s\n", k+":", v) }
	line("path", display(e.Path))
	line("revision", revName(rev))
	line("type", e.Type.String())
	line("mode", fmt.Sprintf("%s (%s)", meta.FormatMode(e.Mode), ModeString(e)))
	line("owner", fmt.Sprintf("%s (%d)", n.User(e.UID), e.UID))
	line("group", fmt.Sprintf("%s (%d)", n.Group(e.GID), e.GID))
	if e.Type == meta.TypeChar || e.Type == meta.TypeBlock {
		line("device", fmt.Sprintf("%d, %d", e.Major, e.Minor))
	}
	if e.Type == meta.TypeSymlink {
		line("target", strings.TrimPrefix(meta.EscapePath(e.Link), "./"))
	}
	if e.Hardlink != "" {
		line("hardlink", "same file as "+display(e.Hardlink))
	}
	if e.Empty {
		line("empty", "yes (git cannot carry it; apply creates it)")
	}
	for _, x := range e.Xattrs {
		line("xattr", x.Name+" = "+meta.DescribeXattr(x.Name, x.Value))
	}
}
