package main

import (
	"github.com/urfave/cli/v2"
)

var commitCmd = &cli.Command{
	Name:      "commit",
	Usage:     "record .gitmeta, stage it and run git commit",
	UsageText: "git onesis commit [GIT-COMMIT-ARGS...]",
	Description: "A chmod or chown changes no file content, so plain 'git commit -a' says\n" +
		"\"nothing to commit\". This records first, so metadata-only changes commit.\n" +
		"All arguments go to git commit unchanged.",
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		args := c.Args().Slice()
		for _, a := range args {
			if a == "-h" || a == "--help" {
				return cli.ShowCommandHelp(c, "commit")
			}
		}
		im, err := openImage(c)
		if err != nil {
			return err
		}
		if _, _, err := im.Record(true); err != nil {
			return fatal(err)
		}
		return gitCommit(c, im, args, false)
	},
}
