package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
	"github.com/onesis/git-onesis/internal/access"
	"github.com/onesis/git-onesis/internal/image"
)

var installCmd = &cli.Command{
	Name:      "install",
	Usage:     "install the hooks and configuration, then apply .gitmeta",
	UsageText: "git onesis install [--force | --manual] [--no-apply]",
	Description: "Installs pre-commit, post-commit, post-checkout, post-merge and post-rewrite\n" +
		"into the hooks directory git uses (core.hooksPath, worktrees and GIT_DIR are\n" +
		"honoured), sets onesis.enabled and the .gitmeta diff and merge drivers, and\n" +
		"applies .gitmeta, so a fresh clone gets its owners, devices and modes back.\n" +
		"Foreign hooks are never overwritten without --force.\n\n" +
		"It also makes the git directory readable by its owner only, or also by the\n" +
		"group --reviewers names (default: onesis.reviewers), through\n" +
		"core.sharedRepository, and says which: the objects hold the image's secrets.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "overwrite hooks that git-onesis did not write"},
		&cli.BoolFlag{Name: "manual", Usage: "print the lines to add to existing hooks by hand; change nothing"},
		&cli.BoolFlag{Name: "no-apply", Usage: "do not apply .gitmeta after installing"},
		reviewersFlag,
		quietFlag,
	},
	Action: runInstall,
}

func runInstall(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("install takes no arguments")
	}
	if c.Bool("force") && c.Bool("manual") {
		return usageErr("--force and --manual cannot be used together")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	if c.Bool("manual") {
		dir, err := im.Git.HooksDir()
		if err != nil {
			return fatal(err)
		}
		fmt.Fprint(c.App.Writer, hooks.Manual(dir))
		return nil
	}
	if err := installHooks(c, im, c.Bool("force")); err != nil {
		return err
	}
	if err := restrictAccess(c, im); err != nil {
		return err
	}
	if c.Bool("no-apply") {
		// The tree is taken as it is: the hooks apply what git writes
		// from now on, and leave today's drift to 'git onesis apply'.
		if b, err := os.ReadFile(im.MetaPath()); err == nil {
			im.MarkApplied(b)
		}
		return nil
	}
	res, err := im.ApplyWorktreeMeta(image.ApplyOptions{})
	if errors.Is(err, image.ErrNoMeta) {
		return nil
	}
	if err != nil {
		return fatal(err)
	}
	return applyReport(c, res)
}

// reviewersFlag names the group that may read the repository besides root.
var reviewersFlag = &cli.StringFlag{
	Name:  "reviewers",
	Usage: "let `GROUP` read the repository (its objects hold the image's secrets); empty: root only; default onesis.reviewers",
}

// restrictAccess makes the git directory readable by its owner and the
// reviewers' group only (see package access) and says so.
func restrictAccess(c *cli.Context, im *image.Image) error {
	group := c.String("reviewers")
	if !c.IsSet("reviewers") {
		if g, ok, _ := im.Git.Config(access.ReviewersKey); ok {
			group = g
		}
	}
	res, err := access.Restrict(im.Git, group)
	if err != nil {
		return fatal(err)
	}
	if !c.Bool("quiet") {
		fmt.Fprintln(c.App.ErrWriter, res.String())
	}
	return nil
}

// installHooks runs hooks.Setup and reports refusals the way git-lfs does.
func installHooks(c *cli.Context, im *image.Image, force bool) error {
	res, err := hooks.Setup(im.Git, force)
	refused := false
	for _, r := range res {
		if r.Err != nil {
			refused = true
			fmt.Fprintf(c.App.ErrWriter, "error: %v\n", r.Err)
		}
	}
	if refused {
		fmt.Fprintln(c.App.ErrWriter, "To resolve this, either:\n  1: run 'git onesis install --manual' for instructions on how to merge hooks.\n  2: run 'git onesis install --force' to overwrite your hook.")
		return cli.Exit("fatal: no hook was installed (git-onesis installs all of its hooks or none)", exitFatal)
	}
	if err != nil {
		return fatal(err)
	}
	if !c.Bool("quiet") {
		for _, r := range res {
			if r.Action != "unchanged" {
				fmt.Fprintf(c.App.ErrWriter, "%s hook %s\n", r.Name, r.Action)
			}
		}
	}
	return nil
}
