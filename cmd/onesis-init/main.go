// Command onesis-init is the PID 1 of a git-onesis initramfs. It mounts
// proc, sys, dev and run, loads the NIC and NFS modules, picks the boot
// NIC, gets its address, hostname and root path from DHCP, mounts the
// image read-only over NFS with raw mount(2) (no portmapper needed),
// builds the node's /ram from etc/sysimage.conf with the personality
// engine, and switch_roots to the image's own init.
//
// It is a static binary (CGO_ENABLED=0) and distro-neutral: the same
// initramfs boots a Debian or a RHEL-family image. Everything it prints
// starts with "onesis:"; a failed step prints one line saying what failed
// and what was tried, is retried with backoff, and the node then reboots
// or halts as onesis.panic= says.
//
// With --personality-only it only builds /ram under an already mounted
// root, for images that boot with their own initramfs (an initramfs-tools
// nfs-bottom script; see docs/initramfs.md).
package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/onesis/git-onesis/boot/cmdline"
	"golang.org/x/sys/unix"
)

// debug is onesis.debug: log DHCP packets and every /ram step.
var debug bool

// newRoot is where the NFS root is mounted before switch_root.
const newRoot = "/newroot"

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stdout, "onesis: "+format+"\n", a...)
}

func main() {
	if len(os.Args) > 1 && os.Args[1] == "--personality-only" {
		os.Exit(personalityOnly(os.Args[2:]))
	}
	if len(os.Args) > 1 && (os.Args[1] == "--help" || os.Args[1] == "-h") {
		fmt.Println("usage: onesis-init            (as PID 1 of a git-onesis initramfs)\n" +
			"       onesis-init --personality-only [--root DIR] [--host NAME] [--classname C]")
		return
	}
	if os.Getpid() != 1 {
		fmt.Fprintln(os.Stderr, "onesis-init: not PID 1; it is the init of a git-onesis initramfs (or run it with --personality-only)")
		os.Exit(2)
	}
	b := &booter{}
	b.run()
}

type booter struct {
	cfg *cmdline.Config
}

// fail reports a step that could not be done and ends the boot.
func (b *booter) fail(what string, err error) {
	logf("FAILED: %s: %v", what, err)
	mode := "reboot"
	if b.cfg != nil {
		mode = b.cfg.Panic
	}
	logf("boot failed; %s in 10 seconds (onesis.panic=reboot|halt)", map[string]string{"reboot": "rebooting", "halt": "halting"}[mode])
	time.Sleep(10 * time.Second)
	unix.Sync()
	if mode == "halt" {
		unix.Reboot(unix.LINUX_REBOOT_CMD_POWER_OFF)
	} else {
		unix.Reboot(unix.LINUX_REBOOT_CMD_RESTART)
	}
	select {} // PID 1 must not exit
}

// retry runs step up to the configured number of attempts with doubling
// backoff (1s, 2s, 4s ... at most 30s), printing each failure.
func (b *booter) retry(what string, step func() error) error {
	delay := time.Second
	var err error
	for i := 1; i <= b.cfg.Retries; i++ {
		if err = step(); err == nil {
			return nil
		}
		if i == b.cfg.Retries {
			break
		}
		logf("%s failed (attempt %d of %d): %v; retrying in %s", what, i, b.cfg.Retries, err, delay)
		time.Sleep(delay)
		if delay *= 2; delay > 30*time.Second {
			delay = 30 * time.Second
		}
	}
	return fmt.Errorf("%w (gave up after %d attempts; raise onesis.retries= to try longer)", err, b.cfg.Retries)
}

