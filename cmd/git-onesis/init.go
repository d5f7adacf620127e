package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/hooks"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/internal/trace"
	"github.com/onesis/git-onesis/meta"
)

// defaultIgnore is written to a new image's .gitignore: runtime and virtual
// filesystems whose contents never belong in an image. The directories
// themselves are still recorded (with their modes) in .gitmeta.
const defaultIgnore = `# git-onesis image defaults: contents of runtime and virtual filesystems.
# The directories themselves stay in .gitmeta with their owners and modes.
/proc/*
/sys/*
/run/*
/tmp/*
/var/tmp/*
/ram/*
/lost+found/*
/var/cache/apt/archives/*.deb
/var/cache/apt/*.bin
/var/lib/apt/lists/*
/var/cache/yum/*
/var/cache/dnf/*
# temporary files of an interrupted atomic write of .gitmeta
/.gitmeta[0-9]*
`

var initCmd = &cli.Command{
	Name:      "init",
	Usage:     "turn an image directory into an image repository",
	UsageText: "git onesis init [--commit] [-m MSG] [--no-hooks] [DIR]",
	Description: "Creates the repository if needed, writes image .gitignore defaults (when there\n" +
		"is no .gitignore), installs the hooks, stages the tree and records .gitmeta.\n" +
		"With --commit it makes the first commit. In a clone that already has a\n" +
		".gitmeta, it installs the hooks and applies the metadata instead.\n\n" +
		"The repository's objects hold the image's secrets (etc/shadow, host keys),\n" +
		"so its git directory is made readable by its owner only, or also by the\n" +
		"group --reviewers names (core.sharedRepository keeps it so for every object\n" +
		"git writes later); init says which.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "commit", Usage: "make the first commit"},
		reviewersFlag,
		&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Value: "Import image with git-onesis", Usage: "commit `MSG` for --commit"},
		&cli.BoolFlag{Name: "no-hooks", Usage: "do not install hooks"},
		&cli.BoolFlag{Name: "force", Aliases: []string{"f"}, Usage: "overwrite foreign hooks"},
		quietFlag, progressFlag,
	},
	Action: runInit,
}

func runInit(c *cli.Context) error {
	if c.NArg() > 1 {
		return usageErr("init takes at most one directory")
	}
	dir := "."
	if c.NArg() == 1 {
		dir = c.Args().First()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return fatal(err)
	}
	if st, err := os.Stat(abs); err != nil || !st.IsDir() {
		return fatal(fmt.Errorf("%s is not a directory", dir))
	}
	if err := os.Chdir(abs); err != nil {
		return fatal(err)
	}
	r, err := git.Discover(abs)
	if err == nil && !r.Bare {
		if top, _ := filepath.EvalSymlinks(r.Top); top != mustEval(abs) {
			err = git.ErrNotRepo // inside another repository: the image gets its own
		}
	}
	if errors.Is(err, git.ErrNotRepo) {
		cmd := exec.Command("git", "init", "-q", abs)
		cmd.Stderr = c.App.ErrWriter
		if err := cmd.Run(); err != nil {
			return fatal(fmt.Errorf("git init %s: %w", abs, err))
		}
	} else if err != nil {
		return fatal(err)
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	if err := restrictAccess(c, im); err != nil {
		return err
	}
	if _, ok, _ := im.Git.IndexBlob(image.MetaFile); ok {
		// A clone of an image repository: install and apply.
		if !c.Bool("no-hooks") {
			if err := installHooks(c, im, c.Bool("force")); err != nil {
				return err
			}
		}
		res, err := im.ApplyWorktreeMeta(image.ApplyOptions{})
		if err != nil {
			return fatal(err)
		}
		return applyReport(c, res)
	}
	ign := filepath.Join(abs, ".gitignore")
	if _, err := os.Lstat(ign); errors.Is(err, os.ErrNotExist) {
		if _, err := meta.WriteBytes(ign, []byte(defaultIgnore), 0o644); err != nil {
			return fatal(fmt.Errorf("writing .gitignore: %w", err))
		}
	}
	if !c.Bool("no-hooks") {
		if err := installHooks(c, im, c.Bool("force")); err != nil {
			return err
		}
	} else if err := im.Git.SetConfig("onesis.enabled", "true"); err != nil {
		return fatal(err)
	}
	if !c.Bool("quiet") {
		fmt.Fprintln(c.App.ErrWriter, "Staging the tree (git add -A)...")
	}
	m := meter(c, im, "Recording metadata")
	im.Progress = m.Set
	// git add -A hashes and compresses every file on one CPU: the tree
	// is staged in chunks on every CPU (git.Repo.AddAll), and the
	// metadata walk runs beside them.
	_, man, err := im.RecordWhile(func() error {
		n, err := im.Git.AddAll(runtime.NumCPU())
		trace.Printf("init: the tree was staged by %d git processes at once", n)
		return err
	})
	if err != nil {
		return fatal(err)
	}
	m.Done()
	if !c.Bool("quiet") {
		fmt.Fprintf(c.App.ErrWriter, "Recorded %s\n", summarize(man))
	}
	if c.Bool("commit") {
		if err := gitCommit(c, im, []string{"-q", "-m", c.String("message")}, true); err != nil {
			return err
		}
	}
	return nil
}

func mustEval(p string) string {
	if e, err := filepath.EvalSymlinks(p); err == nil {
		return e
	}
	return p
}

// summarize counts a manifest's entries by type for the admin.
func summarize(m *meta.Manifest) string {
	counts := map[meta.Type]int{}
	links := 0
	for i := range m.Entries {
		counts[m.Entries[i].Type]++
		if m.Entries[i].Hardlink != "" {
			links++
		}
	}
	return fmt.Sprintf("%d entries in .gitmeta (%d files, %d dirs, %d symlinks, %d devices, %d fifos, %d sockets, %d hard links)",
		len(m.Entries), counts[meta.TypeFile], counts[meta.TypeDir], counts[meta.TypeSymlink],
		counts[meta.TypeChar]+counts[meta.TypeBlock], counts[meta.TypeFifo], counts[meta.TypeSocket], links)
}

// gitCommit runs 'git commit ARGS' after git-onesis has just recorded, so the
// pre-commit hook does not scan again.
// With recorded false (pathspecs or -a may change what is committed), the
// pre-commit hook records again for the index git actually commits.
func gitCommit(c *cli.Context, im *image.Image, args []string, recorded bool) error {
	cmd := im.Git.Cmd(append([]string{"commit"}, args...)...)
	// The first commit of an image writes tens of thousands of trees,
	// each compressed: git.MallocKeepEnv spares the page faults.
	cmd.Env = append(os.Environ(), git.MallocKeepEnv())
	if recorded {
		// Which blob was staged is told to pre-commit, which then need
		// not read .gitmeta back to name it.
		id, ok, err := im.Git.IndexID(image.MetaFile)
		if err != nil || !ok {
			id = ""
		}
		cmd.Env = append(cmd.Env, hooks.RecordedEnv(id))
	}
	cmd.Stdin, cmd.Stdout, cmd.Stderr = c.App.Reader, c.App.Writer, c.App.ErrWriter
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return cli.Exit("", ee.ExitCode())
		}
		return fatal(err)
	}
	return nil
}
