package bootsim

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/pin/tftp/v3"
)

// PXELinuxConfig is what a node takes from a pxelinux.cfg file: the
// default label's kernel and initrd (paths on the TFTP server).
type PXELinuxConfig struct {
	Kernel, Initrd, Append string
}

// ParsePXELinux reads the KERNEL (or LINUX), INITRD and APPEND lines of a
// pxelinux.cfg file; an initrd= on the APPEND line counts when there is
// no INITRD line. Keywords are case-insensitive, as in PXELINUX.
func ParsePXELinux(text string) (PXELinuxConfig, error) {
	var c PXELinuxConfig
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "KERNEL", "LINUX":
			c.Kernel = f[1]
		case "INITRD":
			c.Initrd = f[1]
		case "APPEND":
			c.Append = strings.Join(f[1:], " ")
			for _, a := range f[1:] {
				if v, ok := strings.CutPrefix(a, "initrd="); ok && c.Initrd == "" {
					c.Initrd = v
				}
			}
		}
	}
	if c.Kernel == "" || c.Initrd == "" {
		return c, fmt.Errorf("no KERNEL and INITRD in the PXELINUX configuration")
	}
	return c, nil
}

// tftpGet fetches name from server over TFTP (blksize 1408, what PXE
// stacks ask for), from local when set.
func tftpGet(cfg *Config, server, local net.IP, name string) ([]byte, error) {
	c, err := tftp.NewClient(net.JoinHostPort(server.String(), strconv.Itoa(cfg.TFTPPort)))
	if err != nil {
		return nil, err
	}
	if local != nil {
		c.SetLocalAddr(local.String())
	}
	c.SetBlockSize(1408)
	c.SetTimeout(cfg.Timeout / 5)
	c.SetRetries(5)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return nil, fmt.Errorf("TFTP %s: %w", name, err)
	}
	var buf bytes.Buffer
	if _, err := wt.WriteTo(&buf); err != nil {
		return buf.Bytes(), fmt.Errorf("TFTP %s: %w", name, err)
	}
	return buf.Bytes(), nil
}

// pxelinux is the rest of a PXELINUX boot: its configuration file, then
// the kernel and the initrd, all over TFTP. A kernel path of the form
// c/<commit>/kernel (git-onesis's) sets Commit.
func (r *Result) pxelinux(ctx context.Context, cfg *Config, server, local net.IP, mac net.HardwareAddr) error {
	var text []byte
	if err := r.retry(ctx, cfg, "pxelinux.cfg", func(ctx context.Context) (int64, error) {
		var err error
		text, err = tftpGet(cfg, server, local, "pxelinux.cfg/01-"+strings.ReplaceAll(mac.String(), ":", "-"))
		if err != nil {
			// PXELINUX falls back through its list of names to "default".
			text, err = tftpGet(cfg, server, local, "pxelinux.cfg/default")
		}
		return int64(len(text)), err
	}); err != nil {
		return err
	}
	pc, err := ParsePXELinux(string(text))
	if err != nil {
		return err
	}
	r.Script = Script{Kernel: pc.Kernel, Initrd: pc.Initrd, Cmdline: pc.Append}
	if parts := strings.Split(strings.TrimPrefix(pc.Kernel, "/"), "/"); len(parts) == 3 && parts[0] == "c" && isHex(parts[1]) {
		r.Commit = parts[1]
	}
	if err := r.retry(ctx, cfg, "kernel", func(ctx context.Context) (int64, error) {
		b, err := tftpGet(cfg, server, local, pc.Kernel)
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("TFTP %s: empty file", pc.Kernel)
		}
		r.KernelBlob = GitBlobID(b)
		return int64(len(b)), err
	}); err != nil {
		return err
	}
	return r.retry(ctx, cfg, "initrd", func(ctx context.Context) (int64, error) {
		b, err := tftpGet(cfg, server, local, pc.Initrd)
		if err == nil && len(b) == 0 {
			err = fmt.Errorf("TFTP %s: empty file", pc.Initrd)
		}
		sum := sha256.Sum256(b)
		r.InitrdSHA = hex.EncodeToString(sum[:])
		return int64(len(b)), err
	})
}