func (b *booter) run() {
	if err := mountEarly(); err != nil {
		b.fail("mounting /proc, /sys, /dev and /run", err)
	}
	reopenConsole()
	raw, err := os.ReadFile("/proc/cmdline")
	if err != nil {
		b.fail("reading /proc/cmdline", err)
	}
	cfg, err := cmdline.Parse(string(raw))
	if cfg != nil {
		b.cfg = cfg
	}
	if err != nil {
		b.fail("reading the kernel command line", err)
	}
	debug = cfg.Debug
	logf("git-onesis init starting (commit %s, node %s)", orNone(cfg.Commit), orNone(cfg.Node))

	loaded, failed, err := loadModules(cfg.Modules, logf)
	if err != nil {
		b.fail("loading kernel modules", err)
	}
	logf("loaded %d modules: %s", len(loaded), strings.Join(loaded, " "))
	for _, f := range failed {
		logf("module %s (continuing)", f)
	}

	ifname, ls := b.network()
	host := cfg.Hostname
	if ls.Hostname != "" && cmdline.CheckHostname(ls.Hostname) != nil {
		logf("ignoring the DHCP hostname %q: %v", ls.Hostname, cmdline.CheckHostname(ls.Hostname))
	}
	switch {
	case host != "":
	case ls.Hostname != "" && cmdline.CheckHostname(ls.Hostname) == nil:
		host = ls.Hostname
	case cfg.Node != "":
		host = cfg.Node
	}
	if host == "" {
		b.fail("choosing the hostname", fmt.Errorf("no hostname= argument, no DHCP option 12 from %s and no onesis.node=", ls.Server))
	}
	if err := unix.Sethostname([]byte(host)); err != nil {
		b.fail("setting the hostname to "+host, err)
	}
	logf("hostname=%s ip=%s/%d dev=%s", host, ls.IP, maskBits(ls.Mask), ifname)
	if err := writeNetConf("/run", ifname, ls, host); err != nil {
		logf("writing /run/net-%s.conf: %v (continuing)", ifname, err)
	}

	root := cfg.Root
	if root == nil {
		if ls.RootPath == "" {
			b.fail("finding the root", fmt.Errorf("no nfsroot= (or onesis.root=) argument and no DHCP root path (option 17) from %s", ls.Server))
		}
		if root, err = cmdline.ParseNFSRoot(ls.RootPath); err != nil {
			b.fail("reading the DHCP root path (option 17) "+ls.RootPath, err)
		}
		logf("root from DHCP option 17: %s", ls.RootPath)
	}
	server := root.Server
	if server == "" {
		if ls.Server == nil {
			b.fail("finding the NFS server", fmt.Errorf("nfsroot=%s names no server and DHCP named none", root.Path))
		}
		server = ls.Server.String()
	}
	if err := mountRoot(b, server, root); err != nil {
		b.fail(fmt.Sprintf("mounting %s:%s on %s", server, root.Path, newRoot), err)
	}

	class, err := applyPersonality(newRoot, host, cfg.Class, true)
	if err != nil {
		b.fail("building /ram from etc/sysimage.conf", err)
	}
	logf("hostname=%s class=%s commit=%s", host, orNone(class), orNone(cfg.Commit))
	if cfg.Secrets != "" {
		// Not fatal: a node without its secrets still boots, and says so.
		if placed, err := fetchSecrets(newRoot, cfg.Secrets); err != nil {
			logf("secrets: not delivered: %v (continuing without them)", err)
		} else if len(placed) == 0 {
			logf("secrets: none on the boot server for this node")
		} else {
			logf("secrets: %d placed over the image's placeholders: %s", len(placed), strings.Join(placed, " "))
		}
	}

	if err := switchRoot(newRoot, cfg.Init); err != nil {
		b.fail("switching to the image's init "+cfg.Init, err)
	}
}

// network brings the boot NIC up with DHCP (or the static ip=).
func (b *booter) network() (string, *lease) {
	cfg := b.cfg
	linkUp("lo")
	var n nic
	var why string
	err := b.retry("finding the boot NIC", func() error {
		if cfg.Static != nil && cfg.Static.Device != "" {
			// ip= names the device: wait for it to appear.
			for i := 0; i < 40; i++ {
				for _, c := range listNICs() {
					if c.Name == cfg.Static.Device {
						n, why = c, "ip= names it"
						return nil
					}
				}
				time.Sleep(250 * time.Millisecond)
			}
			return fmt.Errorf("the interface %s that ip= names did not appear", cfg.Static.Device)
		}
		var err error
		n, why, err = waitNIC(cfg.BootIF, 10*time.Second)
		return err
	})
	if err != nil {
		b.fail("finding the boot NIC", err)
	}
	logf("boot NIC %s (%s, %s)", n.Name, n.MAC, why)
	if err := linkUp(n.Name); err != nil {
		b.fail("bringing up "+n.Name, err)
	}
	var ls *lease
	if st := cfg.Static; st != nil {
		ls = &lease{Proto: "none", IP: st.Client, Mask: st.Mask, Router: st.Gateway, Server: st.Server, Hostname: st.Hostname}
		logf("static address %s from ip=", st.Client)
	} else {
		// Without BOOTIF, a failed attempt moves on to the next interface
		// with carrier, so a node whose first cabled NIC is not on the
		// provisioning network still boots.
		attempt := 0
		tried := map[string]bool{}
		err = b.retry("DHCP", func() error {
			if cfg.BootIF == nil && attempt > 0 {
				if next, ok := nextNIC(listNICs(), attempt); ok && next.Name != n.Name {
					n = next
					linkUp(n.Name)
					logf("trying DHCP on %s (%s) instead", n.Name, n.MAC)
				}
			}
			attempt++
			tried[n.Name] = true
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var err error
			ls, err = runDHCP(ctx, n.Name, cfg.Debug)
			return err
		})
		if err != nil {
			var names []string
			for t := range tried {
				names = append(names, t)
			}
			sort.Strings(names)
			b.fail("getting an address by DHCP (tried "+strings.Join(names, ", ")+")", err)
		}
		logf("DHCP: %s/%d from %s router=%s hostname=%s root-path=%s", ls.IP, maskBits(ls.Mask), ls.Server, ls.Router, orNone(ls.Hostname), orNone(ls.RootPath))
	}
	if err := setAddr(n.Name, ls.IP, ls.Mask); err != nil {
		b.fail("configuring "+n.Name, err)
	}
	if ls.Router != nil && !ls.Router.IsUnspecified() {
		if err := addDefaultRoute(n.Name, ls.Router); err != nil {
			logf("%v (continuing: the NFS server may be on the local subnet)", err)
		}
	}
	return n.Name, ls
}

func maskBits(m []byte) int {
	n := 0
	for _, b := range m {
		for ; b != 0; b <<= 1 {
			n++
		}
	}
	return n
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
