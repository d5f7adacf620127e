package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/boot/trust"
)

func init() { register(auditCmd) }

var auditCmd = &cli.Command{
	Name:      "audit",
	Usage:     "which commit each node booted and when, and who signed it",
	UsageText: "git onesis audit [--json | --porcelain [-z]] [--check] [NODE...]",
	Description: "Reads the boot history serve keeps in the reflogs of refs/onesis/booted/NODE\n" +
		"(an entry each time a node was handed a different commit) and checks each\n" +
		"commit's signature with 'git verify-commit', as onesis.serve.requireSignature\n" +
		"does: good, or why not, and the signer. Without NODE, every node that ever\n" +
		"booted. --check exits 1 when a node's current commit has no valid signature\n" +
		"(for cron). Reflog entries are kept as gc.refs/onesis/booted/*.reflogExpire\n" +
		"says; serve sets a year where the site has not.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print one JSON array of boots"},
		&cli.BoolFlag{Name: "porcelain", Usage: "print one tab-separated line per boot: node, time (RFC 3339), commit, signature status letter, valid, signer, from"},
		&cli.BoolFlag{Name: "z", Usage: "with --porcelain, end records with NUL instead of newline"},
		&cli.BoolFlag{Name: "check", Usage: "exit 1 when a node's current commit has no valid signature"},
	},
	Action: runAudit,
}

// auditEntry is one boot of `audit --json`.
type auditEntry struct {
	booted.Boot
	// Current is true for the node's latest entry: what it runs now
	// (unless it rebooted onto another since serve recorded it).
	Current   bool            `json:"current"`
	Signature trust.Signature `json:"signature"`
}

func runAudit(c *cli.Context) error {
	if c.Bool("json") && c.Bool("porcelain") {
		return usageErr("--json and --porcelain are exclusive")
	}
	if c.Bool("z") && !c.Bool("porcelain") {
		return usageErr("-z needs --porcelain")
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	history, err := booted.History(r, c.Args().Slice())
	if err != nil {
		return fatal(err)
	}
	v := &trust.Verifier{Repo: r}
	out := make([]auditEntry, 0, len(history))
	bad := 0
	for i, b := range history {
		sig, err := v.Check(b.Commit)
		if err != nil {
			// A commit gc removed, or one this clone never had.
			sig = trust.Signature{Commit: b.Commit, Status: "?", Reason: "cannot be checked: " + err.Error()}
		}
		e := auditEntry{Boot: b, Signature: sig, Current: i == len(history)-1 || history[i+1].Node != b.Node}
		if e.Current && !sig.Valid {
			bad++
		}
		out = append(out, e)
	}
	w := bufio.NewWriter(c.App.Writer)
	switch {
	case c.Bool("json"):
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fatal(err)
		}
	case c.Bool("porcelain"):
		end := "\n"
		if c.Bool("z") {
			end = "\x00"
		}
		for _, e := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%t\t%s\t%s%s", e.Node, auditTime(e), e.Commit, e.Signature.Status, e.Signature.Valid, e.Signature.Signer, e.From, end)
		}
	default:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NODE\tBOOTED (UTC)\tCOMMIT\tFROM\tSIGNATURE")
		for _, e := range out {
			when := auditTime(e)
			if when == "" {
				when = "- (no history)"
			} else {
				when = e.Time.Format("2006-01-02 15:04:05")
			}
			mark := ""
			if e.Current {
				mark = " *"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s%s\t%s\t%s\n", e.Node, when, shortOID(e.Commit), mark, dash(e.From), sigWords(e.Signature))
		}
		fmt.Fprintln(tw, "(* the node's current commit)")
		if err := tw.Flush(); err != nil {
			return fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		return fatal(err)
	}
	if c.Bool("check") && bad > 0 {
		return cli.Exit(fmt.Sprintf("error: %d node(s) run a commit without a valid signature", bad), exitDiff)
	}
	return nil
}

func auditTime(e auditEntry) string {
	if e.Time.IsZero() {
		return ""
	}
	return e.Time.Format("2006-01-02T15:04:05Z")
}

// sigWords says a signature's state in a few words.
func sigWords(s trust.Signature) string {
	if s.Valid {
		who := s.Signer
		if who == "" {
			who = s.Key
		}
		return "good: " + who
	}
	return "NOT VALID: " + strings.TrimPrefix(s.Reason, "the ")
}
