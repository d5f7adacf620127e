package main

import (
	"errors"
	"io"
	"os/exec"
	"strings"

	"github.com/urfave/cli/v2"
)

// helpCmd is 'git onesis help [COMMAND [SUBCOMMAND]]', as 'git help': the
// command's man page when one is installed (git-onesis-COMMAND(1)), else
// the help built into the binary, which is what 'COMMAND --help' prints.
var helpCmd = &cli.Command{
	Name:      "help",
	Usage:     "show a command's manual page, or its built-in help",
	UsageText: "git onesis help [COMMAND [SUBCOMMAND]]",
	Hidden:    true,
}

func init() { helpCmd.Action = runHelp }

func runHelp(c *cli.Context) error {
	args := c.Args().Slice()
	if len(args) == 0 {
		return cli.ShowAppHelp(c)
	}
	cmd := findCommand(c.App.Commands, args[0])
	if cmd == nil || cmd.Hidden {
		return notACommand(args[0])
	}
	// ShowCommandHelp looks name up in ctx.Command's subcommands, or in
	// the App's commands when it has none.
	ctx := cli.NewContext(c.App, nil, c)
	ctx.Command = &cli.Command{}
	for _, a := range args[1:] {
		sub := findCommand(cmd.Subcommands, a)
		if sub == nil {
			return usageErr("'%s' is not a %s subcommand\nSee '%s --help'.", a, cmd.Name, helpName(cmd))
		}
		ctx = cli.NewContext(c.App, nil, ctx)
		ctx.Command = cmd
		cmd = sub
	}
	if code, ok := manPage("git-onesis-"+strings.Fields(args[0])[0], c.App.Reader, c.App.Writer, c.App.ErrWriter); ok {
		if code != 0 {
			return cli.Exit("", code)
		}
		return nil
	}
	return cli.ShowCommandHelp(ctx, cmd.Name)
}

// manPage shows page with man(1) when it is installed, as 'git help'
// does, and returns man's exit code; ok is false when there is no such
// page (or no man).
func manPage(page string, stdin io.Reader, stdout, stderr io.Writer) (code int, ok bool) {
	if exec.Command("man", "-w", page).Run() != nil {
		return 0, false
	}
	cmd := exec.Command("man", page)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = stdin, stdout, stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), true
	}
	return 0, err == nil
}
