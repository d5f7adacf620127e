package main

import (
	"fmt"
	"runtime"

	"github.com/urfave/cli/v2"
)

var versionCmd = &cli.Command{
	Name:      "version",
	Usage:     "print the git-onesis version",
	UsageText: "git onesis version",
	Action: func(c *cli.Context) error {
		fmt.Fprintf(c.App.Writer, "git-onesis version %s (%s, %s/%s)\n", version, runtime.Version(), runtime.GOOS, runtime.GOARCH)
		return nil
	},
}
