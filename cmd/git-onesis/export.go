package main

import (
	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/meta"
)

var exportCmd = &cli.Command{
	Name:      "export",
	Usage:     "write .gitmeta as a spec other tools read",
	UsageText: "git onesis export [--format=mtree] [--bsd] [--rev REV]",
	Description: "Prints an mtree spec: NetBSD 'mtree -p DIR -f SPEC' verifies a tree against it\n" +
		"and 'bsdtar -cf image.tar @SPEC' (run at the top of the work tree) builds an\n" +
		"exact image tarball from any clone, root or not. --bsd drops the extensions\n" +
		"strict mtree readers reject (xattr.*, hardlink=, empty=).",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Value: "mtree", Usage: "output format; only mtree"},
		&cli.BoolFlag{Name: "bsd", Usage: "only keywords BSD mtree and libarchive know"},
		&cli.StringFlag{Name: "rev", Usage: "export .gitmeta at `REV`"},
	},
	Action: func(c *cli.Context) error {
		if c.Args().Present() {
			return usageErr("export takes no arguments")
		}
		if f := c.String("format"); f != "mtree" {
			return usageErr("unknown format %q (only mtree)", f)
		}
		im, err := openImage(c)
		if err != nil {
			return err
		}
		var m *meta.Manifest
		if rev := c.String("rev"); rev != "" {
			m, err = manifestAt(im, rev)
		} else {
			m, err = im.ReadWorktreeMeta()
		}
		if err != nil {
			return fatal(err)
		}
		if c.Bool("bsd") {
			m = meta.StripExtensions(m)
		}
		return m.Encode(c.App.Writer)
	},
}
