package main

import (
	"fmt"
	"os/exec"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
)

var envCmd = &cli.Command{
	Name:      "env",
	Usage:     "print versions, paths, hook states and onesis.* configuration",
	UsageText: "git onesis env",
	Action: func(c *cli.Context) error {
		w := c.App.Writer
		fmt.Fprintf(w, "git-onesis %s\n", version)
		if out, err := exec.Command("git", "--version").Output(); err == nil {
			fmt.Fprint(w, string(out))
		}
		im, err := openImage(c)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "TopLevel=%s\nGitDir=%s\nCommonDir=%s\n", im.Root, im.Git.GitDir, im.Git.CommonDir)
		dir, err := im.Git.HooksDir()
		if err != nil {
			return fatal(err)
		}
		fmt.Fprintf(w, "HooksDir=%s\n", dir)
		states := map[hooks.State]string{hooks.Missing: "missing", hooks.Current: "current", hooks.Outdated: "outdated", hooks.Foreign: "foreign", hooks.Empty: "empty"}
		for _, n := range hooks.Names {
			st, err := hooks.Inspect(dir, n)
			s := states[st]
			if err != nil {
				s = "error: " + err.Error()
			}
			fmt.Fprintf(w, "Hook[%s]=%s\n", n, s)
		}
		cfg, err := im.Git.ConfigAll("onesis.")
		if err != nil {
			return fatal(err)
		}
		keys := make([]string, 0, len(cfg))
		for k := range cfg {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(w, "%s=%s\n", k, strings.TrimSpace(cfg[k]))
		}
		return nil
	},
}
