package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/internal/pkgdb"
)

func init() { register(packagesCmd) }

var packagesCmd = &cli.Command{
	Name:      "packages",
	Usage:     "list the image's packages, or what changed between two revisions",
	UsageText: "git onesis packages [list] [--rev REV] [--json]\n   git onesis packages diff [--json] [--exit-code] [REV [REV]]",
	Description: "Reads the image's own package database (dpkg's var/lib/dpkg/status), in the\n" +
		"work tree or as committed at a revision, never the host's.\n\n" +
		"'packages diff' takes revisions as 'git onesis diff' does: none compares HEAD\n" +
		"with the work tree, one compares REV with the work tree, two compare REV with\n" +
		"REV. Each changed package is one line:\n\n" +
		"    + name VERSION            added\n" +
		"    - name VERSION            removed\n" +
		"    > name OLD -> NEW         upgraded\n" +
		"    < name OLD -> NEW         downgraded\n\n" +
		"Versions are ordered as dpkg orders them (epochs, '~'). Multi-arch packages\n" +
		"are named name:arch. RPM databases are not read yet.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "rev", Usage: "list the packages as committed at `REV`"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
	},
	Action: runPackagesList,
	Subcommands: []*cli.Command{
		{
			Name:      "list",
			Usage:     "list installed packages",
			UsageText: "git onesis packages list [--rev REV] [--json]",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "rev", Usage: "list the packages as committed at `REV`"},
				&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
			},
			Action: runPackagesList,
		},
		{
			Name:      "diff",
			Usage:     "show packages added, removed, upgraded and downgraded",
			UsageText: "git onesis packages diff [--json] [--exit-code] [REV [REV]]",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
				&cli.BoolFlag{Name: "exit-code", Usage: "exit 1 when packages differ, as git diff --exit-code"},
			},
			Action: runPackagesDiff,
		},
	},
}

// errNoPackageDB means neither side has a database we can read.
var errNoPackageDB = errors.New("no package database in the image (looked for " + pkgdb.DpkgStatus + "; RPM databases are not read yet)")

// packagesAt reads the image's packages at rev ("" = the work tree). The
// boolean is false when that side has no database.
func packagesAt(im *image.Image, rev string) ([]pkgdb.Package, bool, error) {
	var (
		b   []byte
		ok  bool
		err error
	)
	if rev == "" {
		if im.Git.Top == "" {
			return nil, false, errors.New("this repository has no work tree; name a revision")
		}
		var root *os.Root
		root, err = os.OpenRoot(im.Git.Top)
		if err != nil {
			return nil, false, fmt.Errorf("opening the image: %w", err)
		}
		defer root.Close()
		b, err = root.ReadFile(pkgdb.DpkgStatus)
		ok = err == nil
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	} else {
		if _, err := im.Git.ResolveRev(rev); err != nil {
			return nil, false, fmt.Errorf("bad revision %q: %w", rev, err)
		}
		b, ok, err = im.Git.ShowBlob(rev, pkgdb.DpkgStatus)
	}
	where := "the work tree"
	if rev != "" {
		where = rev
	}
	if err != nil {
		return nil, false, fmt.Errorf("reading %s in %s: %w", pkgdb.DpkgStatus, where, err)
	}
	if !ok {
		return nil, false, nil
	}
	ps, err := pkgdb.ParseDpkgStatus(b)
	if err != nil {
		return nil, false, fmt.Errorf("in %s: %w", where, err)
	}
	return ps, true, nil
}

func runPackagesList(c *cli.Context) error {
	if err := noFlagsAfterArgs(c); err != nil {
		return err
	}
	if c.NArg() > 0 {
		return usageErr("unknown packages subcommand %q\nSee 'git onesis packages --help'.", c.Args().First())
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	ps, ok, err := packagesAt(im, c.String("rev"))
	if err != nil {
		return fatal(err)
	}
	if !ok {
		return fatal(errNoPackageDB)
	}
	w := c.App.Writer
	if c.Bool("json") {
		if ps == nil {
			ps = []pkgdb.Package{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(ps)
	}
	for _, p := range ps {
		fmt.Fprintf(w, "%s %s\n", p.Key(), p.Version)
	}
	return nil
}

func runPackagesDiff(c *cli.Context) error {
	if err := noFlagsAfterArgs(c); err != nil {
		return err
	}
	args := c.Args().Slice()
	if len(args) > 2 {
		return usageErr("packages diff takes at most two revisions")
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
	old, okOld, err := packagesAt(im, oldRev)
	if err != nil {
		return fatal(err)
	}
	cur, okNew, err := packagesAt(im, newRev)
	if err != nil {
		return fatal(err)
	}
	if !okOld && !okNew {
		return fatal(errNoPackageDB)
	}
	changes := pkgdb.Diff(old, cur, pkgdb.CompareDebianVersions)
	w := c.App.Writer
	if c.Bool("json") {
		if changes == nil {
			changes = []pkgdb.Change{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(changes); err != nil {
			return err
		}
	} else {
		for _, ch := range changes {
			fmt.Fprintln(w, ch.String())
		}
	}
	if c.Bool("exit-code") && len(changes) > 0 {
		return cli.Exit("", exitDiff)
	}
	return nil
}
