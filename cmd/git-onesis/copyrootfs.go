package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"
)

var copyRootfsCmd = &cli.Command{
	Name:      "copy-rootfs",
	Usage:     "copy a live root filesystem into a new image directory with rsync",
	UsageText: "git onesis copy-rootfs [-r HOST] [--dry-run] [SRC] DEST",
	Description: "Copies SRC (default /) into DEST with rsync -aHAX --numeric-ids --one-file-system,\n" +
		"leaving out the contents of /proc, /sys, /dev/pts, /run, /tmp and /var/tmp and\n" +
		"of every other filesystem mounted below SRC (read from /proc/self/mountinfo;\n" +
		"the mount points themselves are kept, empty). With -r HOST the source is\n" +
		"root@HOST:SRC over ssh. It lists what it excluded. DEST is then ready for\n" +
		"'git onesis init'. As in oneSIS, a dynamic /dev is not copied: populate a\n" +
		"static /dev in the image.",
	Flags: []cli.Flag{
		&cli.StringFlag{Name: "remote", Aliases: []string{"r"}, Usage: "copy from `HOST` over ssh, as root"},
		&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "print the rsync command and the excludes; copy nothing"},
		quietFlag,
	},
	Action: runCopyRootfs,
}

func init() { register(copyRootfsCmd) }

// standardExcludes are emptied, never copied, on every live system.
var standardExcludes = []struct{ dir, why string }{
	{"/proc", "kernel process filesystem"},
	{"/sys", "kernel sysfs"},
	{"/dev/pts", "pseudo-terminals"},
	{"/run", "runtime state"},
	{"/tmp", "temporary files"},
	{"/var/tmp", "temporary files"},
}

// exclude is one rsync exclude and the reason for it.
type exclude struct{ pattern, why string }

func runCopyRootfs(c *cli.Context) error {
	args := c.Args().Slice()
	src, dest := "/", ""
	switch len(args) {
	case 1:
		dest = args[0]
	case 2:
		src, dest = args[0], args[1]
	default:
		return usageErr("copy-rootfs takes [SRC] DEST")
	}
	host := c.String("remote")
	w, ew := c.App.Writer, c.App.ErrWriter
	if host == "" {
		abs, err := filepath.Abs(src)
		if err != nil {
			return fatal(err)
		}
		if abs, err = filepath.EvalSymlinks(abs); err != nil {
			return fatal(fmt.Errorf("source %s: %w", src, err))
		}
		if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
			return fatal(fmt.Errorf("source %s is not a directory", src))
		}
		src = abs
	} else if !filepath.IsAbs(src) {
		return usageErr("with -r, SRC must be an absolute path on %s", host)
	}
	destAbs, err := filepath.Abs(dest)
	if err != nil {
		return fatal(err)
	}

	var mountinfo []byte
	if host == "" {
		mountinfo, err = os.ReadFile("/proc/self/mountinfo")
	} else {
		cmd := exec.Command("ssh", "-o", "BatchMode=yes", "root@"+host, "cat", "/proc/self/mountinfo")
		mountinfo, err = cmd.Output()
	}
	if err != nil {
		fmt.Fprintf(ew, "warning: cannot read the mount table (%v); relying on --one-file-system alone\n", err)
	}
	excl := excludesFor(src, parseMountinfo(mountinfo))
	if host == "" {
		if rel, ok := under(destAbs, src); ok && rel != "/" {
			excl = append(excl, exclude{rel, "the destination itself"})
		}
	}

	from := strings.TrimSuffix(src, "/") + "/"
	if host != "" {
		from = "root@" + host + ":" + from
	}
	rsyncArgs := []string{"-aHAX", "--numeric-ids", "--one-file-system"}
	if host != "" {
		rsyncArgs = append(rsyncArgs, "-e", "ssh")
	}
	for _, e := range excl {
		rsyncArgs = append(rsyncArgs, "--exclude="+e.pattern)
	}
	rsyncArgs = append(rsyncArgs, from, strings.TrimSuffix(destAbs, "/")+"/")

	if !c.Bool("quiet") || c.Bool("dry-run") {
		fmt.Fprintln(w, "Excluded (anchored at the source):")
		for _, e := range excl {
			fmt.Fprintf(w, "  %-24s %s\n", e.pattern, e.why)
		}
	}
	if c.Bool("dry-run") {
		fmt.Fprintln(w, "rsync "+strings.Join(quoteArgs(rsyncArgs), " "))
		return nil
	}
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		return fatal(errors.New("rsync is not installed; install it (apt-get install rsync) and try again"))
	}
	if err := os.MkdirAll(destAbs, 0o755); err != nil {
		return fatal(fmt.Errorf("creating %s: %w", dest, err))
	}
	cmd := exec.Command(rsync, rsyncArgs...)
	cmd.Stdout, cmd.Stderr = w, ew
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() == 24 {
			fmt.Fprintln(ew, "warning: some files vanished while they were copied (normal on a live system)")
		} else {
			return fatal(fmt.Errorf("rsync failed: %w", err))
		}
	}
	if !c.Bool("quiet") {
		fmt.Fprintf(w, "Copied into %s. Next: cd %s && git onesis init --commit\n", destAbs, destAbs)
	}
	return nil
}

// excludesFor lists the standard excludes and the contents of every mount
// point strictly below src that they do not already cover.
func excludesFor(src string, mounts []string) []exclude {
	var out []exclude
	for _, s := range standardExcludes {
		out = append(out, exclude{s.dir + "/*", s.why})
	}
	covered := func(rel string) bool {
		for _, s := range standardExcludes {
			if rel == s.dir || strings.HasPrefix(rel, s.dir+"/") {
				return true
			}
		}
		return false
	}
	seen := map[string]bool{}
	sort.Strings(mounts)
	for _, m := range mounts {
		rel, ok := under(m, src)
		if !ok || rel == "/" || covered(rel) || seen[rel] {
			continue
		}
		// A mount inside an excluded mount is excluded already.
		inner := false
		for p := range seen {
			if strings.HasPrefix(rel, p+"/") {
				inner = true
			}
		}
		seen[rel] = true
		if !inner {
			out = append(out, exclude{rel + "/*", "a mounted filesystem"})
		}
	}
	return out
}

// under returns p relative to root as an anchored rsync path ("/a/b"), and
// whether p is root or below it.
func under(p, root string) (string, bool) {
	p, root = filepath.Clean(p), filepath.Clean(root)
	if p == root {
		return "/", true
	}
	if root == "/" {
		return p, true
	}
	if strings.HasPrefix(p, root+"/") {
		return p[len(root):], true
	}
	return "", false
}

// parseMountinfo returns the mount points in a /proc/self/mountinfo text.
func parseMountinfo(b []byte) []string {
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		out = append(out, unescapeMount(f[4]))
	}
	return out
}

// unescapeMount undoes the kernel's octal escapes (\040 for a space).
func unescapeMount(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

// quoteArgs shell-quotes arguments for display.
func quoteArgs(args []string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		if a != "" && !strings.ContainsAny(a, " \t\n'\"\\$*?[]{}()<>|&;#~") {
			out[i] = a
			continue
		}
		out[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return out
}
