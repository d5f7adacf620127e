package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/boot/cmdline"
	"github.com/onesis/git-onesis/boot/personality"
	"github.com/onesis/git-onesis/boot/sysimage"
)

// mountEarly mounts the API file systems the rest of the boot needs.
func mountEarly() error {
	for _, m := range []struct {
		fstype, dir, opts string
		flags             uintptr
	}{
		{"proc", "/proc", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"sysfs", "/sys", "", unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC},
		{"devtmpfs", "/dev", "mode=0755", unix.MS_NOSUID},
		{"tmpfs", "/run", "mode=0755", unix.MS_NOSUID | unix.MS_NODEV},
	} {
		if err := os.MkdirAll(m.dir, 0o755); err != nil {
			return err
		}
		if err := unix.Mount(m.fstype, m.dir, m.fstype, m.flags, m.opts); err != nil && !errors.Is(err, unix.EBUSY) {
			return fmt.Errorf("mounting %s on %s: %w", m.fstype, m.dir, err)
		}
	}
	return nil
}

// reopenConsole gives PID 1 a console on fds 0-2 when the kernel could
// not (no /dev/console in the archive before devtmpfs was mounted).
func reopenConsole() {
	if _, err := unix.FcntlInt(1, unix.F_GETFD, 0); err == nil {
		return
	}
	fd, err := unix.Open("/dev/console", unix.O_RDWR, 0)
	if err != nil {
		return
	}
	for i := 0; i < 3; i++ {
		unix.Dup3(fd, i, 0)
	}
	if fd > 2 {
		unix.Close(fd)
	}
}

// mountRoot mounts the NFS root on newRoot with raw mount(2) and the
// kernel's text options, retrying as configured.
func mountRoot(b *booter, server string, r *cmdline.NFSRoot) error {
	if err := os.MkdirAll(newRoot, 0o755); err != nil {
		return err
	}
	opts := r.MountOptions(server)
	var flags uintptr = unix.MS_RDONLY
	mode := "read-only"
	if b.cfg.ReadWrite {
		flags, mode = 0, "read-write"
	}
	src := server + ":" + r.Path
	logf("mounting %s %s (nfs %s)", src, mode, opts)
	return b.retry("mounting "+src, func() error {
		err := unix.Mount(src, newRoot, "nfs", flags, opts)
		if err != nil {
			return fmt.Errorf("mount(2) nfs %s with %s: %w", src, opts, err)
		}
		return nil
	})
}

// applyPersonality builds root/ram for host from root's etc/sysimage.conf:
// it mounts a tmpfs on root/ram (when mount is set) and executes the plan
// the personality engine makes. An image without etc/sysimage.conf gets
// no /ram. It returns the node's class.
func applyPersonality(root, host, classOverride string, mount bool) (string, error) {
	r, err := os.OpenRoot(root)
	if err != nil {
		return "", err
	}
	defer r.Close()
	open := func(p string) ([]byte, error) {
		rel, err := personality.Rel(p)
		if err != nil {
			return nil, err
		}
		return r.ReadFile(rel)
	}
	cfg, err := sysimage.Parse(open, "/etc/sysimage.conf")
	if errors.Is(err, fs.ErrNotExist) {
		logf("the image has no etc/sysimage.conf: no /ram personality")
		return classOverride, nil
	}
	if err != nil {
		return "", err
	}
	for _, w := range cfg.Warnings {
		logf("warning: %s", w.String())
	}
	img, err := personality.OpenDir(root)
	if err != nil {
		return "", err
	}
	defer img.Close()
	plan, err := personality.Build(img, cfg, host, classOverride)
	if err != nil {
		return "", err
	}
	for _, w := range plan.Warnings {
		logf("warning: %s", w)
	}
	ram := filepath.Join(root, strings.TrimPrefix(personality.RamDir, "/"))
	fi, err := os.Lstat(ram)
	if err != nil || !fi.IsDir() {
		return "", fmt.Errorf("the image has no directory %s to mount the tmpfs on (run 'git onesis sysimage' on the image and commit)", personality.RamDir)
	}
	// The tmpfs is mounted before Execute, not through ExecOptions.Mount:
	// Execute opens the ram directory first, and a mount made after that
	// would not be under the opened directory.
	if mount {
		for _, s := range plan.Steps {
			if s.Kind != personality.Mount {
				continue
			}
			if err := unix.Mount("tmpfs", ram, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, s.Options); err != nil {
				return "", fmt.Errorf("mounting tmpfs (%s) on %s: %w", s.Options, personality.RamDir, err)
			}
			break
		}
	}
	var o personality.ExecOptions
	if debug {
		o.Log = func(s personality.Step) { logf("/ram: %s", s.String()) }
	}
	if err := personality.Execute(plan, root, ram, o); err != nil {
		return "", err
	}
	logf("/ram: %d steps for class %s", len(plan.Steps), orNone(plan.Class))
	return plan.Class, nil
}

