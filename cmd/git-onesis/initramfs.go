package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/google/renameio/v2"
	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/initramfs"
	"github.com/onesis/git-onesis/boot/kernel"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/gitfs"
)

func init() { register(initramfsCmd) }

var initramfsCmd = &cli.Command{
	Name:      "initramfs",
	Usage:     "build the initramfs a diskless node boots the image with",
	UsageText: "git onesis initramfs [--rev REV] [-m MODULE ...] [--no-default-modules] [--kver V] [--init FILE] [-o FILE] [--list] [--json]",
	Description: "Builds a gzip-compressed newc cpio holding onesis-init as /init and the kernel\n" +
		"modules a node needs to reach its NFS root: the netboot set (virtio, e1000,\n" +
		"e1000e, igb, ixgbe, tg3, bnx2, r8169 and the NFSv3 client stack) plus each\n" +
		"-m MODULE, with their dependencies from the image's\n" +
		"lib/modules/<kver>/modules.dep. Modules the image lacks or builds in are\n" +
		"skipped with a note. Compressed modules (.ko.xz, .ko.zst) are stored\n" +
		"decompressed; the firmware they declare comes from the image's /lib/firmware.\n" +
		"The output is reproducible: the same image, modules and\n" +
		"init give the same bytes.\n\n" +
		"The image is the work tree, or the tree at --rev. The modules are those of\n" +
		"the kernel serve boots from that tree: /boot/vmlinuz, else /vmlinuz (a\n" +
		"symlink followed inside the image, or the kernel itself), else the only or\n" +
		"newest /boot/vmlinuz-<version>; its version is read from its bzImage header\n" +
		"(the file name only when it has none), unless --kver says otherwise.\n" +
		"--list prints which kernel and why, then what went in and why.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "rev", Usage: "take modules from the image at revision `REV`"},
		&cli.StringSliceFlag{Name: "module", Aliases: []string{"m"}, Usage: "also include kernel module `NAME` (repeatable)"},
		&cli.BoolFlag{Name: "no-default-modules", Usage: "include only the -m modules, not the netboot set"},
		&cli.StringFlag{Name: "kver", Usage: "kernel version `V` (a directory of lib/modules)"},
		&cli.StringFlag{Name: "init", Usage: "the onesis-init binary `FILE` (default: next to git-onesis, or in <prefix>/lib/git-onesis)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the initramfs to `FILE` (default: initrd.img-<kver>-onesis)"},
		&cli.BoolFlag{Name: "list", Usage: "print what went in and why"},
		&cli.BoolFlag{Name: "json", Usage: "print the manifest as JSON"},
		quietFlag,
	},
	Action: runInitramfs,
}

func runInitramfs(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("initramfs takes no arguments; did you mean -m %s?", c.Args().First())
	}
	initPath, err := initramfs.LocateInit(c.String("init"))
	if err != nil {
		return fatal(err)
	}
	initBin, err := os.ReadFile(initPath)
	if err != nil {
		return fatal(fmt.Errorf("reading the init binary: %w", err))
	}
	var img fs.FS
	if rev := c.String("rev"); rev != "" {
		// Objects only: a bare repository (a server's) will do.
		repo, err := git.Discover(".")
		if err != nil {
			if errors.Is(err, git.ErrNotRepo) {
				return cli.Exit("fatal: not a git repository (or any of the parent directories): .git", exitFatal)
			}
			return fatal(err)
		}
		r, err := gitfs.Open(repo.GitDir)
		if err != nil {
			return fatal(err)
		}
		if img, err = r.FS(rev); err != nil {
			return fatal(err)
		}
	} else {
		im, err := openImage(c)
		if err != nil {
			return err
		}
		root, err := os.OpenRoot(im.Root)
		if err != nil {
			return fatal(err)
		}
		defer root.Close()
		img = root.FS()
	}
	var buf bytes.Buffer
	m, err := initramfs.Build(&buf, initramfs.Options{
		Image: img, KernelVersion: c.String("kver"), Modules: c.StringSlice("module"),
		NoDefaults: c.Bool("no-default-modules"), Init: initBin,
	})
	if errors.Is(err, kernel.ErrNoKernel) {
		return fatal(fmt.Errorf("%w; or pass --kver", err))
	}
	if err != nil {
		return fatal(err)
	}
	kver := m.KernelVersion
	out := c.String("output")
	if out == "" {
		out = "initrd.img-" + kver + "-onesis"
	}
	if out == "-" {
		if _, err := c.App.Writer.Write(buf.Bytes()); err != nil {
			return fatal(err)
		}
	} else if err := renameio.WriteFile(out, buf.Bytes(), 0o644); err != nil {
		return fatal(fmt.Errorf("writing the initramfs: %w", err))
	}
	info := c.App.ErrWriter
	if out != "-" {
		info = c.App.Writer
	}
	switch {
	case c.Bool("json"):
		enc := json.NewEncoder(info)
		enc.SetIndent("", "  ")
		return fatal(enc.Encode(m))
	case c.Bool("list"):
		return fatal(m.Write(info))
	case !c.Bool("quiet"):
		fmt.Fprintf(c.App.ErrWriter, "Wrote %s: kernel %s, %d modules (%d skipped), %d bytes.\n",
			out, kver, len(m.Modules), len(m.Skipped), m.Size)
		for _, s := range m.Skipped {
			fmt.Fprintln(c.App.ErrWriter, "note: skipped", s)
		}
	}
	return nil
}
