package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/resolve"
	"github.com/onesis/git-onesis/boot/sysimage"
	"github.com/onesis/git-onesis/internal/image"
)

// classConfPath is where oneSIS keeps its configuration inside the image.
// (The helpers in this file carry a class prefix so they never collide
// with the other personality commands of package main.)
const classConfPath = "/etc/sysimage.conf"

func init() { register(classCmd) }

var classCmd = &cli.Command{
	Name:      "class",
	Usage:     "print each host's class, parent classes and properties from etc/sysimage.conf",
	UsageText: "git onesis class [--rev REV] [--classname NAME] [--json] HOST...",
	Description: "Resolves each HOST against the image's etc/sysimage.conf (and its INCLUDEs) the\n" +
		"way a node does at boot, like oneSIS's myclass:\n\n" +
		"    node1: class cluster.compute (parents: cluster) properties: gpu,ib\n\n" +
		"Parents are listed most specific first; a host no NODECLASS_* directive\n" +
		"matches prints '(no class)'. The later matching directive wins;\n" +
		"--classname plays the classname= kernel argument and overrides it.\n" +
		"The work tree's config is read without following symlinks out of the\n" +
		"image; --rev reads it as committed at REV. Warnings about the config\n" +
		"(unsupported or deprecated directives) go to stderr once.\n\n" +
		"Exit status: 0 when every HOST has a class; 1 when at least one has none\n" +
		"(all hosts are still printed), so scripts can catch nodes that would boot\n" +
		"classless; 128 when the config cannot be read or has an error.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "rev", Usage: "read etc/sysimage.conf at `REV` instead of the work tree"},
		&cli.StringFlag{Name: "classname", Usage: "override the class as the classname=`NAME` kernel argument does"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON, one array of hosts"},
	},
	Action: runClass,
}

// jsonClass is one host of `class --json`.
type jsonClass struct {
	Host       string   `json:"host"`
	Class      string   `json:"class"`
	Parents    []string `json:"parents"`
	Properties []string `json:"properties"`
	// From is FILE:LINE of the directive that set the class; "" when
	// overridden or none matched.
	From       string `json:"from,omitempty"`
	Overridden bool   `json:"overridden,omitempty"`
}

func runClass(c *cli.Context) error {
	hosts := c.Args().Slice()
	if len(hosts) > 0 && hosts[0] == "--" {
		hosts = hosts[1:]
	}
	if len(hosts) == 0 {
		return usageErr("name at least one HOST\nSee 'git onesis class --help'.")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	cfg, err := classLoadConfig(im, c.String("rev"))
	if err != nil {
		// Not fatal(err): a wrapped git error carries git's own exit
		// code, and 1 means "a host has no class" here.
		return cli.Exit("fatal: "+err.Error(), exitFatal)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
	}
	var nodes []*sysimage.Node
	for _, h := range hosts {
		n, err := cfg.Resolve(h, c.String("classname"))
		if err != nil {
			return usageErr("%v", err)
		}
		nodes = append(nodes, n)
	}
	missing := false
	if c.Bool("json") {
		out := make([]jsonClass, 0, len(nodes))
		for _, n := range nodes {
			j := jsonClass{Host: n.Host, Class: n.Class, Parents: n.Parents(), Properties: n.Props, Overridden: n.Overridden}
			if j.Parents == nil {
				j.Parents = []string{}
			}
			if j.Properties == nil {
				j.Properties = []string{}
			}
			if n.ClassFrom.Line > 0 {
				j.From = n.ClassFrom.String()
			}
			missing = missing || n.Class == ""
			out = append(out, j)
		}
		enc := json.NewEncoder(c.App.Writer)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fatal(err)
		}
	} else {
		for _, n := range nodes {
			missing = missing || n.Class == ""
			fmt.Fprintln(c.App.Writer, classLine(n))
		}
	}
	if missing {
		return cli.Exit("", exitDiff)
	}
	return nil
}

