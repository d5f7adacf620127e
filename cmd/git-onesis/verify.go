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
	UsageText: "git onesis verify [--rev REV] [--require-signature] [--porcelain [-z] | --json | -q]",
	Description: "Without --rev, the same report as 'git onesis status'. With --rev, the work\n" +
		"tree is compared with REV instead of HEAD: content as 'git diff REV' sees it,\n" +
		"untracked files, and metadata against REV's .gitmeta. Exit 1 on any\n" +
		"difference, so cron or monitoring can alert.\n\n" +
		"--require-signature (or onesis.requireSignature=true) also demands a valid\n" +
		"GPG or SSH signature on the commit ('git verify-commit'); a missing or bad\n" +
		"signature is reported and exits 1, and the report says so: the JSON has\n" +
		"\"signature\": {\"commit\", \"valid\", \"message\"} and \"clean\": false, the porcelain\n" +
		"a last record 'S valid|invalid COMMIT'. 'git fsck' covers the object store.",
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
	format, err := reportFormat(c)
	if err != nil {
		return err
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
	var sig *sigCheck
	if requireSig {
		target := rev
		if target == "" {
			target = "HEAD"
		}
		commit, err := im.Git.ResolveRev(target)
		if err != nil {
			return fatal(err)
		}
		sig = &sigCheck{Commit: commit, Valid: true}
		if err := im.VerifySignature(target); err != nil {
			sig.Valid, sig.Message = false, err.Error()
			fmt.Fprintln(c.App.ErrWriter, "error: "+err.Error())
		}
	}
	warnExposed(c, im)
	writeStatus(c, format, st, im.NamesAt(rev), sig, im.Root)
	if !st.Clean() || (sig != nil && !sig.Valid) {
		return cli.Exit("", exitDiff)
	}
	return nil
}

// sigCheck is the signature part of a verify report.
type sigCheck struct {
	Commit  string `json:"commit"`
	Valid   bool   `json:"valid"`
	Message string `json:"message,omitempty"` // why it is not valid
}

func (s *sigCheck) state() string {
	if s.Valid {
		return "valid"
	}
	return "invalid"
}

func (s *sigCheck) words() string {
	if s.Valid {
		return fmt.Sprintf("Signature: commit %s has a valid signature", s.Commit[:12])
	}
	return fmt.Sprintf("Signature: commit %s has NO valid signature (see the error above)", s.Commit[:12])
}
