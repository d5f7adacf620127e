package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/boot/invref"
	"github.com/onesis/git-onesis/boot/resolve"
	"github.com/onesis/git-onesis/boot/serve"
	"github.com/onesis/git-onesis/boot/sysimage"
	"github.com/onesis/git-onesis/boot/trust"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/image"
)

func init() { register(nodeCmd) }

var nodeCmd = &cli.Command{
	Name:      "node",
	Usage:     "manage the node inventory that git onesis serve boots from",
	UsageText: "git onesis node (add|set|rm|list|import|network|discovered) ...",
	Description: "The inventory is the file 'nodes' in the tree of " + invref.Ref + ",\n" +
		"shared by every branch and worktree. Each change is a commit under your git\n" +
		"identity, so 'git log -p " + invref.Ref + "' shows who changed which node.\n" +
		"A running serve reloads it within seconds; a broken hand edit is refused\n" +
		"and the last good inventory kept.",
	Action: needSubcommand,
}

// nodeSubcommands are the node commands; options may follow the node name
// ('git onesis node add n1 --mac M --ip I') as everywhere (see gitArgs).
var nodeSubcommands = []*cli.Command{nodeAddCmd, nodeSetCmd, nodeRmCmd, nodeListCmd, nodeImportCmd, nodeNetworkCmd, nodeEditCmd, nodeDiscoveredCmd}

func init() { nodeCmd.Subcommands = nodeSubcommands }

var nodeFieldFlags = []cli.Flag{
	&cli.StringSliceFlag{Name: "mac", Usage: "Ethernet `MAC` address (repeat for more NICs)"},
	&cli.StringFlag{Name: "ip", Usage: "static IPv4 `ADDRESS`"},
	&cli.StringFlag{Name: "ref", Usage: "boot `REV` instead of serve --ref or the checked-out branch"},
	&cli.StringFlag{Name: "maintenance", Usage: "boot the work tree `DIR` read-write (a maintenance node)"},
	&cli.StringFlag{Name: "args", Usage: "extra kernel `ARGUMENTS`"},
}

var nodeAddCmd = &cli.Command{
	Name:      "add",
	Usage:     "add a node",
	UsageText: "git onesis node add NAME --mac MAC [--mac MAC2] --ip IP [--ref REV] [--maintenance DIR] [--args '...']",
	Flags:     nodeFieldFlags,
	Action:    runNodeAdd,
}

var nodeSetCmd = &cli.Command{
	Name:      "set",
	Usage:     "change a node; --mac replaces its MACs, an empty value clears --ref, --maintenance or --args",
	UsageText: "git onesis node set NAME [--mac MAC...] [--ip IP] [--ref REV] [--maintenance DIR] [--args '...']",
	Flags:     nodeFieldFlags,
	Action:    runNodeSet,
}

var nodeRmCmd = &cli.Command{
	Name:      "rm",
	Usage:     "remove nodes",
	UsageText: "git onesis node rm NAME...",
	Action:    runNodeRm,
}

var nodeListCmd = &cli.Command{
	Name:      "list",
	Aliases:   []string{"ls"},
	Usage:     "list nodes with the class and properties the image's etc/sysimage.conf gives them",
	UsageText: "git onesis node list [--json|--porcelain] [--state-dir DIR] [NAME...]",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "json", Usage: "print a JSON array"},
		&cli.BoolFlag{Name: "porcelain", Usage: "print one tab-separated line per node, for scripts"},
		stateDirFlag,
		&cli.StringFlag{Name: "ref", Usage: "what nodes without a ref boot, as serve --ref `REV` (default: the checked-out branch)"},
	},
	Action: runNodeList,
}

var nodeImportCmd = &cli.Command{
	Name:      "import",
	Usage:     "add the host blocks of an ISC dhcpd.conf",
	UsageText: "git onesis node import [--replace] [--dry-run] FILE",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "replace", Usage: "overwrite nodes that already exist"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the records, change nothing"},
	},
	Action: runNodeImport,
}

