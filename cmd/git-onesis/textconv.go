package main

import (
	"os"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/meta"
)

// textconvCmd is the diff.gitmeta.textconv program: it renders a .gitmeta
// with xattrs in words (capabilities, SELinux labels, ACLs), so 'git diff'
// and 'git log -p' are readable. A file that does not parse is passed
// through unchanged, so a diff never fails because of it.
var textconvCmd = &cli.Command{
	Name:      "textconv",
	Usage:     "(internal) diff.gitmeta.textconv: .gitmeta with xattrs in words",
	UsageText: "git onesis textconv FILE",
	Hidden:    true,
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 {
			return usageErr("textconv takes one file")
		}
		b, err := os.ReadFile(c.Args().First())
		if err != nil {
			return fatal(err)
		}
		m, err := meta.ParseBytes(b)
		if err != nil {
			_, err = c.App.Writer.Write(b)
			return err
		}
		return meta.Textconv(m, c.App.Writer)
	},
}
