package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/boot/serve"
	"github.com/onesis/git-onesis/internal/progress"
)

func init() { register(fsckCmd) }

var fsckCmd = &cli.Command{
	Name:      "fsck",
	Usage:     "check that the files serve serves (NFS blob store, kernel and initramfs caches) are the objects git names",
	UsageText: "git onesis fsck --served [--state-dir DIR]... [--repair] [--json | -q] [--progress WHEN]",
	Description: "Hashes every file of serve's state directories: each NFS blob store file and\n" +
		"cached kernel must hash to its git blob id, each cached initramfs to the\n" +
		"sha256 recorded when it was built. Each problem is printed on a line; exit 1\n" +
		"when there is any (like git fsck). --repair moves bad files into the state\n" +
		"directory's quarantine/ (never deleting them) and rebuilds blobs from git;\n" +
		"an initramfs is only moved aside, serve builds it again. Safe while serve\n" +
		"runs. 'git fsck' checks the object store itself. See docs/serve.md.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "served", Usage: "check the served files (required: the only check fsck makes)"},
		&cli.StringSliceFlag{Name: "state-dir", Usage: "check `DIR` (repeatable; default: serve's GITDIR/onesis/serve and GITDIR/onesis/nfs)"},
		&cli.BoolFlag{Name: "repair", Usage: "move bad files aside and rebuild them from git"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON document"},
		&cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing; the exit code tells (0 clean, 1 not)"},
		progressFlag,
	},
	Action: runFsck,
}

// fsckProblem is one bad file, as --json prints it.
type fsckProblem struct {
	Store      string `json:"store"`
	Name       string `json:"name"`
	Path       string `json:"path"`
	Problem    string `json:"problem"`
	Quarantine string `json:"quarantine,omitempty"`
	Repaired   bool   `json:"repaired,omitempty"`
	Error      string `json:"error,omitempty"`
}

func runFsck(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("fsck takes no arguments; name state directories with --state-dir")
	}
	if !c.Bool("served") {
		return usageErr("fsck checks served files only: give --served ('git fsck' checks the object store)")
	}
	if c.Bool("json") && c.Bool("quiet") {
		return usageErr("-q prints nothing; it cannot be used with --json")
	}
	r, err := discoverRepo()
	if err != nil {
		return err
	}
	dirs := c.StringSlice("state-dir")
	if len(dirs) == 0 {
		for _, d := range []string{serve.DefaultStateDir(r), filepath.Join(r.CommonDir, "onesis", "nfs")} {
			if _, err := os.Lstat(d); err == nil {
				dirs = append(dirs, d)
			}
		}
	}
	var entries []integrity.Entry
	for _, d := range dirs {
		es, err := integrity.Entries(d)
		if err != nil {
			return fatal(fmt.Errorf("reading the state directory %s: %w", d, err))
		}
		entries = append(entries, es...)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	w := c.App.Writer
	checked := map[string]int{}
	problems := []fsckProblem{}
	mode := c.String("progress")
	if mode == "" {
		mode, _, _ = r.Config("onesis.progress")
	}
	var m *progress.Meter
	if !c.Bool("quiet") {
		m = progress.New(c.App.ErrWriter, "Checking served files", progress.Enabled(mode))
	}
	for i, e := range entries {
		m.Set(i)
		if ctx.Err() != nil {
			return cli.Exit("fatal: interrupted", exitFatal)
		}
		checked[e.Store]++
		problem, id := integrity.CheckEntry(ctx, e, nil)
		if problem == "" {
			continue
		}
		p := fsckProblem{Store: e.Store, Name: e.Name, Path: e.Path, Problem: problem}
		if c.Bool("repair") {
			rep := integrity.RepairEntry(ctx, e, id, problem, r.CommonDir)
			p.Quarantine, p.Repaired, p.Error = rep.Quarantine, rep.Repaired, rep.RepairErr
		}
		problems = append(problems, p)
		if !c.Bool("json") && !c.Bool("quiet") {
			fmt.Fprintln(w, fsckLine(p))
		}
	}
	m.Set(len(entries))
	m.Done()
	if c.Bool("json") {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(struct {
			Clean    bool           `json:"clean"`
			Dirs     []string       `json:"state_dirs"`
			Checked  map[string]int `json:"checked"`
			Problems []fsckProblem  `json:"problems"`
		}{len(problems) == 0, dirs, checked, problems}); err != nil {
			return fatal(err)
		}
	}
	if len(problems) > 0 {
		return cli.Exit("", 1)
	}
	return nil
}

// fsckLine is a problem as one line: "STORE PATH: PROBLEM[; what was done]".
func fsckLine(p fsckProblem) string {
	s := fmt.Sprintf("%s %s: %s", p.Store, p.Path, p.Problem)
	if p.Quarantine != "" {
		s += "; moved to " + p.Quarantine
	}
	switch {
	case p.Repaired:
		s += "; rebuilt from git"
	case p.Error != "":
		s += "; " + p.Error
	}
	return s
}
