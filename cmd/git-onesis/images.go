package main

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/internal/lifecycle"
)

func init() { register(imagesCmd) }

var imagesCmd = &cli.Command{
	Name:      "images",
	Usage:     "list image variants (branches off a shared base); add one; sync them from their base",
	UsageText: "git onesis images [--json]\n   git onesis images add --base BASE VARIANT\n   git onesis images sync BASE",
	Description: "Variant images are branches off a shared base (compute, gpu and login off\n" +
		"base). 'images' lists every branch with its base, how far it is ahead of and\n" +
		"behind the base, how many files, metadata entries and packages differ, and\n" +
		"the nodes booting it (from refs/onesis/booted/*). 'images add' makes a variant\n" +
		"(or adopts an existing branch) and records its base in onesis.image.<name>.base.\n" +
		"'images sync BASE' merges BASE into every variant of it, in name order, and\n" +
		"stops at the first conflict with a report; variants checked out in a worktree\n" +
		"are merged there and their metadata applied.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print one JSON array"},
	},
	Action: runImagesList,
	Subcommands: []*cli.Command{
		{
			Name:      "add",
			Usage:     "create (or adopt) branch VARIANT as a variant of BASE",
			UsageText: "git onesis images add --base BASE VARIANT",
			Flags:     []cli.Flag{&cli.StringFlag{Name: "base", Required: true, Usage: "the base `BRANCH`"}},
			Action:    runImagesAdd,
		},
		{
			Name:      "sync",
			Usage:     "merge BASE into every variant of it; stop at the first conflict",
			UsageText: "git onesis images sync BASE",
			Action:    runImagesSync,
		},
	},
}

func runImagesList(c *cli.Context) error {
	if c.NArg() > 0 {
		return usageErr("unknown images subcommand %q\nSee 'git onesis images --help'.", c.Args().First())
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	vs, err := lifecycle.Images(im, func(a, b string) (int, error) { return packageChangeCount(im, a, b) })
	if err != nil {
		return fatal(err)
	}
	w := c.App.Writer
	if c.Bool("json") {
		if vs == nil {
			vs = []lifecycle.Variant{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(vs)
	}
	for _, v := range vs {
		line := fmt.Sprintf("%-16s %s", v.Branch, v.Commit[:12])
		if v.Base != "" {
			line += fmt.Sprintf("  base %s: +%d/-%d commits, %d files, %d metadata, %d packages", v.Base, v.Ahead, v.Behind, v.Files, v.Metadata, v.Packages)
		}
		if len(v.Nodes) > 0 {
			var ns []string
			for n, c := range v.Nodes {
				if c == v.Commit {
					ns = append(ns, n)
				} else {
					ns = append(ns, n+"@"+c[:12])
				}
			}
			sort.Strings(ns)
			line += "  nodes: " + strings.Join(ns, " ")
		}
		fmt.Fprintln(w, line)
	}
	return nil
}

// packageChangeCount counts packages that differ between two commits; 0
// when neither has a database.
func packageChangeCount(im *image.Image, a, b string) (int, error) {
	old, okA, err := packagesAt(im, a)
	if err != nil {
		return 0, err
	}
	cur, okB, err := packagesAt(im, b)
	if err != nil {
		return 0, err
	}
	if !okA && !okB {
		return 0, nil
	}
	return len(diffPackages(old, cur)), nil
}

func runImagesAdd(c *cli.Context) error {
	name, err := oneName(c, "VARIANT")
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	base := strings.TrimPrefix(c.String("base"), "refs/heads/")
	if err := lifecycle.AddVariant(im, name, base); err != nil {
		return fatal(err)
	}
	fmt.Fprintf(c.App.Writer, "%s is a variant of %s\n", name, base)
	return nil
}

func runImagesSync(c *cli.Context) error {
	base, err := oneName(c, "BASE")
	if err != nil {
		return err
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	res, err := lifecycle.Sync(im, strings.TrimPrefix(base, "refs/heads/"))
	w := c.App.Writer
	for _, r := range res {
		switch r.Status {
		case "conflict":
			fmt.Fprintf(w, "%s: CONFLICT merging %s; stopped here (the variants after it were not touched)\n", r.Variant, base)
			for _, l := range r.Conflicts {
				fmt.Fprintf(w, "    %s\n", l)
			}
			// Not in the production work tree: a checkout there would change
			// what serve boots.
			step := fmt.Sprintf("cd %s && git merge %s", r.Worktree, base)
			if r.Worktree == "" {
				dir := lifecycle.DefaultDir(im.Root, r.Variant)
				step = fmt.Sprintf("git worktree add %s %s && cd %s && git merge %s", dir, r.Variant, dir, base)
			}
			fmt.Fprintf(w, "  resolve it by hand, in a worktree of its own: %s;\n  fix the conflicts, 'git onesis commit', then 'git onesis images sync %s' again\n", step, base)
		case "up to date":
			fmt.Fprintf(w, "%s: up to date\n", r.Variant)
		default:
			fmt.Fprintf(w, "%s: %s %s -> %s\n", r.Variant, r.Status, r.Old[:12], r.New[:12])
		}
	}
	if err != nil {
		return fatal(err)
	}
	if len(res) > 0 && res[len(res)-1].Status == "conflict" {
		return cli.Exit("", exitDiff)
	}
	return nil
}
