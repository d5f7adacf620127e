package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/serve"
	"github.com/onesis/git-onesis/internal/lifecycle"
)

func init() { register(syncCmd) }

var syncCmd = &cli.Command{
	Name:      "sync",
	Usage:     "keep a boot server's clone current: fetch, follow the branch, prepare new commits",
	UsageText: "git onesis sync [--remote NAME] [--no-fetch] [--state-dir DIR] [--init BINARY] [--module M...] [REV...]",
	Description: "For boot servers that are clones of a central image repository. Fetches the\n" +
		"remote's branches and its node inventory (refs/onesis/inventory), fast-\n" +
		"forwards the checked-out branch to its upstream when the work tree is clean\n" +
		"(under umask 077, then .gitmeta applied; a diverged branch or local changes\n" +
		"are left alone and reported), then prepares what nodes will ask for: the\n" +
		"NFS blob store and index, the kernel and the initramfs of HEAD, of every\n" +
		"node's ref and of each REV, in the caches 'git onesis serve' reads. A boot\n" +
		"storm after an upgrade then finds everything built. Work already done is\n" +
		"not repeated; a new commit costs its difference from those prepared.\n" +
		"Run it from cron or a post-receive hook of the central repository.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "remote", Usage: "fetch from `NAME` (default: the branch's upstream remote, else origin)"},
		&cli.BoolFlag{Name: "no-fetch", Usage: "only prepare; do not fetch or move the branch"},
		stateDirFlag, initFlag, moduleFlag,
		&cli.BoolFlag{Name: "no-nfs", Usage: "do not prepare the NFS export (a site serving the root with knfsd)"},
		&cli.BoolFlag{Name: "no-initrd", Usage: "do not prepare kernels and initramfs images"},
		quietFlag,
	},
	Action: runSync,
}

func runSync(c *cli.Context) error {
	im, err := openImage(c)
	if err != nil {
		return err
	}
	w := c.App.Writer
	var commits []string
	if !c.Bool("no-fetch") {
		res, err := lifecycle.FetchAndFollow(im, c.String("remote"))
		if err != nil {
			return fatal(err)
		}
		switch {
		case res.Followed:
			fmt.Fprintf(w, "%s: %s -> %s (from %s)\n", res.Branch, res.Old[:12], res.New[:12], res.Remote)
		case res.Note != "":
			fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", res.Note)
		default:
			fmt.Fprintf(w, "%s: up to date with %s\n", res.Branch, res.Remote)
		}
		commits = res.Commits
	} else if head, ok, err := im.Git.HeadCommit(); err != nil {
		return fatal(err)
	} else if ok {
		commits = append(commits, head)
	}
	for _, rev := range c.Args().Slice() {
		commit, err := im.Git.ResolveRev(rev)
		if err != nil {
			return fatal(err)
		}
		commits = append(commits, commit)
	}
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	prep, err := serve.Prepare(ctx, serve.PrepareOptions{
		RepoDir: im.Root, StateDir: c.String("state-dir"), InitPath: c.String("init"),
		Modules: c.StringSlice("module"), NoNFS: c.Bool("no-nfs"), NoInitrd: c.Bool("no-initrd"),
	}, serve.Real(), commits)
	for _, p := range prep {
		if !c.Bool("quiet") {
			fmt.Fprintf(w, "prepared %s: kernel %d bytes, initramfs %d bytes, nfs %v\n", p.Commit[:12], p.Kernel, p.Initrd, p.NFS)
		}
	}
	if err != nil {
		return fatal(err)
	}
	return nil
}
