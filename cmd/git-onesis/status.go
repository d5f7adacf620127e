package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var statusFlags = []cli.Flag{
	&cli.BoolFlag{Name: "porcelain", Usage: "stable, script-friendly output (see git-onesis-status(1))"},
	&cli.BoolFlag{Name: "z", Usage: "with --porcelain, end records with NUL and do not escape paths"},
	&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
	quietFlag, progressFlag,
}

var statusCmd = &cli.Command{
	Name:      "status",
	Usage:     "show content changes and metadata drift; exit 1 if anything differs",
	UsageText: "git onesis status [--porcelain [-z] | --json] [-q]",
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
}

func runStatus(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("status takes no arguments")
	}
	im, err := openImage(c)
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
	w := c.App.Writer
	switch {
	case c.Bool("json"):
		writeStatusJSON(w, st)
	case c.Bool("porcelain"):
		writeStatusPorcelain(w, st, c.Bool("z"))
	default:
		writeStatusHuman(w, st, im.NamesAt(""))
	}
	if !st.Clean() {
		return cli.Exit("", exitDiff)
	}
	return nil
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

func writeStatusHuman(w io.Writer, st *image.Status, names *meta.Names) {
	if st.Clean() {
		fmt.Fprintln(w, "nothing to report: content and metadata match")
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
		fmt.Fprintln(w, "  (use 'git onesis apply' to restore the recorded metadata,")
		fmt.Fprintln(w, "   or 'git onesis commit' to record and commit the tree as it is)")
	}
	if len(notRoot) > 0 {
		fmt.Fprintf(w, "Not applied as non-root: ownership of %d entries (expected; not drift)\n", len(notRoot))
	}
}

func writeStatusPorcelain(w io.Writer, st *image.Status, z bool) {
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
}

func writeStatusJSON(w io.Writer, st *image.Status) {
	out := jsonStatus{Clean: st.Clean(), Content: []jsonChange{}, Metadata: []jsonChange{}}
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
