package main

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/pkgdb"
	"github.com/onesis/git-onesis/meta"
)

func init() { register(logCmd) }

var logCmd = &cli.Command{
	Name:      "log",
	Usage:     "per commit, the metadata and package changes in a compact form",
	UsageText: "git onesis log [-n N] [--security] [--json] [REVISION-RANGE]",
	Description: "Walks the commits of REVISION-RANGE (default HEAD, newest first, as git log)\n" +
		"and prints, under each commit's one-line summary, its metadata changes in\n" +
		"words against its first parent and the packages it added, removed, upgraded\n" +
		"or downgraded. --security keeps only the changes 'git onesis diff --security'\n" +
		"keeps, with the same filter: security-relevant metadata, and content changes\n" +
		"under etc/ssh, etc/pam.d, sudoers, etc/security and root/.ssh.\n" +
		"Names come from the image's own passwd and group at each commit.\n" +
		"Works on any clone, as any user.",
	Flags: []cli.Flag{
		&cli.IntFlag{Name: "max-count", Aliases: []string{"n"}, Value: 20, Usage: "show at most `N` commits (0: all)"},
		&cli.BoolFlag{Name: "security", Usage: "only security-relevant metadata changes"},
		&cli.BoolFlag{Name: "json", Usage: "print one JSON array of commits"},
	},
	Action: runLog,
}

type jsonLogCommit struct {
	Commit   string         `json:"commit"`
	Subject  string         `json:"subject"`
	Metadata []string       `json:"metadata"`
	Packages []pkgdb.Change `json:"packages"`
	// Content lists, with --security, the content changes under the
	// sensitive directories, in words.
	Content []string `json:"content,omitempty"`
}

func runLog(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageErr("log takes at most one revision range")
	}
	if c.Int("max-count") < 0 {
		return usageErr("-n takes a count of 0 or more")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	rng := "HEAD"
	if c.NArg() == 1 {
		rng = c.Args().First()
	}
	args := []string{"log", "--no-decorate", "--first-parent", "--format=%H %P%x00%s"}
	if n := c.Int("max-count"); n > 0 {
		args = append(args, "-n", strconv.Itoa(n))
	}
	out, err := im.Git.Run(append(args, "--end-of-options", rng, "--")...)
	if err != nil {
		return fatal(fmt.Errorf("listing commits of %s: %w", rng, err))
	}
	w := c.App.Writer
	var js []jsonLogCommit
	empty := &meta.Manifest{}
	// state is what one commit holds: its .gitmeta and its packages.
	type state struct {
		commit string
		m      *meta.Manifest
		pkgs   pkgSet
		pkgOK  bool
		pkgErr error
	}
	var last state
	side := func(commit string) (state, error) {
		if last.m != nil && last.commit == commit {
			return last, nil
		}
		m, err := im.MetaAt(commit)
		if err != nil {
			return state{}, err
		}
		if m == nil {
			m = empty
		}
		st := state{commit: commit, m: m}
		st.pkgs, st.pkgOK, st.pkgErr = packagesAt(im, commit)
		return st, nil
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if line == "" {
			continue
		}
		ids, subject, _ := strings.Cut(line, "\x00")
		f := strings.Fields(ids)
		commit, parent := f[0], ""
		if len(f) > 1 {
			parent = f[1]
		}
		cur, err := side(commit)
		if err != nil {
			return fatal(err)
		}
		old := state{m: empty}
		if parent != "" {
			if old, err = side(parent); err != nil {
				return fatal(err)
			}
		}
		// Along first parents this commit's parent is the next line's
		// commit: keep it instead of reading it again.
		last = old
		last.commit = parent
		names := im.NamesAt(commit)
		changes := meta.Compare(old.m, cur.m)
		var content []string
		if c.Bool("security") {
			var cc []contentChange
			if parent != "" {
				if changes, cc, err = securityChanges(im, changes, parent, commit); err != nil {
					return fatal(err)
				}
			} else {
				// The first commit adds the whole image: its metadata
				// still says what is setuid; its content is all new.
				changes = securityMeta(changes)
			}
			for _, x := range cc {
				content = append(content, x.words())
			}
		}
		var words []string
		for _, ch := range changes {
			words = append(words, meta.Describe(ch, names)...)
		}
		var pkgs []pkgdb.Change
		if cur.pkgErr == nil && old.pkgErr == nil && (cur.pkgOK || old.pkgOK) && parent != "" {
			pkgs = diffPackages(old.pkgs, cur.pkgs)
		}
		if c.Bool("json") {
			if words == nil {
				words = []string{}
			}
			if pkgs == nil {
				pkgs = []pkgdb.Change{}
			}
			js = append(js, jsonLogCommit{Commit: commit, Subject: subject, Metadata: words, Packages: pkgs, Content: content})
			continue
		}
		fmt.Fprintf(w, "%s %s\n", commit[:12], subject)
		for _, s := range append(words, content...) {
			fmt.Fprintf(w, "    %s\n", s)
		}
		for _, p := range pkgs {
			fmt.Fprintf(w, "    package %s\n", p.String())
		}
	}
	if c.Bool("json") {
		if js == nil {
			js = []jsonLogCommit{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(js)
	}
	return nil
}