var nodeNetworkCmd = &cli.Command{
	Name:      "network",
	Usage:     "set the mask, router, DNS and domain DHCP gives the nodes of a network",
	UsageText: "git onesis node network PREFIX [--router IP] [--dns IP,...] [--domain NAME] | --rm PREFIX",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "router", Usage: "default gateway `IP`"},
		&cli.StringFlag{Name: "dns", Usage: "comma-separated DNS server `IPS`"},
		&cli.StringFlag{Name: "domain", Usage: "DNS domain `NAME`"},
		&cli.BoolFlag{Name: "rm", Usage: "remove the network"},
	},
	Action: runNodeNetwork,
}

var nodeEditCmd = &cli.Command{
	Name:      "edit",
	Usage:     "edit the nodes file in your editor; it is committed only if it is valid",
	UsageText: "git onesis node edit [-m MESSAGE]",
	Flags:     []cli.Flag{&cli.StringFlag{Name: "message", Aliases: []string{"m"}, Usage: "commit `MESSAGE` (default \"node edit\")"}},
	Action:    runNodeEdit,
}

var nodeDiscoveredCmd = &cli.Command{
	Name:      "discovered",
	Usage:     "list unknown MACs that serve --discover has seen",
	UsageText: "git onesis node discovered [--state-dir DIR]",
	Flags:     []cli.Flag{&cli.StringFlag{Name: "state-dir", Usage: "serve's state `DIR` (default: GITDIR/onesis/serve)"}},
	Action:    runNodeDiscovered,
}

// nodeRepo opens the repository around the current directory; the
// inventory needs no work tree.
func nodeRepo() (*git.Repo, error) {
	r, err := git.Discover(".")
	if errors.Is(err, git.ErrNotRepo) {
		return nil, cli.Exit("fatal: not a git repository (or any of the parent directories): .git", exitFatal)
	}
	return r, fatal(err)
}

// nodeName takes the single NAME argument.
func nodeName(c *cli.Context) (string, error) {
	if c.NArg() != 1 {
		return "", usageErr("give exactly one node NAME\nSee 'git onesis node %s --help'.", c.Command.Name)
	}
	name := c.Args().First()
	if err := inventory.CheckName(name); err != nil {
		return "", usageErr("%v", err)
	}
	return name, nil
}

// applyNodeFlags copies the flags given on the command line into n and
// checks that what they name exists in r (see checkNodeTargets).
func applyNodeFlags(c *cli.Context, r *git.Repo, n *inventory.Node) error {
	if c.IsSet("mac") {
		n.MACs = nil
		for _, s := range c.StringSlice("mac") {
			for _, part := range strings.Split(s, ",") {
				m, err := inventory.ParseMAC(strings.TrimSpace(part))
				if err != nil {
					return usageErr("--mac: %v", err)
				}
				n.MACs = append(n.MACs, m)
			}
		}
	}
	if c.IsSet("ip") {
		ip, err := netip.ParseAddr(c.String("ip"))
		if err != nil {
			return usageErr("--ip: %q is not an IP address", c.String("ip"))
		}
		n.IP = ip
	}
	if c.IsSet("ref") {
		n.Ref = c.String("ref")
	}
	if c.IsSet("maintenance") {
		d := c.String("maintenance")
		if d != "" {
			abs, err := filepath.Abs(d)
			if err != nil {
				return usageErr("--maintenance: %v", err)
			}
			d = abs
		}
		n.Maintenance = d
	}
	if c.IsSet("args") {
		n.Args = c.String("args")
	}
	if err := n.Validate(); err != nil {
		return usageErr("%v", err)
	}
	if c.IsSet("ref") || c.IsSet("maintenance") {
		if err := checkNodeTargets(r, n); err != nil {
			return cli.Exit("error: "+err.Error(), exitDiff)
		}
	}
	return nil
}

