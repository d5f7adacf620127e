package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
)

// hookCmds are the hidden entry points the installed hook trampolines call:
// `git onesis pre-commit`, `git onesis post-checkout OLD NEW FLAG`, ...
// They do nothing in repositories that have not opted in.
func hookCmds() []*cli.Command {
	var out []*cli.Command
	for _, name := range hooks.Names {
		name := name
		out = append(out, &cli.Command{
			Name:            name,
			Usage:           "(internal) run by git's " + name + " hook",
			Hidden:          true,
			SkipFlagParsing: true,
			Action: func(c *cli.Context) error {
				args := c.Args().Slice()
				if len(args) != hooks.ArgCount[name] {
					return cli.Exit(fmt.Sprintf("This should be run through git's %s hook. Run 'git onesis install' to install it.", name), exitDiff)
				}
				// A hook asks several config variables and sets none:
				// one 'git config --list', run beside the repository
				// lookup, answers them all.
				im, err := openConfiguredImage(c)
				if err != nil {
					return err
				}
				if !im.Enabled() {
					return nil
				}
				if err := hooks.Handlers[name](im, args, c.App.Reader, c.App.ErrWriter); err != nil {
					return cli.Exit(fmt.Sprintf("git-onesis %s: %v", name, err), exitDiff)
				}
				return nil
			},
		})
	}
	return out
}
