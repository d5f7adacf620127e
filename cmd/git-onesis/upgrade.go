package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/internal/lifecycle"
)

func init() { register(upgradeCmd) }

var upgradeCmd = &cli.Command{
	Name:      "upgrade",
	Usage:     "upgrade an image on a branch in its own worktree, then promote or abandon it",
	UsageText: "git onesis upgrade start [--from REF] [--dir DIR] [--node N... [--maintenance]] NAME\n   git onesis upgrade promote [--to BRANCH] NAME\n   git onesis upgrade abandon [--force] NAME",
	Description: "Replaces the old recipe's 'rsync -a image-prod image-update': 'start' makes\n" +
		"branch NAME and checks it out into a linked git worktree (sharing the object\n" +
		"store) with .gitmeta applied; boot a test node into it, patch, commit as you\n" +
		"go. The package lists git ignores (var/lib/apt/lists, apt, dnf and yum caches)\n" +
		"are copied from this work tree, so 'apt-get install' works in the worktree.\n" +
		"A start that fails (an unknown node) leaves no branch or worktree behind.\n" +
		"'promote' moves the production branch to NAME (fast-forward, or a merge\n" +
		"where production is checked out) and refuses while either side has\n" +
		"uncommitted changes or drift. 'abandon' removes the worktree and keeps the\n" +
		"branch in history. Promote and abandon move the nodes booting the upgrade\n" +
		"(its branch or worktree) back to what they booted before 'start'.\n" +
		"Checkouts run under umask 077 and are followed by apply.\n\n" +
		"The production branch is --to, else onesis.production, else the branch\n" +
		"checked out in the main work tree.",
	Action: needSubcommand,
	Subcommands: []*cli.Command{
		{
			Name:      "start",
			Usage:     "create branch NAME and a linked worktree for it, metadata applied",
			UsageText: "git onesis upgrade start [--from REF] [--dir DIR] [--node N... [--maintenance]] NAME",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "from", Usage: "start from `REF` (default HEAD)"},
				&cli.StringFlag{Name: "dir", Usage: "put the worktree at `DIR` (default <top>-NAME)"},
				&cli.StringSliceFlag{Name: "node", Usage: "point `NODE` at the upgrade (repeatable): it boots the branch at its next boot"},
				&cli.BoolFlag{Name: "maintenance", Usage: "with --node: boot the worktree itself read-write, to patch on the node"},
				quietFlag,
			},
			Action: runUpgradeStart,
		},
		{
			Name:      "promote",
			Usage:     "move the production branch to upgrade NAME",
			UsageText: "git onesis upgrade promote [--to BRANCH] NAME",
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "to", Usage: "the production `BRANCH`"},
				quietFlag,
			},
			Action: runUpgradePromote,
		},
		{
			Name:      "abandon",
			Usage:     "remove the worktree of upgrade NAME; keep the branch",
			UsageText: "git onesis upgrade abandon [--force] NAME",
			Flags: []cli.Flag{
				&cli.BoolFlag{Name: "force", Usage: "remove the worktree even with uncommitted changes"},
				quietFlag,
			},
			Action: runUpgradeAbandon,
		},
	},
}

// oneName checks for exactly one positional argument, called what in the
// usage error.
func oneName(c *cli.Context, what string) (string, error) {
	if c.NArg() != 1 {
		return "", usageErr("%s takes exactly one %s\nSee '%s --help'.", helpName(c.Command), what, helpName(c.Command))
	}
	return c.Args().First(), nil
}

