package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var migrateCmd = &cli.Command{
	Name:      "migrate",
	Usage:     "convert a setgitperms-era image repository in one step",
	UsageText: "git onesis migrate [--commit] [-m MSG]",
	Description: "For repositories made with the old oneSIS recipe: moves hooks that call\n" +
		"setgitperms.perl aside (to <hook>.setgitperms), installs git-onesis hooks,\n" +
		"stops ignoring /dev (devices are now recorded), and records a new .gitmeta\n" +
		"that upgrades the setgitperms one (owners and modes carry over; types,\n" +
		"devices, empty dirs, hard links and xattrs are added). dev.tar and the\n" +
		"placeholder .gitignore files in empty directories are no longer needed.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "commit", Usage: "commit the migration"},
		&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Value: "Migrate image metadata from setgitperms to git-onesis", Usage: "commit `MSG`"},
		quietFlag,
	},
	Action: runMigrate,
}

func runMigrate(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("migrate takes no arguments")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	say := func(format string, a ...any) {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, format+"\n", a...)
		}
	}
	var legacy *meta.Manifest
	if b, err := os.ReadFile(im.MetaPath()); err == nil {
		m, err := meta.ParseBytes(b)
		switch {
		case err != nil:
			return fatal(fmt.Errorf("the existing .gitmeta does not parse, so its owners and modes cannot be carried over: %w", err))
		case m.Legacy:
			say("found a setgitperms .gitmeta with %d entries", len(m.Entries))
			legacy = m
		default:
			say(".gitmeta is already in git-onesis format")
		}
	}
	dir, err := im.Git.HooksDir()
	if err != nil {
		return fatal(err)
	}
	for _, name := range hooks.Names {
		p := filepath.Join(dir, name)
		b, err := os.ReadFile(p)
		if err != nil || !bytes.Contains(b, []byte("setgitperms")) {
			continue
		}
		if err := os.Rename(p, p+".setgitperms"); err != nil {
			return fatal(fmt.Errorf("moving the old %s hook aside: %w", name, err))
		}
		say("moved the setgitperms %s hook to %s", name, p+".setgitperms")
	}
	if err := installHooks(c, im, false); err != nil {
		return err
	}
	if changed, err := unignoreDev(filepath.Join(im.Root, ".gitignore")); err != nil {
		return fatal(err)
	} else if changed {
		say("removed the /dev rule from .gitignore: device nodes are recorded in .gitmeta now")
		if _, err := im.Git.Run("add", "--", ".gitignore"); err != nil {
			return fatal(err)
		}
	}
	if _, err := os.Lstat(filepath.Join(im.Root, "dev.tar")); err == nil {
		say("dev.tar is no longer needed; remove it with 'git rm dev.tar' once you have checked dev/")
	}
	if legacy == nil {
		if _, _, err := im.Record(true); err != nil {
			return fatal(err)
		}
		say("recorded .gitmeta in git-onesis format")
	} else {
		differ, err := migrateLegacy(im, legacy)
		if err != nil {
			return fatal(err)
		}
		say("wrote .gitmeta in git-onesis format: owners and modes from the setgitperms file, types, devices, links and xattrs from the tree")
		if differ > 0 {
			say("%d entries of the tree differ from the setgitperms owners and modes (a clone it was never applied to?); they were not recorded: 'git onesis status' lists them, 'git onesis apply' sets them", differ)
		}
	}
	if c.Bool("commit") {
		return gitCommit(c, im, []string{"-q", "-m", c.String("message")}, true)
	}
	say("review with 'git diff --cached', then commit with 'git onesis commit'")
	return nil
}

// unignoreDev drops the old recipe's "dev" rule from .gitignore.
func unignoreDev(path string) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, nil
	}
	var out []string
	changed := false
	for _, l := range strings.SplitAfter(string(b), "\n") {
		switch strings.TrimSpace(l) {
		case "dev", "/dev", "dev/", "/dev/", "dev/*", "/dev/*":
			changed = true
			continue
		}
		out = append(out, l)
	}
	if !changed {
		return false, nil
	}
	_, err = meta.WriteBytes(path, []byte(strings.Join(out, "")), 0o644)
	return true, err
}

// migrateLegacy writes and stages a git-onesis .gitmeta built from a scan
// of the tree, with the owner and mode of every path the setgitperms file
// names taken from that file: the migration carries the recorded
// metadata over, whatever the tree holds (a clone setgitperms never ran
// in has default modes). It returns how many entries the tree disagrees
// with.
func migrateLegacy(im *image.Image, legacy *meta.Manifest) (int, error) {
	m, err := im.Scan()
	if err != nil {
		return 0, err
	}
	old := legacy.Index()
	differ := 0
	for i := range m.Entries {
		e := &m.Entries[i]
		o := old[e.Path]
		if o == nil || e.Type == meta.TypeSymlink {
			continue
		}
		if e.Mode != o.Mode || e.UID != o.UID || e.GID != o.GID {
			differ++
			e.Mode, e.UID, e.GID = o.Mode, o.UID, o.GID
		}
	}
	if _, err := meta.WriteFile(im.MetaPath(), m); err != nil {
		return 0, fmt.Errorf("writing .gitmeta: %w", err)
	}
	if err := im.Git.Add(image.MetaFile); err != nil {
		return 0, err
	}
	return differ, nil
}
