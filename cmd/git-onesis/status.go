package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/access"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var statusFlags = []cli.Flag{
	&cli.BoolFlag{Name: "porcelain", Usage: "stable, script-friendly output (see git-onesis-status(1))"},
	&cli.BoolFlag{Name: "z", Usage: "end records with NUL and do not escape paths (implies --porcelain)"},
	&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
	&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing; the exit code tells (0 clean, 1 not)"},
	progressFlag,
}

var statusCmd = &cli.Command{
	Name:      "status",
	Usage:     "show content changes and metadata drift; exit 1 if anything differs",
	UsageText: "git onesis status [--porcelain [-z] | --json | -q]",
	Description: "Reports, in one list, what git sees (modified, added, deleted, untracked) and\n" +
		"every difference between .gitmeta and the tree: owners, modes, setuid bits,\n" +
		"devices, xattrs, capabilities, missing or extra special files. As non-root,\n" +
		"ownership that could not be applied is listed apart and does not count as drift.",
	Flags:  statusFlags,
	Action: runStatus,
}

type jsonChange struct {
	Path    string   `json:"path"`
	Kind    string   `json:"kind"`
	Fields  []string `json:"fields,omitempty"`
	Words   []string `json:"description,omitempty"`
	NotRoot bool     `json:"not_root,omitempty"`
}

type jsonStatus struct {
	Clean    bool         `json:"clean"`
	Content  []jsonChange `json:"content"`
	Metadata []jsonChange `json:"metadata"`
	// Signature is verify's signature check, when one was required.
	Signature *sigCheck `json:"signature,omitempty"`
}

func runStatus(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("status takes no arguments")
	}
	format, err := reportFormat(c)
	if err != nil {
		return err
	}
	im, err := openConfiguredImage(c) // status sets no config
	if err != nil {
		return err
	}
	m := meter(c, im, "Checking metadata")
	im.Progress = m.Set
	st, err := im.Status()
	if err != nil {
		return fatal(err)
	}
	m.Done()
	warnExposed(c, im)
	writeStatus(c, format, st, im.NamesAt(""), nil, im.Root)
	if !st.Clean() {
		return cli.Exit("", exitDiff)
	}
	return nil
}

// reportFormat picks the output of a report from --json, --porcelain and
// -z, as git status does: -z alone implies --porcelain; --json goes with
// neither. -q prints nothing ("quiet"), the exit code tells.
func reportFormat(c *cli.Context) (string, error) {
	j, p, z := c.Bool("json"), c.Bool("porcelain"), c.Bool("z")
	switch {
	case j && (p || z):
		return "", usageErr("--json cannot be used with --porcelain or -z")
	case c.Bool("quiet") && (j || p || z):
		return "", usageErr("-q prints nothing; it cannot be used with --json, --porcelain or -z")
	case c.Bool("quiet"):
		return "quiet", nil
	case j:
		return "json", nil
	case p || z:
		return "porcelain", nil
	}
	return "human", nil
}

// writeStatus prints a status or verify report in format; sig is the
// signature check of verify (nil when none was asked for).
func writeStatus(c *cli.Context, format string, st *image.Status, names *meta.Names, sig *sigCheck, root string) {
	w := c.App.Writer
	switch format {
	case "json":
		writeStatusJSON(w, st, sig)
	case "porcelain":
		writeStatusPorcelain(w, st, c.Bool("z"), sig)
	case "human":
		writeStatusHuman(w, st, names, sig, root)
	}
}

// warnExposed warns when every user of the machine can read the
// repository's objects, and so the image's secrets.
func warnExposed(c *cli.Context, im *image.Image) {
	if c.Bool("quiet") {
		return
	}
	p, err := access.Exposed(im.Git.CommonDir)
	if err != nil || p == "" {
		return
	}
	if rel, err := filepath.Rel(im.Root, p); err == nil && !strings.HasPrefix(rel, "..") {
		p = rel
	}
	fmt.Fprintf(c.App.ErrWriter, "warning: every user of this machine can read this repository's objects (%s is world-readable),\n"+
		"and with them the image's secrets (etc/shadow, host keys); make it readable by root and\n"+
		"your reviewers only with 'git onesis install --reviewers GROUP'\n", p)
}

func kindWord(k meta.ChangeKind) string {
	switch k {
	case meta.Added:
		return "added"
	case meta.Removed:
		return "missing"
	}
	return "modified"
}

// display renders a raw path safely for a terminal: vis-escaped, without
// the "./" prefix.
func display(p string) string { return strings.TrimPrefix(meta.EscapePath(p), "./") }