func runUpgradeStart(c *cli.Context) error {
	name, err := oneName(c, "NAME")
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	if c.Bool("maintenance") && len(c.StringSlice("node")) == 0 {
		return usageErr("--maintenance goes with --node")
	}
	res, err := lifecycle.Start(im, name, lifecycle.StartOptions{From: c.String("from"), Dir: c.String("dir"),
		Nodes: c.StringSlice("node"), Maintenance: c.Bool("maintenance")})
	if err != nil {
		return fatal(err)
	}
	fmt.Fprintf(out(c), "upgrade %s started at %s in %s\n", res.Branch, res.Commit[:12], res.Dir)
	for _, w := range res.Warnings {
		fmt.Fprintln(c.App.ErrWriter, "warning: "+w)
	}
	for _, n := range c.StringSlice("node") {
		if c.Bool("maintenance") {
			fmt.Fprintf(out(c), "node %s boots %s read-write at its next boot\n", n, res.Dir)
		} else {
			fmt.Fprintf(out(c), "node %s boots %s at its next boot\n", n, res.Branch)
		}
	}
	if res.Apply != nil {
		if err := applyReport(c, res.Apply); err != nil {
			return err
		}
	}
	return nil
}

// productionBranch picks the branch promote and rollback move.
func productionBranch(c *cli.Context, im *image.Image, flag string) (string, error) {
	if b := c.String(flag); b != "" {
		return strings.TrimPrefix(b, "refs/heads/"), nil
	}
	if b, ok, _ := im.Git.Config("onesis.production"); ok && b != "" {
		return strings.TrimPrefix(b, "refs/heads/"), nil
	}
	wts, err := lifecycle.Worktrees(im.Git)
	if err != nil {
		return "", err
	}
	if len(wts) > 0 && wts[0].Branch != "" {
		return wts[0].Branch, nil
	}
	return "", fmt.Errorf("cannot tell which branch is production: pass --%s, or set onesis.production", flag)
}

func runUpgradePromote(c *cli.Context) error {
	name, err := oneName(c, "NAME")
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	to, err := productionBranch(c, im, "to")
	if err != nil {
		return fatal(err)
	}
	if to == name {
		return usageErr("cannot promote %s onto itself", name)
	}
	res, err := lifecycle.Promote(im, name, to)
	if err != nil {
		return fatal(err)
	}
	w := out(c)
	if res.UpToDate {
		fmt.Fprintf(w, "%s is already at %s (%s)\n", to, name, res.New[:12])
		printReleased(c, res.Released)
		return nil
	}
	if res.FastForward {
		fmt.Fprintf(w, "%s fast-forwarded to %s: %s -> %s; nodes pick it up at their next boot\n", to, name, res.Old[:12], res.New[:12])
	} else {
		fmt.Fprintf(w, "%s merged into %s: %s -> %s; nodes pick it up at their next boot\n", name, to, res.Old[:12], res.New[:12])
	}
	printPackageChanges(c, im, res.Old, res.New)
	printReleased(c, res.Released)
	if res.Apply != nil {
		return applyReport(c, res.Apply)
	}
	return nil
}

func runUpgradeAbandon(c *cli.Context) error {
	name, err := oneName(c, "NAME")
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	dir, rel, err := lifecycle.Abandon(im, name, c.Bool("force"))
	printReleased(c, rel)
	if err != nil {
		return fatal(err)
	}
	fmt.Fprintf(out(c), "removed the worktree %s; branch %s is kept\n", dir, name)
	return nil
}

// printReleased says where the nodes taken off an upgrade boot now.
func printReleased(c *cli.Context, rel []lifecycle.Released) {
	for _, r := range rel {
		to := "the default (serve --ref or the checked-out branch)"
		if r.Ref != "" {
			to = r.Ref
		}
		fmt.Fprintf(out(c), "node %s boots %s at its next boot (was %s)\n", r.Node, to, r.Was)
	}
}

// printPackageChanges lists the packages that differ between two commits,
// when the image has a package database; silent otherwise.
func printPackageChanges(c *cli.Context, im *image.Image, from, to string) {
	old, okOld, err1 := packagesAt(im, from)
	cur, okNew, err2 := packagesAt(im, to)
	if err1 != nil || err2 != nil || (!okOld && !okNew) {
		return
	}
	changes := diffPackages(old, cur)
	if len(changes) == 0 {
		return
	}
	fmt.Fprintf(out(c), "packages (%d changed):\n", len(changes))
	for _, ch := range changes {
		fmt.Fprintln(out(c), "  "+ch.String())
	}
}
