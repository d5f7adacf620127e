package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
)

var uninstallCmd = &cli.Command{
	Name:        "uninstall",
	Usage:       "remove git-onesis hooks and configuration from this repository",
	UsageText:   "git onesis uninstall [-q]",
	Description: "Removes only hooks git-onesis wrote; foreign hooks are left in place. .gitmeta stays.",
	Flags:       []cli.Flag{quietFlag},
	Action: func(c *cli.Context) error {
		if c.Args().Present() {
			return usageErr("uninstall takes no arguments")
		}
		im, err := openImage(c)
		if err != nil {
			return err
		}
		res, err := hooks.Teardown(im.Git)
		if err != nil {
			return fatal(err)
		}
		if !c.Bool("quiet") {
			for _, r := range res {
				fmt.Fprintf(c.App.ErrWriter, "%s hook %s\n", r.Name, r.Action)
			}
		}
		return nil
	},
}
