package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/meta"
)

// mergeDriverCmd is merge.gitmeta.driver: a per-path 3-way merge of
// .gitmeta. Changes to different paths always merge; only the same path
// changed differently on both sides conflicts, with markers around just
// that path's lines. Exit 0 when clean, 1 on conflict, as git expects.
var mergeDriverCmd = &cli.Command{
	Name:      "merge-driver",
	Usage:     "(internal) merge.gitmeta.driver",
	UsageText: "git onesis merge-driver BASE OURS THEIRS [MARKER-SIZE [PATH]]",
	Hidden:    true,
	Action: func(c *cli.Context) error {
		if c.NArg() < 3 || c.NArg() > 5 {
			return usageErr("merge-driver takes BASE OURS THEIRS [MARKER-SIZE [PATH]]")
		}
		read := func(p string) (*meta.Manifest, error) {
			b, err := os.ReadFile(p)
			if err != nil {
				return nil, err
			}
			if len(bytes.TrimSpace(b)) == 0 {
				return &meta.Manifest{}, nil
			}
			return meta.ParseBytes(b)
		}
		var ms [3]*meta.Manifest
		for i := range ms {
			m, err := read(c.Args().Get(i))
			if err != nil {
				return cli.Exit(fmt.Sprintf("git-onesis merge-driver: cannot read the %s .gitmeta: %v", []string{"base", "our", "their"}[i], err), exitDiff)
			}
			ms[i] = m
		}
		var out bytes.Buffer
		n, err := meta.EncodeMerge(&out, ms[0], ms[1], ms[2], "ours", "theirs")
		if err != nil {
			return fatal(err)
		}
		if _, err := meta.WriteBytes(c.Args().Get(1), out.Bytes(), 0o644); err != nil {
			return fatal(err)
		}
		if n > 0 {
			fmt.Fprintf(c.App.ErrWriter, "git-onesis: %d conflicting .gitmeta entries (same path changed on both sides)\n", n)
			return cli.Exit("", exitDiff)
		}
		return nil
	},
}
