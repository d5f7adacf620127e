// Command git-onesis keeps diskless-cluster root-filesystem images in git
// with their full metadata (owners, all mode bits, devices, fifos, sockets,
// empty directories, hard links, xattrs and file capabilities) in a
// .gitmeta file that git hooks keep in step. It runs as `git onesis ...`.
//
// Each subcommand lives in its own file; this file builds the App and maps
// errors to git's exit codes: 0 success, 1 drift or difference, 128 fatal,
// 129 usage.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/pprof"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/internal/progress"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

// Exit codes, as git uses them.
const (
	exitOK    = 0
	exitDiff  = 1
	exitFatal = 128
	exitUsage = 129
)

func main() {
	batchGC(os.Args)
	stop := cpuProfile(os.Getenv("GIT_ONESIS_CPUPROFILE"))
	code := run(context.Background(), os.Stdin, os.Stdout, os.Stderr, os.Args)
	stop()
	os.Exit(code)
}

// cpuProfile writes a CPU profile of the whole command to path (for `go
// tool pprof`) when path is set: GIT_ONESIS_CPUPROFILE, the way to see
// where a slow command or hook spends its time. The returned func ends it.
func cpuProfile(path string) func() {
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "warning: GIT_ONESIS_CPUPROFILE: %v\n", err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "warning: GIT_ONESIS_CPUPROFILE: %v\n", err)
		f.Close()
		return func() {}
	}
	return func() { pprof.StopCPUProfile(); f.Close() }
}

// run executes the CLI with its own streams and returns the process exit
// code, as main does; tests call it in process. ctx is the commands'
// (serve and sync stop when it is done, or on SIGTERM/SIGINT).
func run(ctx context.Context, stdin io.Reader, stdout, stderr io.Writer, args []string) int {
	app := newApp(stdin, stdout, stderr)
	code := exitOK
	app.ExitErrHandler = func(c *cli.Context, err error) {}
	if err := app.RunContext(ctx, gitArgs(app.Commands, args)); err != nil {
		code = report(stderr, err)
	}
	return code
}

// report prints err git-style and returns the exit code for it.
func report(stderr io.Writer, err error) int {
	if ec, ok := exitCoder(err); ok {
		if msg := strings.TrimSpace(err.Error()); msg != "" {
			fmt.Fprintln(stderr, msg)
		}
		return ec.ExitCode()
	}
	fmt.Fprintf(stderr, "fatal: %v\n", err)
	return exitFatal
}

func newApp(stdin io.Reader, stdout, stderr io.Writer) *cli.App {
	return &cli.App{
		Reader:               stdin,
		Name:                 "git-onesis",
		HelpName:             "git onesis",
		Usage:                "keep diskless-cluster root filesystem images in git, metadata and all",
		Version:              version,
		Writer:               stdout,
		ErrWriter:            stderr,
		EnableBashCompletion: true,
		HideHelpCommand:      true,
		Suggest:              true,
		OnUsageError:         onUsageError,
		CommandNotFound: func(c *cli.Context, name string) {
			fmt.Fprintln(c.App.ErrWriter, notACommand(name, c.App.Commands).Error())
			cli.OsExiter(exitUsage)
		},
		// A bare 'git onesis' prints the usage and exits 1, as a bare 'git'
		// does; an unknown command is a usage error.
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				if err := cli.ShowAppHelp(c); err != nil {
					return fatal(err)
				}
				return cli.Exit("", exitDiff)
			}
			return notACommand(c.Args().First(), c.App.Commands)
		},
		Commands: commands(),
	}
}

func notACommand(name string, cmds []*cli.Command) error {
	return cli.Exit(fmt.Sprintf("git onesis: '%s' is not a git-onesis command. See 'git onesis --help'.%s", name, suggestion(name, cmds)), exitUsage)
}

// needSubcommand is the Action of a command that only groups subcommands:
// without one, or with an unknown one, it is a usage error (129), as for
// 'git worktree'.
func needSubcommand(c *cli.Context) error {
	if c.NArg() == 0 {
		return usageErr("%s needs a subcommand\nSee '%s --help'.", helpName(c.Command), helpName(c.Command))
	}
	return usageErr("'%s' is not a subcommand of '%s'\nSee '%s --help'.%s", c.Args().First(), helpName(c.Command), helpName(c.Command),
		suggestion(c.Args().First(), c.Command.Subcommands))
}

// registered holds commands that add themselves from their own file's
// init (the boot and personality commands), so adding a command never
// means editing this file.
var registered []*cli.Command

// register adds commands to the App; call it from a command file's init.
func register(cmds ...*cli.Command) { registered = append(registered, cmds...) }

func commands() []*cli.Command {
	cmds := []*cli.Command{
		initCmd, installCmd, uninstallCmd, recordCmd, applyCmd, statusCmd, verifyCmd,
		diffCmd, lsCmd, commitCmd, checkoutCmd, exportCmd, migrateCmd, envCmd,
		completionCmd, completeCmd, versionCmd, helpCmd,
	}
	cmds = append(cmds, registered...)
	cmds = append(cmds, hookCmds()...)
	cmds = append(cmds, mergeDriverCmd, textconvCmd)
	for _, c := range cmds {
		usageErrors(c)
		if c.Category == "" && !c.Hidden {
			c.Category = categories[c.Name]
		}
	}
	return cmds
}

// usageErrors makes c and its subcommands report bad options git's way,
// and names each subcommand as the admin types it ("git onesis upgrade
// start"), also before its parent has run (for 'git onesis help').
func usageErrors(c *cli.Command) {
	if c.OnUsageError == nil {
		c.OnUsageError = onUsageError
	}
	for _, s := range c.Subcommands {
		if s.HelpName == "" {
			s.HelpName = "git onesis " + c.Name + " " + s.Name
		}
		usageErrors(s)
	}
}

