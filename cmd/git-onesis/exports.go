package main

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/google/renameio/v2"
	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/boot/exports"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/boot/invref"
	"github.com/onesis/git-onesis/boot/resolve"
	"github.com/onesis/git-onesis/internal/image"
)

func init() { register(exportsCmd) }

var exportsCmd = &cli.Command{
	Name:      "exports",
	Usage:     "materialise the commits nodes boot and write /etc/exports lines for a kernel NFS server",
	UsageText: "git onesis exports [--dir DIR] [--prepare] [--prune] [--client SPEC...] [--options OPTS] [--output FILE] [--json] [REV...]",
	Description: "For sites that serve the node root with the kernel's nfsd (or a cluster file\n" +
		"system) while git-onesis does DHCP, TFTP and HTTP ('serve --no-nfs\n" +
		"--nfs-export-dir DIR'). The commits in use are HEAD (or --ref), every\n" +
		"node's ref, every commit a node booted (refs/onesis/booted/*) and each REV.\n" +
		"With --prepare, each missing commit is materialised as DIR/c/<commit>: its\n" +
		"files checked out with a private index, .gitmeta applied (owners, modes,\n" +
		"devices, hard links, xattrs) and removed, and the deny list's secrets\n" +
		"replaced by empty 0600 placeholders, as the embedded NFS server does. The\n" +
		"tree is built aside and renamed into place. --prune removes trees no node\n" +
		"uses any more. Then prints (or writes atomically to --output, e.g.\n" +
		"/etc/exports.d/onesis.exports, for 'exportfs -ra') one read-only line per\n" +
		"commit for the clients (default: every node's address), with a stable\n" +
		"fsid, and one read-write line per maintenance node for its own address.\n" +
		"Exits 1 when a commit in use has no tree (run with --prepare).",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "dir", Usage: "keep trees in `DIR`/c/<commit> (default: onesis.exportsDir, else GITDIR/onesis/exports)"},
		&cli.StringFlag{Name: "ref", Usage: "what nodes without a ref boot, as serve --ref `REV` (default: HEAD)"},
		&cli.BoolFlag{Name: "prepare", Usage: "materialise the commits in use that have no tree yet"},
		&cli.BoolFlag{Name: "prune", Usage: "remove trees of commits no longer in use"},
		&cli.StringSliceFlag{Name: "client", Usage: "export to host `SPEC` (address, CIDR, name; repeatable; default: every node's address)"},
		&cli.StringFlag{Name: "options", Value: "ro,no_root_squash,no_subtree_check", Usage: "export `OPTIONS` of commit trees (fsid= is added)"},
		&cli.StringSliceFlag{Name: "deny", Usage: "secret `GLOB` replaced by an empty 0600 placeholder (repeatable; replaces the defaults)"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Usage: "write the exports atomically to `FILE` instead of standard output"},
		&cli.BoolFlag{Name: "json", Usage: "print the exports and their commits as one JSON object"},
		quietFlag,
	},
	Action: runExports,
}

// exportsEntry is one export in --json output.
type exportsEntry struct {
	Path     string   `json:"path"`
	Commit   string   `json:"commit,omitempty"`
	Node     string   `json:"maintenance_node,omitempty"`
	Users    []string `json:"used_by"`
	Clients  []string `json:"clients"`
	Options  string   `json:"options"`
	Present  bool     `json:"present"`
	Prepared bool     `json:"prepared_now,omitempty"`
}