func writeStatusHuman(w io.Writer, st *image.Status, names *meta.Names, sig *sigCheck, root string) {
	if st.Clean() {
		if sig == nil || sig.Valid {
			fmt.Fprintln(w, "nothing to report: content and metadata match")
		} else {
			fmt.Fprintln(w, "content and metadata match")
		}
	}
	if len(st.Content) > 0 {
		fmt.Fprintln(w, "Content changes (git status):")
		for _, e := range st.Content {
			fmt.Fprintf(w, "\t%s %s\n", e.XY, display(e.Path))
		}
	}
	var drift, notRoot []image.Drift
	for _, d := range st.Drift {
		if d.NotRoot {
			notRoot = append(notRoot, d)
		} else {
			drift = append(drift, d)
		}
	}
	if len(drift) > 0 {
		fmt.Fprintln(w, "Metadata drift (tree differs from .gitmeta):")
		for _, d := range drift {
			for _, s := range meta.Describe(d.Change, names) {
				fmt.Fprintf(w, "\t%s\n", s)
			}
		}
	}
	if !st.Clean() {
		for _, h := range statusHints(st, drift, root) {
			fmt.Fprintln(w, h)
		}
	}
	if len(notRoot) > 0 {
		fmt.Fprintf(w, "Not applied as non-root: ownership or devices of %d entries (expected; not drift)\n", len(notRoot))
	}
	if sig != nil {
		fmt.Fprintln(w, sig.words())
	}
}

// unreadable counts the changed files the current user cannot open (as
// non-root, a file whose mode denies its owner).
func unreadable(root string, content []image.ContentChange) int {
	if os.Geteuid() == 0 {
		return 0
	}
	n := 0
	for _, e := range content {
		if e.XY == "??" || e.XY[1] != 'M' {
			continue
		}
		f, err := os.Open(filepath.Join(root, e.Path))
		if errors.Is(err, fs.ErrPermission) {
			n++
		} else if err == nil {
			f.Close()
		}
	}
	return n
}

// statusHints says how to restore or commit what the report lists. Each
// hint, followed literally, does what it says (the tests follow them).
func statusHints(st *image.Status, drift []image.Drift, root string) []string {
	var hints []string
	restorable := false
	if n := unreadable(root, st.Content); n > 0 {
		// A clone applied by an older git-onesis, or a chmod 0: git cannot
		// read the file, so it looks changed.
		hints = append(hints, fmt.Sprintf("  (%d changed files are unreadable to you, their owner, so git cannot compare them;\n"+
			"   'git onesis apply' gives the owner read access back)", n))
		return hints
	}
	for _, d := range drift {
		// apply sets owners, modes, xattrs and links, and creates missing
		// specials and directories; it neither writes file contents nor
		// deletes what .gitmeta does not know.
		if d.Kind == meta.Modified || (d.Kind == meta.Removed && d.Old != nil && !d.Old.Type.GitCarries()) {
			restorable = true
		}
	}
	if restorable {
		hints = append(hints, "  (use 'git onesis apply' to restore the recorded metadata)")
	}
	untracked, unstaged := false, false
	for _, e := range st.Content {
		switch {
		case e.XY == "??":
			untracked = true
		case e.XY[1] != ' ':
			unstaged = true
		}
	}
	commit := "git onesis commit"
	switch {
	case untracked:
		commit = "git add -A && git onesis commit"
	case unstaged:
		commit = "git onesis commit -a"
	}
	return append(hints, "  (use '"+commit+"' to record and commit the tree as it is)")
}

func writeStatusPorcelain(w io.Writer, st *image.Status, z bool, sig *sigCheck) {
	end := "\n"
	path := display
	if z {
		end = "\x00"
		path = func(p string) string { return p }
	}
	for _, e := range st.Content {
		fmt.Fprintf(w, "C %s %s%s", e.XY, path(e.Path), end)
	}
	for _, d := range st.Drift {
		tag := "M"
		if d.NotRoot {
			tag = "R"
		}
		fields := d.Fields()
		if d.Kind != meta.Modified {
			fields = []string{kindWord(d.Kind)}
		}
		fmt.Fprintf(w, "%s %s %s%s", tag, strings.Join(fields, ","), path(d.Path), end)
	}
	if sig != nil {
		fmt.Fprintf(w, "S %s %s%s", sig.state(), sig.Commit, end)
	}
}

func writeStatusJSON(w io.Writer, st *image.Status, sig *sigCheck) {
	out := jsonStatus{Clean: st.Clean() && (sig == nil || sig.Valid), Content: []jsonChange{}, Metadata: []jsonChange{}, Signature: sig}
	for _, e := range st.Content {
		out.Content = append(out.Content, jsonChange{Path: display(e.Path), Kind: strings.TrimSpace(e.XY)})
	}
	for _, d := range st.Drift {
		out.Metadata = append(out.Metadata, jsonChange{
			Path: display(d.Path), Kind: kindWord(d.Kind), Fields: d.Fields(),
			Words: meta.Describe(d.Change, nil), NotRoot: d.NotRoot,
		})
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(out)
}