// checkNodeTargets refuses a node serve could not boot: a ref that names
// no commit here (nor a remote-tracking branch of that name, as on a boot
// server's clone), or a maintenance directory that is not the top of a
// work tree of this repository (the host's /etc, a typo, a subdirectory).
func checkNodeTargets(r *git.Repo, n *inventory.Node) error {
	if n.Ref != "" {
		res := &resolve.Resolver{Repo: r}
		if _, err := res.Rev(n.Ref); err != nil {
			return fmt.Errorf("node %s: --ref %s names no commit in this repository (see 'git branch -a')", n.Name, n.Ref)
		}
	}
	if n.Maintenance == "" {
		return nil
	}
	wt, err := git.Discover(n.Maintenance)
	if err != nil || wt.Top == "" || wt.CommonDir != r.CommonDir || mustEval(wt.Top) != mustEval(n.Maintenance) {
		return fmt.Errorf("node %s: --maintenance %s is not a work tree of this repository; give the top of one that 'git worktree list' shows (such as the one 'git onesis upgrade start' made)", n.Name, n.Maintenance)
	}
	return nil
}

// inventoryRefused is an inventory change refused for a reason the admin
// can fix (conflict, unknown node): exit 1.
func inventoryRefused(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := exitCoder(err); ok {
		return err
	}
	var ge *git.Error
	if errors.As(err, &ge) {
		return fatal(err)
	}
	return cli.Exit("error: "+err.Error(), exitDiff)
}

func macList(ms []net.HardwareAddr) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.String())
	}
	return strings.Join(s, ",")
}

