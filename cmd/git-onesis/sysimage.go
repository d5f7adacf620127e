package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/mksysimage"
	"github.com/onesis/git-onesis/boot/personality"
	"github.com/onesis/git-onesis/boot/sysimage"
	"github.com/onesis/git-onesis/internal/image"
)

// sysimageConf is where oneSIS keeps its configuration inside the image.
const sysimageConf = "/etc/sysimage.conf"

var sysimageCmd = &cli.Command{
	Name:      "sysimage",
	Usage:     "turn LINKFILE, LINKDIR and LINKBACK paths into links to /ram, as mk-sysimage did",
	UsageText: "git onesis sysimage [--dry-run] [--revert] [-q]",
	Description: "Reads etc/sysimage.conf of the work tree. Every LINKFILE, LINKDIR and LINKBACK\n" +
		"path P becomes P.default (.P.default for LINKBACK -h) plus a symlink P -> /ram/P,\n" +
		"and /ram is created. What was done is recorded in " + mksysimage.StateFile + ", so\n" +
		"paths dropped from the configuration are restored on the next run, a second\n" +
		"run changes nothing, and --revert gives back the original tree. What it\n" +
		"changed is staged (the links, the .default copies, the state file and\n" +
		"etc/sysimage.conf itself), so 'git onesis commit' commits all of it.\n" +
		"No symlink of the image is ever followed.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print what would change, change nothing"},
		&cli.BoolFlag{Name: "revert", Usage: "undo every recorded change: the original tree comes back"},
		quietFlag,
	},
	Action: runSysimage,
}

func init() { register(sysimageCmd) }

func runSysimage(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("sysimage takes no arguments")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	var t *mksysimage.Transform
	if c.Bool("revert") {
		t, err = mksysimage.PlanRevert(im.Root)
	} else {
		var cfg *sysimage.Config
		cfg, err = readConfig(c, im, "")
		if err == nil {
			t, err = mksysimage.Plan(im.Root, cfg)
		}
	}
	if err != nil {
		return fatal(err)
	}
	for _, w := range t.Warnings {
		fmt.Fprintln(c.App.ErrWriter, "warning:", w)
	}
	quiet := c.Bool("quiet")
	if len(t.Ops) == 0 {
		if !quiet {
			fmt.Fprintln(c.App.Writer, "Nothing to do: the image is in step with etc/sysimage.conf.")
		}
		return nil
	}
	if c.Bool("dry-run") || !quiet {
		for _, o := range t.Ops {
			fmt.Fprintln(c.App.Writer, o.String())
		}
	}
	if c.Bool("dry-run") {
		return nil
	}
	if err := mksysimage.Execute(im.Root, t.Ops); err != nil {
		return fatal(err)
	}
	n, err := stageTransform(im, t.Ops, !c.Bool("revert"))
	if err != nil {
		return fatal(fmt.Errorf("the image is transformed, but staging it failed (stage it with 'git add -A'): %w", err))
	}
	if !quiet {
		fmt.Fprintf(c.App.Writer, "Staged %d paths. Review with 'git onesis status', then commit with\n'git onesis commit -m \"oneSIS links\"'.\n", n)
	}
	return nil
}

// stageTransform stages every path the transform created, moved or
// removed, its state file and (conf) etc/sysimage.conf, so that one
// 'git onesis commit' commits the whole transform: until they are in the
// index, git ignores new files and .gitmeta cannot record them. Ignored
// paths stay out; a path gone from both the tree and the index is skipped.
func stageTransform(im *image.Image, ops []mksysimage.Op, conf bool) (int, error) {
	seen := map[string]bool{}
	var cand []string
	add := func(p string) {
		if p != "" && !seen[p] {
			seen[p] = true
			cand = append(cand, p)
		}
	}
	for _, o := range ops {
		switch o.Kind {
		case mksysimage.Link, mksysimage.Restore, mksysimage.Record:
			add(o.Path)
			add(o.Default)
		}
	}
	if conf {
		add(strings.TrimPrefix(sysimageConf, "/"))
	}
	out, err := im.Git.Run(append([]string{"--literal-pathspecs", "ls-files", "-z", "--"}, cand...)...)
	if err != nil {
		return 0, err
	}
	tracked := strings.Split(string(out), "\x00")
	inIndex := func(p string) bool {
		for _, t := range tracked {
			if t == p || strings.HasPrefix(t, p+"/") {
				return true
			}
		}
		return false
	}
	ignored, err := im.Git.CheckIgnored(cand)
	if err != nil {
		return 0, err
	}
	var keep []string
	for _, p := range cand {
		_, err := os.Lstat(filepath.Join(im.Root, p))
		if (err == nil && !ignored[p]) || inIndex(p) {
			keep = append(keep, p)
		}
	}
	return len(keep), im.Git.Add(keep...)
}

// readConfig parses etc/sysimage.conf of the work tree (rev "") or of a
// revision, printing its warnings unless quiet.
func readConfig(c *cli.Context, im *image.Image, rev string) (*sysimage.Config, error) {
	var open sysimage.Opener
	if rev == "" {
		r, err := os.OpenRoot(im.Root)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		open = rootOpener(r)
	} else {
		open = revOpener(im, rev)
	}
	return parseConfig(c, open)
}

func parseConfig(c *cli.Context, open sysimage.Opener) (*sysimage.Config, error) {
	cfg, err := sysimage.Parse(open, sysimageConf)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("this image has no %s: %w", sysimageConf, err)
		}
		return nil, err
	}
	if !c.Bool("quiet") {
		for _, w := range cfg.Warnings {
			fmt.Fprintln(c.App.ErrWriter, "warning:", w.String())
		}
	}
	return cfg, nil
}

// rootOpener reads absolute image paths through os.Root, which refuses
// anything (a "..", an absolute symlink) that would leave the image.
func rootOpener(r *os.Root) sysimage.Opener {
	return func(p string) ([]byte, error) {
		rel, err := personality.Rel(p)
		if err != nil {
			return nil, err
		}
		return r.ReadFile(rel)
	}
}

// revOpener reads absolute image paths from the tree of a revision.
func revOpener(im *image.Image, rev string) sysimage.Opener {
	return func(p string) ([]byte, error) {
		rel, err := personality.Rel(p)
		if err != nil {
			return nil, err
		}
		b, ok, err := im.Git.ShowBlob(rev, rel)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &fs.PathError{Op: "read", Path: p + " at " + rev, Err: fs.ErrNotExist}
		}
		return b, nil
	}
}