// switchRoot does what switch_root(8) does: move the API mounts into the
// new root, delete the initramfs's files (they would pin memory), make
// the new root "/" and exec its init.
func switchRoot(root, init string) error {
	for _, d := range []string{"/dev", "/proc", "/sys", "/run"} {
		target := root + d
		if fi, err := os.Lstat(target); err == nil && fi.IsDir() {
			if err := unix.Mount(d, target, "", unix.MS_MOVE, ""); err != nil {
				logf("moving %s into the new root: %v; unmounting it", d, err)
				unix.Unmount(d, unix.MNT_DETACH)
			}
		} else {
			unix.Unmount(d, unix.MNT_DETACH)
		}
	}
	var st unix.Stat_t
	if err := unix.Stat("/", &st); err == nil {
		deleteTree("/", st.Dev, root)
	}
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.Mount(".", "/", "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("moving %s to /: %w", root, err)
	}
	if err := unix.Chroot("."); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	env := []string{"HOME=/", "TERM=linux", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	tried := []string{init}
	for _, c := range []string{"/sbin/init", "/etc/init", "/bin/init", "/bin/sh"} {
		if c != init {
			tried = append(tried, c)
		}
	}
	var errs []string
	for _, c := range tried {
		logf("starting %s on the new root", c)
		err := unix.Exec(c, append([]string{c}, os.Args[1:]...), env)
		errs = append(errs, fmt.Sprintf("%s: %v", c, err))
	}
	return errors.New("no init could be started: " + strings.Join(errs, "; "))
}

// deleteTree removes everything under dir on device dev, skipping other
// file systems (mount points) and skip.
func deleteTree(dir string, dev uint64, skip string) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		p := filepath.Join(dir, e.Name())
		if p == skip {
			continue
		}
		var st unix.Stat_t
		if unix.Lstat(p, &st) != nil || st.Dev != dev {
			continue
		}
		if st.Mode&unix.S_IFMT == unix.S_IFDIR {
			deleteTree(p, dev, skip)
			unix.Rmdir(p)
		} else {
			unix.Unlink(p)
		}
	}
}

// personalityOnly is the mode for images that boot with their own
// initramfs: it builds /ram under the already-mounted root.
func personalityOnly(args []string) int {
	fl := flag.NewFlagSet("onesis-init --personality-only", flag.ContinueOnError)
	root := fl.String("root", "/root", "the mounted image (initramfs-tools: ${rootmnt})")
	host := fl.String("host", "", "the node's hostname (default: hostname=, DHCP, onesis.node=, uname)")
	class := fl.String("classname", "", "override the class (default: classname= on the kernel command line)")
	noMount := fl.Bool("no-mount", false, "do not mount the tmpfs (fill the existing <root>/ram)")
	if err := fl.Parse(args); err != nil {
		return 2
	}
	var cfg *cmdline.Config
	if raw, err := os.ReadFile("/proc/cmdline"); err == nil {
		cfg, _ = cmdline.Parse(string(raw))
	}
	if cfg == nil {
		cfg = &cmdline.Config{}
	}
	if *class == "" {
		*class = cfg.Class
	}
	if *host == "" {
		*host = personalityHost(cfg, "/run")
	}
	if *host == "" {
		logf("FAILED: building /ram: no hostname (pass --host, hostname= or onesis.node=)")
		return 1
	}
	if err := cmdline.CheckHostname(*host); err != nil {
		logf("FAILED: building /ram: %v", err)
		return 1
	}
	c, err := applyPersonality(*root, *host, *class, !*noMount)
	if err != nil {
		logf("FAILED: building /ram under %s for %s: %v", *root, *host, err)
		return 1
	}
	logf("hostname=%s class=%s commit=%s", *host, orNone(c), orNone(cfg.Commit))
	return 0
}

// personalityHost finds the hostname in personality-only mode:
// hostname=, then what klibc ipconfig wrote to /run/net-*.conf (DHCP
// option 12), then onesis.node=, then the kernel's hostname.
func personalityHost(cfg *cmdline.Config, runDir string) string {
	if cfg.Hostname != "" {
		return cfg.Hostname
	}
	confs, _ := filepath.Glob(filepath.Join(runDir, "net-*.conf"))
	for _, f := range confs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "HOSTNAME="); ok {
				if v = strings.Trim(v, "'\" "); v != "" && cmdline.CheckHostname(v) == nil {
					return v
				}
			}
		}
	}
	if cfg.Node != "" {
		return cfg.Node
	}
	if h, err := os.Hostname(); err == nil && h != "(none)" && h != "localhost" {
		return h
	}
	return ""
}
