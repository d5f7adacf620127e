package main

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/personality"
	"github.com/onesis/git-onesis/boot/sysimage"
)

var personalityCmd = &cli.Command{
	Name:      "personality",
	Usage:     "show (or carry out) what a node does to its /ram at boot",
	UsageText: "git onesis personality --host NAME [--classname C] [--rev REV | --root DIR] [--json] [--ram DIR]",
	Description: "Resolves NAME's class and properties from etc/sysimage.conf and prints the plan\n" +
		"the node's init carries out at boot: the /ram tmpfs with its RAMSIZE, the RAM*\n" +
		"and LINK* entries (empty or copied with -d, owners and modes mirrored from the\n" +
		"image unless -m/-u/-g), and the variant each LINKBACK points at.\n" +
		"The image is the work tree, the tree at --rev, or the directory --root.\n" +
		"With --ram DIR the plan is executed into DIR (the tmpfs mount is skipped), so\n" +
		"a node's /ram can be inspected without booting one. Image symlinks are never\n" +
		"followed; links in DIR hold absolute image paths as text.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "host", Usage: "the node's hostname `NAME`", Required: true},
		&cli.StringFlag{Name: "classname", Usage: "class `C`, as the classname= kernel argument overrides it"},
		&cli.StringFlag{Name: "rev", Usage: "plan against the image at revision `REV`"},
		&cli.StringFlag{Name: "root", Usage: "the image is directory `DIR` (need not be a repository)"},
		&cli.StringFlag{Name: "ram", Usage: "execute the plan into directory `DIR`"},
		&cli.BoolFlag{Name: "json", Usage: "print the plan as JSON"},
		quietFlag,
	},
	Action: runPersonality,
}

func init() { register(personalityCmd) }

func runPersonality(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("personality takes no arguments; did you mean --host %s?", c.Args().First())
	}
	rev, root, ram := c.String("rev"), c.String("root"), c.String("ram")
	if rev != "" && root != "" {
		return usageErr("--rev and --root are exclusive")
	}
	if rev != "" && ram != "" {
		return usageErr("--ram executes from a directory; use --root DIR or the work tree, not --rev")
	}
	var (
		img personality.Image
		cfg *sysimage.Config
	)
	switch {
	case root != "":
		d, err := personality.OpenDir(root)
		if err != nil {
			return fatal(err)
		}
		defer d.Close()
		img = d
		if cfg, err = parseConfig(c, rootOpener(d.Root)); err != nil {
			return fatal(err)
		}
	default:
		im, err := openImage(c)
		if err != nil {
			return err
		}
		if rev == "" {
			root = im.Root
			d, err := personality.OpenDir(root)
			if err != nil {
				return fatal(err)
			}
			defer d.Close()
			img = d
		} else {
			m, err := im.MetaAt(rev)
			if err != nil {
				return fatal(err)
			}
			if m == nil {
				return fatal(fmt.Errorf("revision %s has no .gitmeta; run 'git onesis record' there first", rev))
			}
			img = personality.NewManifestImage(m, func(p string) ([]byte, bool, error) { return im.Git.ShowBlob(rev, p) })
		}
		if cfg, err = readConfig(c, im, rev); err != nil {
			return fatal(err)
		}
	}
	plan, err := personality.Build(img, cfg, c.String("host"), c.String("classname"))
	if err != nil {
		return fatal(err)
	}
	for _, w := range plan.Warnings {
		fmt.Fprintln(c.App.ErrWriter, "warning:", w)
	}
	w := c.App.Writer
	switch {
	case c.Bool("json"):
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return fatal(err)
		}
	case !c.Bool("quiet"):
		if err := plan.Write(w); err != nil {
			return fatal(err)
		}
	}
	if ram == "" {
		return nil
	}
	if fi, err := os.Stat(ram); err != nil || !fi.IsDir() {
		return fatal(fmt.Errorf("--ram %s must be an existing directory", ram))
	}
	if err := personality.Execute(plan, root, ram, personality.ExecOptions{}); err != nil {
		return fatal(err)
	}
	if !c.Bool("quiet") && !c.Bool("json") {
		fmt.Fprintf(c.App.ErrWriter, "Executed %d steps into %s (tmpfs mount skipped).\n", len(plan.Steps)-1, ram)
	}
	return nil
}