func runExports(c *cli.Context) error {
	im, err := openImage(c)
	if err != nil {
		return err
	}
	dir, err := exportsDir(c, im)
	if err != nil {
		return err
	}
	inv, err := invref.Load(im.Git)
	if err != nil {
		return fatal(err)
	}
	users, err := exportsInUse(c, im, inv)
	if err != nil {
		return err
	}
	commits := slices.Sorted(maps.Keys(users))
	clients, opts, err := exportsClients(c, inv)
	if err != nil {
		return err
	}
	unlock, err := exports.Lock(dir)
	if err != nil {
		return fatal(err)
	}
	defer unlock()
	prepared := map[string]bool{}
	if c.Bool("prepare") {
		if prepared, err = exportsPrepare(c, im, dir, commits, users); err != nil {
			return err
		}
	}
	if c.Bool("prune") {
		if err := exportsPrune(c, dir, commits); err != nil {
			return err
		}
	}
	present, err := exports.Present(dir)
	if err != nil {
		return fatal(err)
	}

	var ex []exports.Export
	var entries []exportsEntry
	missing := 0
	for _, commit := range commits {
		e := exportsEntry{Path: exports.TreeDir(dir, commit), Commit: commit, Users: users[commit],
			Clients: clients, Options: opts + ",fsid=" + exports.FSIDOf(commit), Present: present[commit], Prepared: prepared[commit]}
		entries = append(entries, e)
		if !present[commit] {
			missing++
			fmt.Fprintf(c.App.ErrWriter, "warning: %s (%s) has no tree in %s; run 'git onesis exports --prepare'\n",
				commit[:12], strings.Join(users[commit], ", "), dir)
			continue
		}
		if len(clients) == 0 {
			continue
		}
		ex = append(ex, exports.Export{Path: e.Path, Clients: clients, Options: opts, FSID: commit})
	}
	for _, n := range inv.Nodes {
		if n.Maintenance == "" || !n.IP.IsValid() {
			continue
		}
		mo := "rw,no_root_squash,no_subtree_check,sync"
		ex = append(ex, exports.Export{Path: n.Maintenance, Clients: []string{n.IP.String()}, Options: mo, FSID: "maintenance:" + n.Maintenance})
		entries = append(entries, exportsEntry{Path: n.Maintenance, Node: n.Name, Users: []string{"node " + n.Name + " (maintenance)"},
			Clients: []string{n.IP.String()}, Options: mo + ",fsid=" + exports.FSIDOf("maintenance:"+n.Maintenance), Present: true})
	}
	if len(clients) == 0 && len(commits) > 0 {
		fmt.Fprintln(c.App.ErrWriter, "warning: no clients: the inventory has no nodes and no --client was given, so no commit is exported")
	}
	if err := exportsWrite(c, dir, ex, entries); err != nil {
		return err
	}
	if missing > 0 {
		return cli.Exit("", exitDiff)
	}
	return nil
}

// exportsInUse returns the commits in use and who uses each: resolve.Live
// (the set serve prunes to) plus each REV argument.
func exportsInUse(c *cli.Context, im *image.Image, inv *inventory.Inventory) (map[string][]string, error) {
	boots, err := booted.Read(im.Git)
	if err != nil {
		return nil, fatal(err)
	}
	res, err := resolve.New(im.Git, c.String("ref"))
	if err != nil {
		return nil, fatal(err)
	}
	live, err := res.Live(inv.Nodes, booted.Commits(boots))
	if err != nil {
		return nil, fatal(err)
	}
	for _, w := range live.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", w)
	}
	for _, rev := range c.Args().Slice() {
		commit, err := im.Git.ResolveRev(rev + "^{commit}")
		if err != nil {
			return nil, fatal(fmt.Errorf("%s is not a commit: %w", rev, err))
		}
		live.Users[commit] = append(live.Users[commit], "argument "+rev)
		sort.Strings(live.Users[commit])
	}
	return live.Users, nil
}

// exportsClients checks --client and --options; without --client the
// clients are every non-maintenance node's address, in address order.
func exportsClients(c *cli.Context, inv *inventory.Inventory) (clients []string, opts string, err error) {
	clients = c.StringSlice("client")
	for _, cl := range clients {
		if cl == "" || strings.ContainsAny(cl, " \t\n()#\"") {
			return nil, "", usageErr("--client %q is not a host spec (an address, a CIDR, a host name or a wildcard)", cl)
		}
	}
	if len(clients) == 0 {
		for _, n := range inv.Nodes {
			if n.Maintenance == "" && n.IP.IsValid() {
				clients = append(clients, n.IP.String())
			}
		}
		sort.Slice(clients, func(i, j int) bool {
			a, _ := netip.ParseAddr(clients[i])
			b, _ := netip.ParseAddr(clients[j])
			return a.Less(b)
		})
	}
	opts = c.String("options")
	if opts == "" || strings.ContainsAny(opts, " \t\n()#\"") || strings.Contains(opts, "fsid=") {
		return nil, "", usageErr("--options %q: give comma-separated exports(5) options without spaces and without fsid= (it is derived from the commit)", opts)
	}
	return clients, opts, nil
}

