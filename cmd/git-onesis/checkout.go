package main

import (
	"errors"
	"os/exec"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
)

var checkoutCmd = &cli.Command{
	Name:      "checkout",
	Usage:     "git checkout with no window where secrets are world-readable, then apply",
	UsageText: "git onesis checkout [GIT-CHECKOUT-ARGS...]",
	Description: "git writes files with the umask before post-checkout runs, so a 0600 secret\n" +
		"is briefly 0644. This runs git checkout under umask 077 (files appear 0600),\n" +
		"then applies .gitmeta, which opens up exactly what is recorded. All arguments\n" +
		"go to git checkout unchanged.",
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		args := c.Args().Slice()
		for _, a := range args {
			if a == "-h" || a == "--help" {
				return cli.ShowCommandHelp(c, "checkout")
			}
		}
		im, err := openConfiguredImage(c) // sets no config
		if err != nil {
			return err
		}
		// Where the hooks are is asked while git checks out.
		type where struct {
			dir string
			err error
		}
		hooksDir := make(chan where, 1)
		go func() {
			dir, err := im.Git.HooksDir()
			hooksDir <- where{dir, err}
		}()
		old := syscall.Umask(0o077)
		cmd := im.Git.Cmd(append([]string{"checkout"}, args...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = c.App.Reader, c.App.Writer, c.App.ErrWriter
		err = cmd.Run()
		hd := <-hooksDir
		syscall.Umask(old)
		if err != nil {
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				return cli.Exit("", ee.ExitCode())
			}
			return fatal(err)
		}
		// When the hook is installed and enabled it has applied already;
		// otherwise apply here.
		if hd.err == nil && im.Enabled() {
			if st, _ := hooks.Inspect(hd.dir, "post-checkout"); st == hooks.Current {
				return nil
			}
		}
		cv, err := im.Converge(hooks.KindOf(im, hooks.Caller{Command: "checkout", Args: args, Known: true}))
		if err != nil {
			return fatal(err)
		}
		if cv.Result == nil {
			return nil
		}
		return applyReport(c, cv.Result)
	},
}