// classLine formats a node as myclass does:
// "node1: class cluster.compute (parents: cluster) properties: gpu,ib".
func classLine(n *sysimage.Node) string {
	var b strings.Builder
	b.WriteString(n.Host + ": ")
	if n.Class == "" {
		b.WriteString("(no class)")
	} else {
		b.WriteString("class " + n.Class)
		if p := n.Parents(); len(p) > 0 {
			b.WriteString(" (parents: " + strings.Join(p, ",") + ")")
		}
	}
	if len(n.Props) > 0 {
		b.WriteString(" properties: " + strings.Join(n.Props, ","))
	}
	return b.String()
}

// classLoadConfig parses etc/sysimage.conf from the work tree (rev "") or as
// committed at rev, which resolves as a node's ref does (package resolve),
// so 'class --rev testing' reads what a node with ref testing boots, on a
// boot server's clone too.
func classLoadConfig(im *image.Image, rev string) (*sysimage.Config, error) {
	if rev == "" {
		return classParse(classTreeOpener(im.Root), "")
	}
	res, err := (&resolve.Resolver{Repo: im.Git}).Rev(rev)
	if err != nil {
		return nil, err
	}
	return classConfigAt(im, rev, res.Commit)
}

// classConfigAt parses etc/sysimage.conf as committed at commit (named rev
// in messages).
func classConfigAt(im *image.Image, rev, commit string) (*sysimage.Config, error) {
	return classParse(classRevOpener(im, rev, commit), rev)
}

// classParse parses etc/sysimage.conf through open; rev names where it
// is read from ("" the work tree) in messages.
func classParse(open sysimage.Opener, rev string) (*sysimage.Config, error) {
	cfg, err := sysimage.Parse(open, classConfPath)
	var pe *sysimage.Error // a missing INCLUDE is a config error at FILE:LINE
	if errors.Is(err, fs.ErrNotExist) && !errors.As(err, &pe) {
		where := "the work tree"
		if rev != "" {
			where = rev
		}
		return nil, fmt.Errorf("no etc/sysimage.conf in %s: %w", where, err)
	}
	return cfg, err
}

// classImageRel maps an absolute image path to a path relative to the image
// root, refusing anything that is not absolute and clean.
func classImageRel(p string) (string, error) {
	if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" {
		return "", fmt.Errorf("%q is not a clean absolute path inside the image", p)
	}
	return p[1:], nil
}

// classTreeOpener reads image files through os.Root, so a symlink (even
// etc/sysimage.conf -> /etc/sysimage.conf) can never reach the host.
func classTreeOpener(root string) sysimage.Opener {
	return func(p string) ([]byte, error) {
		rel, err := classImageRel(p)
		if err != nil {
			return nil, err
		}
		r, err := os.OpenRoot(root)
		if err != nil {
			return nil, err
		}
		defer r.Close()
		return r.ReadFile(rel)
	}
}

// classRevOpener reads image files as committed at commit (named rev in
// messages). A symlink there is not followed: it is an error, since its
// target would be read as the config.
func classRevOpener(im *image.Image, rev, commit string) sysimage.Opener {
	return func(p string) ([]byte, error) {
		rel, err := classImageRel(p)
		if err != nil {
			return nil, err
		}
		out, err := im.Git.Run("--literal-pathspecs", "ls-tree", "-z", "--full-tree", "--end-of-options", commit, "--", rel)
		if err != nil {
			return nil, fmt.Errorf("reading %s at %s: %w", rel, rev, err)
		}
		if strings.HasPrefix(string(out), "120000 ") {
			return nil, fmt.Errorf("%s is a symbolic link at %s; git-onesis does not follow links when reading the image's config", rel, rev)
		}
		b, ok, err := im.Git.ShowBlob(commit, rel)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%s at %s: %w", rel, rev, fs.ErrNotExist)
		}
		return b, nil
	}
}