// exportsPrepare materialises the commits that have no tree yet and
// returns which it created.
func exportsPrepare(c *cli.Context, im *image.Image, dir string, commits []string, users map[string][]string) (map[string]bool, error) {
	var deny []string
	if c.IsSet("deny") {
		deny = c.StringSlice("deny")
	}
	present, err := exports.Present(dir)
	if err != nil {
		return nil, fatal(err)
	}
	prepared := map[string]bool{}
	for _, commit := range commits {
		if present[commit] {
			continue
		}
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "materialising %s for %s\n", commit[:12], strings.Join(users[commit], ", "))
		}
		r, err := exports.Materialise(im.Git, dir, commit, deny)
		if err != nil {
			return nil, fatal(err)
		}
		prepared[commit] = r.Created
		if !c.Bool("quiet") {
			note := ""
			if r.NoMeta {
				note = " (no .gitmeta: git's modes and root ownership only)"
			} else if r.Apply != nil {
				note = fmt.Sprintf(": %d entries set from .gitmeta", r.Apply.Visited)
			}
			fmt.Fprintf(c.App.ErrWriter, "prepared %s%s, %d secrets hidden\n", r.Dir, note, r.Denied)
		}
	}
	return prepared, nil
}

// exportsPrune removes the trees of commits no longer in use.
func exportsPrune(c *cli.Context, dir string, commits []string) error {
	keep := map[string]bool{}
	for _, commit := range commits {
		keep[commit] = true
	}
	removed, err := exports.Prune(dir, keep)
	for _, r := range removed {
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "removed %s (no node uses it)\n", exports.TreeDir(dir, r))
		}
	}
	return fatal(err)
}

// exportsWrite prints the exports (or --json), or writes them atomically
// to --output.
func exportsWrite(c *cli.Context, dir string, ex []exports.Export, entries []exportsEntry) error {
	var body []byte
	if c.Bool("json") {
		var err error
		body, err = json.MarshalIndent(struct {
			Dir     string         `json:"dir"`
			Exports []exportsEntry `json:"exports"`
		}{dir, entries}, "", "  ")
		if err != nil {
			return fatal(err)
		}
		body = append(body, '\n')
	} else {
		body = exports.Render(ex)
	}
	if out := c.String("output"); out != "" {
		if err := renameio.WriteFile(out, body, 0o644); err != nil {
			return fatal(fmt.Errorf("writing %s: %w", out, err))
		}
		if !c.Bool("quiet") {
			fmt.Fprintf(c.App.ErrWriter, "wrote %s: %d exports; run 'exportfs -ra' to apply it\n", out, len(ex))
		}
		return nil
	}
	_, err := c.App.Writer.Write(body)
	return fatal(err)
}

// exportsDir is --dir, else onesis.exportsDir, else GITDIR/onesis/exports;
// always absolute.
func exportsDir(c *cli.Context, im *image.Image) (string, error) {
	dir := c.String("dir")
	if dir == "" {
		v, ok, err := im.Git.Config("onesis.exportsDir")
		if err != nil {
			return "", fatal(err)
		}
		if ok && v != "" {
			dir = v
		} else {
			dir = filepath.Join(im.Git.CommonDir, "onesis", "exports")
		}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fatal(err)
	}
	if st, err := os.Lstat(abs); err == nil && !st.IsDir() {
		return "", fatal(fmt.Errorf("the exports directory %s is not a directory", abs))
	}
	return abs, nil
}
