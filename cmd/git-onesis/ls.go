package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/meta"
)

var lsCmd = &cli.Command{
	Name:      "ls",
	Usage:     "list entries with their recorded owners, modes and devices",
	UsageText: "git onesis ls [--rev REV] [-n] [-z | --json] [PATH...]",
	Description: "An 'ls -l' view built from .gitmeta, so a reviewer with a non-root clone sees\n" +
		"the true owners, modes, devices and capabilities. Names come from the image's\n" +
		"own etc/passwd and etc/group. A '+' after the mode marks xattrs.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "rev", Usage: "read .gitmeta at `REV` instead of the work tree"},
		&cli.BoolFlag{Name: "numeric-uid-gid", Aliases: []string{"n"}, Usage: "numeric owners"},
		&cli.BoolFlag{Name: "xattrs", Aliases: []string{"x"}, Usage: "also print each xattr in words"},
		&cli.BoolFlag{Name: "z", Usage: "NUL-terminated records with raw paths"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON, one array of entries"},
	},
	Action: runLs,
}

type jsonEntry struct {
	Path     string            `json:"path"`
	Type     string            `json:"type"`
	Mode     string            `json:"mode"`
	UID      uint32            `json:"uid"`
	GID      uint32            `json:"gid"`
	User     string            `json:"user"`
	Group    string            `json:"group"`
	Major    *uint32           `json:"major,omitempty"`
	Minor    *uint32           `json:"minor,omitempty"`
	Link     string            `json:"link,omitempty"`
	Hardlink string            `json:"hardlink,omitempty"`
	Empty    bool              `json:"empty,omitempty"`
	Xattrs   map[string]string `json:"xattrs,omitempty"`
}

func runLs(c *cli.Context) error {
	im, err := openImage(c)
	if err != nil {
		return err
	}
	var m *meta.Manifest
	rev := c.String("rev")
	if rev != "" {
		m, err = manifestAt(im, rev)
	} else {
		m, err = im.ReadWorktreeMeta()
	}
	if err != nil {
		return fatal(err)
	}
	names := im.NamesAt(rev)
	if c.Bool("numeric-uid-gid") {
		names = nil
	}
	prefixes, err := lsPrefixes(im, c.Args().Slice())
	if err != nil {
		return err
	}
	w := c.App.Writer
	var js []jsonEntry
	for i := range m.Entries {
		e := &m.Entries[i]
		if !matchPrefixes(e.Path, prefixes) {
			continue
		}
		switch {
		case c.Bool("json"):
			js = append(js, toJSON(e, names))
		default:
			writeLsLine(w, e, names, c.Bool("z"), c.Bool("xattrs"))
		}
	}
	if c.Bool("json") {
		if js == nil {
			js = []jsonEntry{}
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(js)
	}
	return nil
}

// lsPrefixes turns command-line paths (relative to the current directory)
// into top-relative paths.
func lsPrefixes(im *image.Image, args []string) ([]string, error) {
	var out []string
	for _, a := range args {
		p, err := im.TopRelative(a)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		out = append(out, p)
	}
	return out, nil
}

func matchPrefixes(p string, prefixes []string) bool {
	if len(prefixes) == 0 {
		return true
	}
	for _, x := range prefixes {
		if x == "." || p == x || strings.HasPrefix(p, x+"/") {
			return true
		}
	}
	return false
}

func writeLsLine(w io.Writer, e *meta.Entry, names *meta.Names, z, xattrs bool) {
	user, group := fmt.Sprint(e.UID), fmt.Sprint(e.GID)
	if names != nil {
		user, group = names.User(e.UID), names.Group(e.GID)
	}
	mark := " "
	if len(e.Xattrs) > 0 {
		mark = "+"
	}
	size := ""
	if e.Type == meta.TypeChar || e.Type == meta.TypeBlock {
		size = fmt.Sprintf("%d, %d", e.Major, e.Minor)
	}
	p := display(e.Path)
	if z {
		p = e.Path
	}
	line := fmt.Sprintf("%s%s %-8s %-8s %8s %s", ModeString(e), mark, user, group, size, p)
	if e.Type == meta.TypeSymlink {
		if z {
			line += " -> " + e.Link
		} else {
			line += " -> " + strings.TrimPrefix(meta.EscapePath(e.Link), "./")
		}
	}
	if e.Hardlink != "" {
		line += " => " + display(e.Hardlink)
	}
	if z {
		fmt.Fprint(w, line+"\x00")
		return
	}
	fmt.Fprintln(w, line)
	if xattrs {
		for _, x := range e.Xattrs {
			fmt.Fprintf(w, "\t%s=%s\n", x.Name, meta.DescribeXattr(x.Name, x.Value))
		}
	}
}

func toJSON(e *meta.Entry, names *meta.Names) jsonEntry {
	j := jsonEntry{
		Path: display(e.Path), Type: e.Type.String(), Mode: meta.FormatMode(e.Mode),
		UID: e.UID, GID: e.GID, User: fmt.Sprint(e.UID), Group: fmt.Sprint(e.GID),
		Hardlink: e.Hardlink, Empty: e.Empty,
	}
	if names != nil {
		j.User, j.Group = names.User(e.UID), names.Group(e.GID)
	}
	if e.Type == meta.TypeChar || e.Type == meta.TypeBlock {
		ma, mi := e.Major, e.Minor
		j.Major, j.Minor = &ma, &mi
	}
	if e.Type == meta.TypeSymlink {
		j.Link = strings.TrimPrefix(meta.EscapePath(e.Link), "./")
	}
	if e.Hardlink != "" {
		j.Hardlink = display(e.Hardlink)
	}
	if len(e.Xattrs) > 0 {
		j.Xattrs = map[string]string{}
		for _, x := range e.Xattrs {
			j.Xattrs[x.Name] = meta.DescribeXattr(x.Name, x.Value)
		}
	}
	return j
}

// ModeString renders an entry's type and mode as ls -l does (drwxr-xr-x,
// -rwsr-xr-x, crw-rw-rw-, drwxrwxrwt, ...).
func ModeString(e *meta.Entry) string {
	t := map[meta.Type]byte{
		meta.TypeFile: '-', meta.TypeDir: 'd', meta.TypeSymlink: 'l', meta.TypeChar: 'c',
		meta.TypeBlock: 'b', meta.TypeFifo: 'p', meta.TypeSocket: 's', meta.TypeUnknown: '?',
	}[e.Type]
	b := []byte{t, '-', '-', '-', '-', '-', '-', '-', '-', '-'}
	const rwx = "rwxrwxrwx"
	for i := 0; i < 9; i++ {
		if e.Mode&(1<<(8-i)) != 0 {
			b[i+1] = rwx[i]
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if e.Mode&bit != 0 {
			if b[pos] == 'x' {
				b[pos] = set
			} else {
				b[pos] = unset
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}