func runNodeAdd(c *cli.Context) error {
	name, err := nodeName(c)
	if err != nil {
		return err
	}
	if !c.IsSet("mac") || !c.IsSet("ip") {
		return usageErr("node add needs --mac and --ip\nSee 'git onesis node add --help'.")
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	n := &inventory.Node{Name: name}
	if err := applyNodeFlags(c, r, n); err != nil {
		return err
	}
	msg := fmt.Sprintf("node add %s (%s)\n\n%s\n", name, macList(n.MACs), n.Record())
	_, err = invref.Update(r, msg, func(inv *inventory.Inventory) error {
		if inv.ByName(name) != nil {
			return fmt.Errorf("node %s already exists; change it with 'git onesis node set %s'", name, name)
		}
		return inv.Put(n)
	})
	return inventoryRefused(err)
}

func runNodeSet(c *cli.Context) error {
	name, err := nodeName(c)
	if err != nil {
		return err
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	var changes []string
	for _, f := range []string{"mac", "ip", "ref", "maintenance", "args"} {
		if c.IsSet(f) {
			v := c.String(f)
			if f == "mac" {
				v = strings.Join(c.StringSlice(f), ",")
			}
			changes = append(changes, fmt.Sprintf("%s=%q", f, v))
		}
	}
	if len(changes) == 0 {
		return usageErr("node set needs at least one of --mac, --ip, --ref, --maintenance, --args")
	}
	msg := "node set " + name + " " + strings.Join(changes, " ")
	_, err = invref.Update(r, msg, func(inv *inventory.Inventory) error {
		old := inv.ByName(name)
		if old == nil {
			return fmt.Errorf("there is no node %q; add it with 'git onesis node add'", name)
		}
		n := *old
		if err := applyNodeFlags(c, r, &n); err != nil {
			return err
		}
		return inv.Put(&n)
	})
	return inventoryRefused(err)
}

func runNodeRm(c *cli.Context) error {
	names := c.Args().Slice()
	if len(names) == 0 {
		return usageErr("give at least one node NAME\nSee 'git onesis node rm --help'.")
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	_, err = invref.Update(r, "node rm "+strings.Join(names, " "), func(inv *inventory.Inventory) error {
		for _, n := range names {
			if err := inv.Remove(n); err != nil {
				return err
			}
		}
		return nil
	})
	return inventoryRefused(err)
}

func runNodeImport(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr("give exactly one dhcpd.conf FILE\nSee 'git onesis node import --help'.")
	}
	file := c.Args().First()
	b, err := os.ReadFile(file)
	if err != nil {
		return fatal(fmt.Errorf("reading %s: %w", file, err))
	}
	im, err := inventory.ImportDHCPD(file, b)
	if err != nil {
		return inventoryRefused(err)
	}
	for _, w := range im.Warnings {
		fmt.Fprintf(c.App.ErrWriter, "warning: %s\n", w)
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	if c.Bool("dry-run") {
		inv, err := invref.Load(r)
		if err != nil {
			return fatal(err)
		}
		inv = inv.Clone()
		if err := inv.Merge(im, file, c.Bool("replace")); err != nil {
			return inventoryRefused(err)
		}
		_, err = c.App.Writer.Write(inv.Marshal())
		return fatal(err)
	}
	msg := fmt.Sprintf("node import %s (%d nodes, %d networks)", filepath.Base(file), len(im.Nodes), len(im.Networks))
	_, err = invref.Update(r, msg, func(inv *inventory.Inventory) error {
		return inv.Merge(im, file, c.Bool("replace"))
	})
	if err == nil {
		fmt.Fprintf(c.App.ErrWriter, "imported %d nodes and %d networks from %s\n", len(im.Nodes), len(im.Networks), file)
	}
	return inventoryRefused(err)
}

func runNodeNetwork(c *cli.Context) error {
	if c.NArg() != 1 {
		return usageErr("give exactly one network PREFIX such as 10.77.0.0/24")
	}
	p, err := netip.ParsePrefix(c.Args().First())
	if err != nil {
		return usageErr("%q is not a network prefix such as 10.77.0.0/24", c.Args().First())
	}
	nw := &inventory.Network{Prefix: p, Domain: c.String("domain")}
	if s := c.String("router"); s != "" {
		if nw.Router, err = netip.ParseAddr(s); err != nil {
			return usageErr("--router: %q is not an IP address", s)
		}
	}
	if s := c.String("dns"); s != "" {
		for _, d := range strings.Split(s, ",") {
			a, err := netip.ParseAddr(strings.TrimSpace(d))
			if err != nil {
				return usageErr("--dns: %q is not an IP address", d)
			}
			nw.DNS = append(nw.DNS, a)
		}
	}
	if !c.Bool("rm") {
		if err := nw.Validate(); err != nil {
			return usageErr("%v", err)
		}
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	verb := "set"
	if c.Bool("rm") {
		verb = "rm"
	}
	_, err = invref.Update(r, "node network "+verb+" "+p.String(), func(inv *inventory.Inventory) error {
		if c.Bool("rm") {
			for i, o := range inv.Networks {
				if o.Prefix == p {
					inv.Networks = append(inv.Networks[:i], inv.Networks[i+1:]...)
					return nil
				}
			}
			return fmt.Errorf("there is no network %s in the inventory", p)
		}
		return inv.PutNetwork(nw)
	})
	return inventoryRefused(err)
}

// runNodeEdit opens the nodes file in git's editor (GIT_EDITOR,
// core.editor, VISUAL, EDITOR) and commits the result if it parses and
// validates. An invalid file is kept for the admin, and nothing changes.
func runNodeEdit(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("edit takes no arguments")
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	cur, err := invref.Load(r)
	if err != nil {
		return fatal(err)
	}
	out, err := r.Run("var", "GIT_EDITOR")
	if err != nil {
		return fatal(fmt.Errorf("finding your editor: %w", err))
	}
	editor := strings.TrimSpace(string(out))
	f, err := os.CreateTemp("", "onesis-nodes-*.txt")
	if err != nil {
		return fatal(err)
	}
	name := f.Name()
	_, werr := f.Write(cur.Marshal())
	if cerr := f.Close(); werr != nil || cerr != nil {
		return fatal(errors.Join(werr, cerr))
	}
	// Run the editor as git does: through the shell, with the file as $1.
	ed := exec.Command("sh", "-c", editor+` "$@"`, editor, name)
	ed.Stdin, ed.Stdout, ed.Stderr = c.App.Reader, c.App.Writer, c.App.ErrWriter
	if err := ed.Run(); err != nil {
		return fatal(fmt.Errorf("the editor failed (%v); your text is in %s", err, name))
	}
	b, err := os.ReadFile(name)
	if err != nil {
		return fatal(err)
	}
	edited, err := inventory.Parse(invref.File, b)
	if err != nil {
		return cli.Exit(fmt.Sprintf("error: %v\nnothing changed; your text is in %s", err, name), exitDiff)
	}
	for _, n := range edited.Nodes {
		if o := cur.ByName(n.Name); o != nil && o.Ref == n.Ref && o.Maintenance == n.Maintenance {
			continue // unchanged targets are not judged again
		}
		if err := checkNodeTargets(r, n); err != nil {
			return cli.Exit(fmt.Sprintf("error: %v\nnothing changed; your text is in %s", err, name), exitDiff)
		}
	}
	msg := c.String("message")
	if msg == "" {
		msg = "node edit"
	}
	_, err = invref.Update(r, msg, func(inv *inventory.Inventory) error {
		if inv.Commit != cur.Commit {
			return fmt.Errorf("the inventory changed while you were editing; your text is in %s", name)
		}
		inv.Clear()
		inv.Comment = edited.Comment
		for _, nw := range edited.Networks {
			if err := inv.PutNetwork(nw); err != nil {
				return err
			}
		}
		for _, n := range edited.Nodes {
			if err := inv.Put(n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return inventoryRefused(err)
	}
	os.Remove(name)
	return nil
}

// jsonNode is one node of `node list --json`.
type jsonNode struct {
	Name        string   `json:"name"`
	MACs        []string `json:"macs"`
	IP          string   `json:"ip"`
	Ref         string   `json:"ref,omitempty"`
	Maintenance string   `json:"maintenance,omitempty"`
	Args        string   `json:"args,omitempty"`
	Class       string   `json:"class"`
	Properties  []string `json:"properties"`
	// ClassFrom says where the class was resolved: the revision or work
	// tree whose etc/sysimage.conf was read; "" if none could be.
	ClassFrom string `json:"class_from,omitempty"`
	// Commit is the commit the node boots next, as serve resolves it
	// (package resolve); CommitFrom says from what ("branch main", "node
	// ref testing (origin/testing)"). Both "" when it resolves to none.
	Commit     string `json:"commit,omitempty"`
	CommitFrom string `json:"commit_from,omitempty"`
	// Booted is the commit the node last booted (refs/onesis/booted/NAME).
	Booted string `json:"booted,omitempty"`
	// Firmware is what the node last booted with, as serve saw it
	// ("bios", "efi-x64", "efi-x64-http", "ipxe", ...; see serve.md).
	Firmware string `json:"firmware,omitempty"`
	// Refused says why the signature policy (onesis.serve.requireSignature)
	// would refuse Commit; "" when it would boot it.
	Refused string `json:"refused,omitempty"`
}

func runNodeList(c *cli.Context) error {
	if c.Bool("json") && c.Bool("porcelain") {
		return usageErr("--json and --porcelain are exclusive")
	}
	r, err := nodeRepo()
	if err != nil {
		return err
	}
	inv, err := invref.Load(r)
	if err != nil {
		return fatal(err)
	}
	nodes := inv.Nodes
	if c.NArg() > 0 {
		nodes = nil
		for _, name := range c.Args().Slice() {
			n := inv.ByName(name)
			if n == nil {
				return cli.Exit(fmt.Sprintf("error: there is no node %q", name), exitDiff)
			}
			nodes = append(nodes, n)
		}
	}
	res := newClassResolver(r, c.String("ref"), c.App.ErrWriter)
	boots, err := booted.Read(r)
	if err != nil {
		return fatal(err)
	}
	stateDir := c.String("state-dir")
	if stateDir == "" {
		stateDir = serve.DefaultStateDir(r)
	}
	firmware, err := serve.ReadNodeFirmware(stateDir)
	if err != nil {
		fmt.Fprintf(c.App.ErrWriter, "warning: %v\n", err)
	}
	pol, err := trust.Load(r)
	if err != nil {
		return fatal(err)
	}
	out := make([]jsonNode, 0, len(nodes))
	for _, n := range nodes {
		j := jsonNode{Name: n.Name, IP: n.IP.String(), Ref: n.Ref, Maintenance: n.Maintenance, Args: n.Args, Properties: []string{}, Booted: boots[n.Name].Commit, Firmware: firmware[n.Name].Firmware}
		for _, m := range n.MACs {
			j.MACs = append(j.MACs, m.String())
		}
		next, sn, from := res.resolve(n)
		j.Commit, j.CommitFrom = next.Commit, next.From
		if next.Commit != "" {
			var refused *httpboot.Refusal
			if err := pol.Allow(n, next); errors.As(err, &refused) {
				j.Refused = refused.Reason
			} else if err != nil {
				j.Refused = "cannot check: " + err.Error()
			}
		}
		if sn != nil {
			j.Class, j.ClassFrom = sn.Class, from
			if sn.Props != nil {
				j.Properties = sn.Props
			}
		}
		out = append(out, j)
	}
	// One write per buffer, not per line: at 10,000 nodes the per-line
	// writes were most of the command's time.
	w := bufio.NewWriterSize(c.App.Writer, 64<<10)
	defer w.Flush()
	switch {
	case c.Bool("json"):
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return fatal(err)
		}
	case c.Bool("porcelain"):
		// name TAB macs TAB ip TAB ref TAB maintenance TAB class TAB props TAB args TAB booted TAB firmware TAB refused
		for _, j := range out {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, strings.Join(j.MACs, ","), j.IP,
				j.Ref, j.Maintenance, j.Class, strings.Join(j.Properties, ","), j.Args, j.Booted, j.Firmware, j.Refused)
		}
	default:
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tMAC\tIP\tREF\tCLASS\tPROPERTIES\tBOOTED\tFIRMWARE\tNOTES")
		for _, j := range out {
			notes := []string{}
			if j.Maintenance != "" {
				notes = append(notes, "maintenance rw "+j.Maintenance)
			}
			if j.Args != "" {
				notes = append(notes, "args: "+j.Args)
			}
			if j.Refused != "" {
				notes = append(notes, "REFUSED "+shortOID(j.Commit)+": "+j.Refused)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", j.Name, strings.Join(j.MACs, ","), j.IP,
				dash(j.Ref), dash(j.Class), dash(strings.Join(j.Properties, ",")), dash(shortOID(j.Booted)), dash(j.Firmware), strings.Join(notes, "; "))
		}
		if err := tw.Flush(); err != nil {
			return fatal(err)
		}
	}
	return fatal(w.Flush())
}

func shortOID(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// classResolver resolves what each node boots next with the resolver
// serve uses (package resolve: its maintenance work tree, its ref or the
// one remote-tracking branch of that name, --ref, the checked-out branch)
// and its class from that commit's sysimage.conf (a maintenance node's
// from its work tree; the work tree's when HEAD is unborn and nothing
// else names a commit). Configs are read once per commit; problems are
// warned about once and leave the class empty.
type classResolver struct {
	res    *resolve.Resolver
	im     *image.Image
	stderr io.Writer
	cache  map[string]*sysimage.Config // by commit, or "wt:" + directory
	warned map[string]bool
	// next memoises what nodes that share a ref (or none) boot: one
	// resolution per ref, not per node.
	next map[string]nextBoot
	born *bool // whether HEAD has a commit; nil until asked
}

// headBorn says whether HEAD has a commit, asked once for all nodes.
func (cr *classResolver) headBorn() bool {
	if cr.born == nil {
		_, ok, _ := cr.res.Repo.HeadCommit()
		cr.born = &ok
	}
	return *cr.born
}

type nextBoot struct {
	res httpboot.Resolution
	err error
}

func newClassResolver(r *git.Repo, ref string, stderr io.Writer) *classResolver {
	if ref == "" {
		ref, _, _ = r.Config(resolve.KeyRef) // as serve reads it
	}
	cr := &classResolver{res: &resolve.Resolver{Repo: r, Ref: ref}, im: &image.Image{Git: r, Root: r.Top},
		stderr: stderr, cache: map[string]*sysimage.Config{}, warned: map[string]bool{}, next: map[string]nextBoot{}}
	return cr
}

// resolve returns what n boots next (zero when it resolves to nothing),
// its class, and the source the class was read from: the node's ref,
// --ref, "HEAD", its maintenance directory, or "worktree".
func (cr *classResolver) resolve(n *inventory.Node) (httpboot.Resolution, *sysimage.Node, string) {
	var next httpboot.Resolution
	var err error
	if n.Maintenance != "" {
		next, err = cr.res.Resolve(n)
	} else {
		nb, ok := cr.next[n.Ref]
		if !ok {
			nb.res, nb.err = cr.res.Resolve(&inventory.Node{Name: n.Name, Ref: n.Ref})
			cr.next[n.Ref] = nb
		}
		next, err = nb.res, nb.err
	}
	from, key := n.Ref, next.Commit
	switch {
	case n.Maintenance != "":
		// It boots its work tree, whose HEAD need not even exist.
		from, key, err = n.Maintenance, "wt:"+n.Maintenance, nil
	case from == "" && cr.res.Ref != "":
		from = cr.res.Ref
	case from == "":
		from = "HEAD"
	}
	if err != nil {
		if n.Ref == "" && cr.res.Ref == "" && !cr.headBorn() && cr.im.Root != "" {
			// Nothing committed yet: the work tree is the only image.
			from, key, err = "worktree", "wt:"+cr.im.Root, nil
		}
	}
	cfg, ok := cr.cache[key]
	if !ok && err == nil {
		switch {
		case strings.HasPrefix(key, "wt:"):
			cfg, err = sysimage.Parse(classTreeOpener(strings.TrimPrefix(key, "wt:")), classConfPath)
		default:
			cfg, err = classConfigAt(cr.im, from, next.Commit)
		}
		cr.cache[key] = cfg
	}
	if err != nil && !cr.warned[from] {
		cr.warned[from] = true
		fmt.Fprintf(cr.stderr, "warning: no class for nodes booting %s: %v\n", from, err)
	}
	if cfg == nil {
		return next, nil, ""
	}
	sn, err := cfg.Resolve(n.Name, "")
	if err != nil {
		return next, nil, ""
	}
	return next, sn, from
}

func runNodeDiscovered(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("discovered takes no arguments")
	}
	dir := c.String("state-dir")
	if dir == "" {
		r, err := nodeRepo()
		if err != nil {
			return err
		}
		dir = filepath.Join(r.CommonDir, "onesis", "serve")
	}
	list, err := inventory.ReadDiscovered(filepath.Join(dir, "discovered"))
	if err != nil {
		return fatal(err)
	}
	tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MAC\tLAST SEEN\tCOUNT\tCLIENT")
	for _, s := range list {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\n", s.MAC, s.Last.UTC().Format(time.RFC3339), s.Count, s.Info)
	}
	return fatal(tw.Flush())
}
