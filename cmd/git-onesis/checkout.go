package main

import (
	"errors"
	"os/exec"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
	"github.com/onesis/git-onesis/internal/image"
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
		// Sets no config: read once, beside the repository lookup, it
		// answers the converge's questions without a git each.
		im, err := openConfiguredImage(c)
		if err != nil {
			return err
		}
		// git checks out with the hooks told to stand aside
		// (image.NestedEnv): this process converges once git is done,
		// which spares starting git-onesis again for post-index-change.
		old := syscall.Umask(0o077)
		cmd := im.Git.WithEnv(image.NestedEnv + "=1").Cmd(append([]string{"checkout"}, args...)...)
		cmd.Stdin, cmd.Stdout, cmd.Stderr = c.App.Reader, c.App.Writer, c.App.ErrWriter
		runErr := cmd.Run()
		syscall.Umask(old)
		var ee *exec.ExitError
		if runErr != nil && !errors.As(runErr, &ee) {
			return fatal(runErr)
		}
		// Even a checkout that failed may have written files.
		cv, err := im.Converge(hooks.KindOf(im, hooks.Caller{Command: "checkout", Args: args, Known: true}))
		if err != nil {
			return fatal(err)
		}
		if ee != nil {
			if cv.Result != nil {
				applyReport(c, cv.Result) // git's failure is the exit status
			}
			return cli.Exit("", ee.ExitCode())
		}
		if cv.Result == nil {
			return nil
		}
		return applyReport(c, cv.Result)
	},
}