// categories groups the commands in 'git onesis --help'.
var categories = map[string]string{
	"init": "Image metadata", "install": "Image metadata", "uninstall": "Image metadata",
	"record": "Image metadata", "apply": "Image metadata", "status": "Image metadata",
	"verify": "Image metadata", "commit": "Image metadata", "checkout": "Image metadata",
	"migrate": "Image metadata",
	"diff":    "Review (any clone, any user)", "ls": "Review (any clone, any user)",
	"show": "Review (any clone, any user)", "log": "Review (any clone, any user)",
	"packages": "Review (any clone, any user)", "export": "Review (any clone, any user)",
	"class": "Node personality", "sysimage": "Node personality", "personality": "Node personality",
	"copy-rootfs": "Node personality",
	"initramfs":   "Network boot", "serve": "Network boot", "node": "Network boot", "sync": "Network boot", "exports": "Network boot", "audit": "Network boot",
	"upgrade": "Image lifecycle", "rollback": "Image lifecycle", "images": "Image lifecycle",
	"env": "Other", "completion": "Other", "version": "Other",
	"fsck": "Network boot",
}

func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	if errors.Is(err, flag.ErrHelp) && !isSubcommand && c.Command != nil && c.Command.Name == c.App.Name {
		// 'git-onesis -h' run directly ('git onesis --help' is git's: it
		// opens the man page): the overview, as a bare 'git onesis'
		// prints it, and git's exit code for -h.
		cli.ShowAppHelp(c)
		return cli.Exit("", exitUsage)
	}
	return cli.Exit(fmt.Sprintf("usage: %v\nSee '%s --help'.", err, helpName(c.Command)), exitUsage)
}

// helpName is how the admin types a command: "git onesis upgrade start".
func helpName(cmd *cli.Command) string {
	if cmd.HelpName != "" {
		return cmd.HelpName
	}
	return "git onesis " + cmd.Name
}

// usageErr is a usage error (exit 129).
func usageErr(format string, a ...any) error {
	return cli.Exit("usage: "+fmt.Sprintf(format, a...), exitUsage)
}

// fatal wraps err as a fatal error (exit 128) with git's prefix.
func fatal(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := exitCoder(err); ok {
		return err
	}
	return cli.Exit("fatal: "+err.Error(), exitFatal)
}

// exitCoder reports whether err itself (not something it wraps) carries
// an exit code chosen by git-onesis. A failed git command also has an
// ExitCode method, but git's code is not ours to pass on: it is a fatal
// error (128).
func exitCoder(err error) (cli.ExitCoder, bool) {
	if _, isGit := err.(*git.Error); isGit {
		return nil, false
	}
	ec, ok := err.(cli.ExitCoder)
	return ec, ok
}

// revPair reads the [REV [REV]] arguments of a diff-like command: none is
// HEAD against the work tree (""), one is REV against the work tree, two
// are REV against REV.
func revPair(c *cli.Context, what string) (oldRev, newRev string, err error) {
	args := c.Args().Slice()
	switch len(args) {
	case 0:
		return "HEAD", "", nil
	case 1:
		return args[0], "", nil
	case 2:
		return args[0], args[1], nil
	}
	return "", "", usageErr("%s takes at most two revisions", what)
}

// openImage opens the image repository around the current directory,
// mapping "not a repository" and "bare" to git's fatal exit.
func openImage(c *cli.Context) (*image.Image, error) {
	return openImageWith(image.Open)
}

// openConfiguredImage is openImage for a command that sets no git config:
// the config is read once, beside the repository lookup
// (image.OpenConfigured).
func openConfiguredImage(c *cli.Context) (*image.Image, error) {
	return openImageWith(image.OpenConfigured)
}

func openImageWith(open func(string) (*image.Image, error)) (*image.Image, error) {
	im, err := open(".")
	if err != nil {
		if errors.Is(err, git.ErrNotRepo) {
			return nil, cli.Exit("fatal: not a git repository (or any of the parent directories): .git", exitFatal)
		}
		return nil, fatal(err)
	}
	return im, nil
}

// discoverRepo finds the repository of the current directory, with git's
// message when there is none.
func discoverRepo() (*git.Repo, error) {
	r, err := git.Discover(".")
	if errors.Is(err, git.ErrNotRepo) {
		return nil, cli.Exit("fatal: not a git repository (or any of the parent directories): .git", exitFatal)
	}
	if err != nil {
		return nil, fatal(err)
	}
	return r, nil
}

// progressFlag is shared by long-running commands.
var progressFlag = &cli.StringFlag{
	Name:  "progress",
	Usage: "show progress on stderr: auto (when a terminal), true or false; default from onesis.progress",
	Value: "",
}

// out is where a command prints its report: nowhere with -q.
func out(c *cli.Context) io.Writer {
	if c.Bool("quiet") {
		return io.Discard
	}
	return c.App.Writer
}

// quietFlag suppresses progress and summaries.
var quietFlag = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "print nothing but errors"}

// meter returns a progress meter for title, honouring --progress, --quiet
// and onesis.progress.
func meter(c *cli.Context, im *image.Image, title string) *progress.Meter {
	if c.Bool("quiet") {
		return nil
	}
	mode := c.String("progress")
	if mode == "" && im != nil {
		if v, ok, _ := im.Git.Config("onesis.progress"); ok {
			mode = v
		}
	}
	return progress.New(c.App.ErrWriter, title, progress.Enabled(mode))
}
