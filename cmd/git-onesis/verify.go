package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
)

// verifyCmd is status for cron and monitoring, plus a check against any
// commit and of its signature.
var verifyCmd = &cli.Command{
	Name:      "verify",
	Usage:     "check the work tree against a commit (content and metadata) and its signature",
	UsageText: "git onesis verify [--rev REV] [--require-signature] [--porcelain [-z] | --json] [-q]",
	Description: "Without --rev, the same report as 'git onesis status'. With --rev, the work\n" +
		"tree is compared with REV instead of HEAD: content as 'git diff REV' sees it,\n" +
		"untracked files, and metadata against REV's .gitmeta. Exit 1 on any\n" +
		"difference, so cron or monitoring can alert.\n\n" +
		"--require-signature (or onesis.requireSignature=true) also demands a valid\n" +
		"GPG or SSH signature on the commit ('git verify-commit'); a missing or bad\n" +
		"signature is reported and exits 1. 'git fsck' covers the object store.",
	Flags: append([]cli.Flag{
		&cli.StringFlag{Name: "rev", Usage: "verify against `REV` instead of HEAD"},
		&cli.BoolFlag{Name: "require-signature", Usage: "fail unless the commit has a valid signature"},
	}, statusFlags...),
	Action: runVerify,
}

func runVerify(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("verify takes no arguments; name the commit with --rev")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	rev := c.String("rev")
	requireSig := c.Bool("require-signature")
	if !requireSig {
		if v, err := im.Git.ConfigBool("onesis.requireSignature", false); err != nil {
			return fatal(err)
		} else if v {
			requireSig = true
		}
	}
	m := meter(c, im, "Checking metadata")
	im.Progress = m.Set
	var st *image.Status
	if rev == "" {
		st, err = im.Status()
	} else {
		st, err = im.StatusAgainst(rev)
	}
	m.Done()
	if err != nil {
		return fatal(err)
	}
	w := c.App.Writer
	switch {
	case c.Bool("json"):
		writeStatusJSON(w, st)
	case c.Bool("porcelain"):
		writeStatusPorcelain(w, st, c.Bool("z"))
	default:
		writeStatusHuman(w, st, im.NamesAt(rev))
	}
	sigBad := false
	if requireSig {
		target := rev
		if target == "" {
			target = "HEAD"
		}
		if err := im.VerifySignature(target); err != nil {
			fmt.Fprintln(c.App.ErrWriter, "error: "+err.Error())
			sigBad = true
		}
	}
	if !st.Clean() || sigBad {
		return cli.Exit("", exitDiff)
	}
	return nil
}
