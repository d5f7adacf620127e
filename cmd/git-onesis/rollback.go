package main

import (
	"fmt"
	"sort"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/lifecycle"
)

func init() { register(rollbackCmd) }

var rollbackCmd = &cli.Command{
	Name:      "rollback",
	Usage:     "move production back to REV's tree through a new commit",
	UsageText: "git onesis rollback [--branch BRANCH] REV",
	Description: "Commits REV's tree (files and .gitmeta) on top of the production branch, so\n" +
		"history keeps both the bad commit and the way back; nothing is rewritten.\n" +
		"Where the branch is checked out, its work tree moves (under umask 077) and\n" +
		".gitmeta is applied. Refuses while that work tree has uncommitted changes.\n" +
		"Prints the packages whose versions go back, and the nodes still running\n" +
		"another tree (from the refs serve records at each boot): they change at\n" +
		"their next boot.\n\n" +
		"The branch is --branch, else onesis.production, else the branch checked out\n" +
		"in the main work tree.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "branch", Usage: "the production `BRANCH` to roll back"},
		quietFlag,
	},
	Action: runRollback,
}

func runRollback(c *cli.Context) error {
	rev, err := oneName(c, "REV")
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	branch, err := productionBranch(c, im, "branch")
	if err != nil {
		return fatal(err)
	}
	res, err := lifecycle.Rollback(im, rev, branch)
	if err != nil {
		return fatal(err)
	}
	w := out(c)
	if res.AlreadyThere {
		fmt.Fprintf(w, "%s already has the tree of %s; nothing to roll back\n", branch, rev)
	} else {
		fmt.Fprintf(w, "%s rolled back to the tree of %s (%s): new commit %s on top of %s\n", branch, rev, res.Target[:12], res.New[:12], res.Old[:12])
		printPackageChanges(c, im, res.Old, res.New)
	}
	nodes := make([]string, 0, len(res.StillOnNewer))
	for n := range res.StillOnNewer {
		nodes = append(nodes, n)
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		fmt.Fprintf(w, "node %s still runs %s; it moves at its next boot\n", n, res.StillOnNewer[n][:12])
	}
	if res.Apply != nil {
		return applyReport(c, res.Apply)
	}
	return nil
}
