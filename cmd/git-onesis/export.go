package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var exportCmd = &cli.Command{
	Name:      "export",
	Usage:     "write the image as an mtree spec or an exact tar archive",
	UsageText: "git onesis export [--format=mtree|tar] [--bsd] [--rev REV] [-o FILE]",
	Description: "--format=mtree (the default) prints an mtree spec: NetBSD 'mtree -p DIR -f\n" +
		"SPEC' verifies a tree against it and 'bsdtar -cf image.tar @SPEC' (run at the\n" +
		"top of the work tree) builds an image tarball. --bsd drops the extensions\n" +
		"strict mtree readers reject (xattr.*, hardlink=, empty=).\n\n" +
		"--format=tar writes a POSIX tar archive of the whole image: contents from\n" +
		"git (at REV) or the work tree, and every owner, mode, device, FIFO, empty\n" +
		"directory, hard link and xattr from .gitmeta. Nothing comes from the\n" +
		"filesystem's own metadata, so a non-root clone writes the same archive as\n" +
		"the root-owned image: feed it to diffoscope, a scanner or an archive. Every\n" +
		"entry carries the commit's time (the work tree's HEAD without --rev), so\n" +
		"the archive is reproducible. Sockets cannot be archived and are reported.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "format", Value: "mtree", Usage: "`FORMAT`: mtree or tar"},
		&cli.BoolFlag{Name: "bsd", Usage: "with mtree: only keywords BSD mtree and libarchive know"},
		&cli.StringFlag{Name: "rev", Usage: "export the image as committed at `REV`"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write to `FILE` (atomically) instead of standard output"},
	},
	Action: runExport,
}

func runExport(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("export takes no arguments")
	}
	format := c.String("format")
	if format != "mtree" && format != "tar" {
		return usageErr("unknown format %q (mtree or tar)", format)
	}
	if format == "tar" && c.Bool("bsd") {
		return usageErr("--bsd goes with --format=mtree")
	}
	im, err := openImage(c)
	if err != nil {
		return err
	}
	rev := c.String("rev")
	var m *meta.Manifest
	if rev != "" {
		m, err = manifestAt(im, rev)
	} else {
		m, err = im.ReadWorktreeMeta()
	}
	if err != nil {
		return fatal(err)
	}
	write := func(w io.Writer) error {
		if format == "mtree" {
			if c.Bool("bsd") {
				m = meta.StripExtensions(m)
			}
			return m.Encode(w)
		}
		return exportTar(c, im, m, rev, w)
	}
	out := c.String("output")
	if out == "" || out == "-" {
		bw := bufio.NewWriterSize(c.App.Writer, 1<<20)
		if err := write(bw); err != nil {
			return fatal(err)
		}
		return bw.Flush()
	}
	pf, err := renameio.NewPendingFile(out, renameio.WithPermissions(0o644))
	if err != nil {
		return fatal(fmt.Errorf("creating %s: %w", out, err))
	}
	defer pf.Cleanup()
	bw := bufio.NewWriterSize(pf, 1<<20)
	if err := write(bw); err != nil {
		return fatal(err)
	}
	if err := bw.Flush(); err != nil {
		return fatal(fmt.Errorf("writing %s: %w", out, err))
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return fatal(fmt.Errorf("writing %s: %w", out, err))
	}
	return nil
}

// exportTar writes m as a tar archive, contents from rev ("" = work tree).
func exportTar(c *cli.Context, im *image.Image, m *meta.Manifest, rev string, w io.Writer) error {
	o := meta.TarOptions{
		Names: im.NamesAt(rev),
		Skipped: func(e *meta.Entry, why string) {
			fmt.Fprintf(c.App.ErrWriter, "warning: %s not archived: %s\n", strings.TrimPrefix(meta.EscapePath(e.Path), "./"), why)
		},
	}
	when := rev
	if when == "" {
		when = "HEAD"
	}
	if out, err := im.Git.Run("log", "-1", "--format=%ct", "--end-of-options", when); err == nil {
		if s, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			o.ModTime = time.Unix(s, 0)
		}
	}
	if rev != "" {
		files, err := im.Git.FilesAt(rev)
		if err != nil {
			return err
		}
		o.Open = files.Open
	} else {
		root, err := os.OpenRoot(im.Root)
		if err != nil {
			return fmt.Errorf("opening the work tree: %w", err)
		}
		defer root.Close()
		o.Open = func(p string) (io.ReadCloser, int64, error) {
			fi, err := root.Lstat(p)
			if err != nil {
				return nil, 0, err
			}
			if !fi.Mode().IsRegular() {
				return nil, 0, errors.New("it is no longer a regular file in the work tree; run 'git onesis status'")
			}
			f, err := root.Open(p)
			if errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 {
				return nil, 0, fmt.Errorf("%w: its mode denies even you, its owner; 'git onesis apply' gives the owner read access back (or export --rev REV from git)", err)
			}
			if err != nil {
				return nil, 0, err
			}
			return f, fi.Size(), nil
		}
	}
	return meta.WriteTar(w, m, o)
}
