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
	Usage:     "list the image's packages (dpkg or rpm), or what changed between two revisions",
	UsageText: "git onesis packages [list] [--rev REV] [--json]\n   git onesis packages diff [--json] [--exit-code] [REV [REV]]",
	Description: "Reads the image's own package database (dpkg's var/lib/dpkg/status, or the\n" +
		"rpm database), in the\n" +
		"work tree or as committed at a revision, never the host's.\n\n" +
		"'packages diff' takes revisions as 'git onesis diff' does: none compares HEAD\n" +
		"with the work tree, one compares REV with the work tree, two compare REV with\n" +
		"REV. Each changed package is one line:\n\n" +
		"    + name VERSION            added\n" +
		"    - name VERSION            removed\n" +
		"    > name OLD -> NEW         upgraded\n" +
		"    < name OLD -> NEW         downgraded\n\n" +
		"Versions are ordered as dpkg or rpm orders them (epochs, '~', '^'). Packages\n" +
		"of a given architecture are named name:arch. RPM databases (SQLite, Berkeley\n" +
		"DB, NDB) are read in pure Go; the host's rpm is never run.",
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
var errNoPackageDB = errors.New("no package database in the image (looked for " + pkgdb.DpkgStatus + " and the rpm databases under var/lib/rpm and usr/lib/sysimage/rpm)")

// pkgSet is an image's installed packages and how to order their versions.
type pkgSet struct {
	Packages []pkgdb.Package
	Kind     string // "dpkg" or "rpm"
}

func (s pkgSet) compare() func(a, b string) int {
	if s.Kind == "rpm" {
		return pkgdb.CompareRPMVersions
	}
	return pkgdb.CompareDebianVersions
}

// diffPackages compares two sets, ordering versions by whichever database
// kind is present.
func diffPackages(old, cur pkgSet) []pkgdb.Change {
	k := cur
	if k.Kind == "" {
		k = old
	}
	return pkgdb.Diff(old.Packages, cur.Packages, k.compare())
}

// packagesAt reads the image's packages at rev ("" = the work tree): dpkg's
// status file, else the first rpm database found. The boolean is false
// when that side has no database.
func packagesAt(im *image.Image, rev string) (pkgSet, bool, error) {
	where := "the work tree"
	var read func(p string) ([]byte, bool, error)
	if rev == "" {
		if im.Git.Top == "" {
			return pkgSet{}, false, errors.New("this repository has no work tree; name a revision")
		}
		root, err := os.OpenRoot(im.Git.Top)
		if err != nil {
			return pkgSet{}, false, fmt.Errorf("opening the image: %w", err)
		}
		defer root.Close()
		read = func(p string) ([]byte, bool, error) {
			b, err := root.ReadFile(p)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, false, nil
			}
			return b, err == nil, err
		}
	} else {
		commit, err := im.Git.ResolveRev(rev)
		if err != nil {
			return pkgSet{}, false, fmt.Errorf("bad revision %q: %w", rev, err)
		}
		where = rev
		read = func(p string) ([]byte, bool, error) { return im.Git.ShowBlob(commit, p) }
	}
	b, ok, err := read(pkgdb.DpkgStatus)
	if err != nil {
		return pkgSet{}, false, fmt.Errorf("reading %s in %s: %w", pkgdb.DpkgStatus, where, err)
	}
	if ok {
		ps, err := pkgdb.ParseDpkgStatus(b)
		if err != nil {
			return pkgSet{}, false, fmt.Errorf("in %s: %w", where, err)
		}
		return pkgSet{ps, "dpkg"}, true, nil
	}
	for _, layout := range pkgdb.RPMDatabases {
		files := map[string][]byte{}
		for _, f := range layout {
			b, ok, err := read(f)
			if err != nil {
				return pkgSet{}, false, fmt.Errorf("reading %s in %s: %w", f, where, err)
			}
			if ok {
				files[f] = b
			}
		}
		if _, ok := files[layout[0]]; !ok {
			continue
		}
		ps, err := pkgdb.ReadRPM(files, layout)
		if err != nil {
			return pkgSet{}, false, fmt.Errorf("in %s: %w", where, err)
		}
		return pkgSet{ps, "rpm"}, true, nil
	}
	return pkgSet{}, false, nil
}

func runPackagesList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("unknown packages subcommand %q\nSee 'git onesis packages --help'.", c.Args().First())
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	set, ok, err := packagesAt(im, c.String("rev"))
	if err != nil {
		return fatal(err)
	}
	if !ok {
		return fatal(errNoPackageDB)
	}
	ps := set.Packages
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
	oldRev, newRev, err := revPair(c, "packages diff")
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
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
	changes := diffPackages(old, cur)
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
