package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var applyCmd = &cli.Command{
	Name:      "apply",
	Usage:     "make the work tree match .gitmeta",
	UsageText: "git onesis apply [-n] [-v] [--from REV] [-q]",
	Description: "Creates devices, fifos, sockets and empty directories, re-links hard links,\n" +
		"sets owners (before modes, so setuid and setgid survive), modes and xattrs.\n" +
		"Never follows a symlink. With --from, only entries that differ from REV's\n" +
		".gitmeta, and files that changed since REV, are visited.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show what would change; change nothing"},
		&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print each change"},
		&cli.StringFlag{Name: "from", Usage: "apply incrementally from the `REV` the tree was last at"},
		quietFlag,
	},
	Action: runApply,
}

func runApply(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("apply takes no arguments")
	}
	im, err := openConfiguredImage(c) // sets no config
	if err != nil {
		return err
	}
	o := image.ApplyOptions{DryRun: c.Bool("dry-run")}
	if c.Bool("verbose") || c.Bool("dry-run") {
		o.Log = func(s string) { fmt.Fprintln(c.App.Writer, s) }
	}
	if from := c.String("from"); from != "" {
		old, err := im.MetaAt(from)
		if err != nil {
			return fatal(err)
		}
		paths, err := im.Git.DiffTreeNames(from, "HEAD")
		if err != nil {
			return fatal(err)
		}
		o.Old, o.Paths = old, paths
	}
	res, err := im.ApplyWorktreeMeta(o)
	if err != nil {
		return fatal(err)
	}
	return applyReport(c, res)
}

// applyReport prints an apply's summary and errors; it returns exit 1 when
// some entries could not be applied.
func applyReport(c *cli.Context, res *meta.ApplyResult) error {
	if !c.Bool("quiet") {
		for _, s := range image.Summary(res) {
			fmt.Fprintln(c.App.ErrWriter, "warning: "+s)
		}
	}
	for _, e := range res.Errors {
		fmt.Fprintln(c.App.ErrWriter, "error: "+e.Error())
	}
	if len(res.Errors) > 0 {
		return cli.Exit(fmt.Sprintf("error: %d entries could not be applied", len(res.Errors)), exitDiff)
	}
	return nil
}
