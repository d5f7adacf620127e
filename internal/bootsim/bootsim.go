// Package bootsim simulates one network-booting node the way iPXE does it,
// with the client sides of the libraries serve uses: DHCP (insomniacslk
// nclient4, first as a BIOS PXE ROM, then again as iPXE with user class
// "iPXE"), the iPXE binary over TFTP (pin/tftp, blksize 1408), the node's
// script over HTTP, and the kernel and initramfs the script names, checked
// against Content-Length and the ETag. It is a load and fault generator for
// tests and benchmarks, not a boot loader: nothing is executed.
package bootsim

import (
	"bytes"
	"context"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/nclient4"
	"github.com/insomniacslk/dhcp/iana"
	"github.com/pin/tftp/v3"
)

// Config describes one simulated node.
type Config struct {
	// Iface is the client's network interface; DHCP uses a raw socket on it.
	Iface string
	// MAC is the client hardware address (default: Iface's own).
	MAC net.HardwareAddr
	// BindLease binds the TFTP and HTTP sockets to the leased address, so a
	// test with many client interfaces in one namespace sends each node's
	// traffic from its own address (the address must be configured on
	// Iface, with a route or rule that sends it out of Iface).
	BindLease bool
	// TFTPPort is the server's TFTP port (default 69).
	TFTPPort int
	// SkipTFTP leaves out the iPXE binary download.
	SkipTFTP bool
	// Timeout bounds one attempt of one stage (default 10 s; DHCP uses it
	// per exchange, TFTP per packet round trip divided by 5, HTTP per fetch).
	Timeout time.Duration
	// FileTimeout bounds one attempt of a kernel or initramfs fetch
	// (default 2 minutes).
	FileTimeout time.Duration
	// Attempts is how often each stage is tried before the boot fails
	// (default 6).
	Attempts int
	// Backoff is the wait before the second attempt; it doubles up to 8 s
	// (default 250 ms).
	Backoff time.Duration
	// Logf, if set, receives a line for every failed attempt.
	Logf func(format string, args ...any)
	// Relay, if set, does the DHCP exchanges through a simulated relay
	// agent shared by many nodes (NewRelay) instead of a raw socket on
	// Iface; MAC is then required and Iface unused.
	Relay *Relay
	// PXELinux boots as PXELINUX does, all over TFTP: after the first DHCP
	// answer and its boot file, pxelinux.cfg/01-<mac> (else
	// pxelinux.cfg/default), then the KERNEL and INITRD it names. There is
	// no second DHCP round, script or HTTP.
	PXELinux bool
	// Configure, if set, is called once with the first DHCP answer's
	// address, subnet mask and router (nil when the answer has none),
	// before any TFTP or HTTP traffic, as firmware configures its
	// interface from the lease. A test whose nodes sit behind a router
	// installs the address and a route through that router here. An error
	// fails the boot.
	Configure func(ip net.IP, mask net.IPMask, router net.IP) error
}

// Stage is the outcome of one step of a boot.
type Stage struct {
	Name     string        // dhcp-pxe, tftp, dhcp-ipxe, script, kernel, initrd
	Took     time.Duration // from the first attempt to success
	Attempts int
	Bytes    int64
}

// Result is what one simulated boot got.
type Result struct {
	MAC        string
	IP         net.IP // leased address
	BootFile   string // first-round boot file (the iPXE binary)
	ScriptURL  string // second-round boot file, ${mac:hexhyp} expanded
	Script     Script
	Commit     string // from the script's kernel URL /c/<commit>/kernel
	KernelBlob string // git blob id of the kernel bytes received
	KernelETag string
	InitrdSHA  string // sha256 of the initramfs bytes received
	InitrdETag string
	Stages     []Stage
	Total      time.Duration
}

// Script is what bootsim reads from an iPXE script.
type Script struct {
	Kernel  string // kernel URL
	Cmdline string // the rest of the kernel line
	Initrd  string // initrd URL
}

// ParseScript reads the kernel and initrd lines of an iPXE script as
// serve writes them. It needs "#!ipxe" first, exactly one kernel and one
// initrd line, and a boot line.
func ParseScript(text string) (Script, error) {
	var s Script
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) != "#!ipxe" {
		return s, errors.New("not an iPXE script: the first line is not #!ipxe")
	}
	boot := false
	for i, l := range lines[1:] {
		f := strings.Fields(l)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch f[0] {
		case "kernel", "chain", "imgexec":
			for len(f) > 1 && strings.HasPrefix(f[1], "--") {
				f = append(f[:1], f[2:]...)
			}
			if len(f) < 2 {
				return s, fmt.Errorf("line %d: %s without a URL", i+2, f[0])
			}
			if s.Kernel != "" {
				return s, fmt.Errorf("line %d: a second kernel line", i+2)
			}
			s.Kernel, s.Cmdline = f[1], strings.Join(f[2:], " ")
		case "initrd", "module":
			args := f[1:]
			for len(args) > 0 && strings.HasPrefix(args[0], "--") {
				if args[0] == "--name" || args[0] == "-n" {
					args = args[1:]
				}
				if len(args) > 0 {
					args = args[1:]
				}
			}
			if len(args) == 0 {
				return s, fmt.Errorf("line %d: initrd without a URL", i+2)
			}
			if s.Initrd != "" {
				return s, fmt.Errorf("line %d: a second initrd line", i+2)
			}
			s.Initrd = args[0]
		case "boot":
			boot = true
		}
	}
	switch {
	case s.Kernel == "":
		return s, errors.New("the script has no kernel line")
	case s.Initrd == "":
		return s, errors.New("the script has no initrd line")
	case !boot:
		return s, errors.New("the script has no boot line")
	}
	return s, nil
}

// CommitOf returns the commit named by a serve artifact URL
// (http://host/c/<commit>/kernel).
func CommitOf(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	parts := strings.Split(strings.TrimPrefix(u.Path, "/"), "/")
	if len(parts) != 3 || parts[0] != "c" || !isHex(parts[1]) || (len(parts[1]) != 40 && len(parts[1]) != 64) {
		return "", fmt.Errorf("%s is not a /c/<commit>/<file> URL", rawURL)
	}
	return parts[1], nil
}

func isHex(s string) bool {
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

// GitBlobID is the git object id of data as a blob.
func GitBlobID(data []byte) string {
	h := sha1.New()
	fmt.Fprintf(h, "blob %d\x00", len(data))
	h.Write(data)
	return hex.EncodeToString(h.Sum(nil))
}

func (c *Config) defaults() {
	if c.TFTPPort == 0 {
		c.TFTPPort = 69
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.FileTimeout <= 0 {
		c.FileTimeout = 2 * time.Minute
	}
	if c.Attempts <= 0 {
		c.Attempts = 6
	}
	if c.Backoff <= 0 {
		c.Backoff = 250 * time.Millisecond
	}
}

// retry runs fn up to cfg.Attempts times with a doubling backoff and
// records the stage.
func (r *Result) retry(ctx context.Context, cfg *Config, name string, fn func(ctx context.Context) (int64, error)) error {
	start := time.Now()
	wait := cfg.Backoff
	var err error
	for a := 1; a <= cfg.Attempts; a++ {
		var n int64
		if n, err = fn(ctx); err == nil {
			r.Stages = append(r.Stages, Stage{Name: name, Took: time.Since(start), Attempts: a, Bytes: n})
			return nil
		}
		if cfg.Logf != nil {
			cfg.Logf("%s %s attempt %d/%d: %v", r.MAC, name, a, cfg.Attempts, err)
		}
		if a == cfg.Attempts {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: %w (last error: %v)", name, ctx.Err(), err)
		case <-time.After(wait):
		}
		wait = min(2*wait, 8*time.Second)
	}
	return fmt.Errorf("%s failed %d times, last: %w", name, cfg.Attempts, err)
}

// Boot runs one simulated boot. ctx bounds the whole boot.
func Boot(ctx context.Context, cfg Config) (*Result, error) {
	cfg.defaults()
	start := time.Now()
	mac := cfg.MAC
	var err error
	var dc *nclient4.Client
	if cfg.Relay == nil {
		ifc, err := net.InterfaceByName(cfg.Iface)
		if err != nil {
			return nil, fmt.Errorf("client interface %q: %w", cfg.Iface, err)
		}
		if mac == nil {
			mac = ifc.HardwareAddr
		}
		dc, err = nclient4.New(cfg.Iface, nclient4.WithHWAddr(mac), nclient4.WithTimeout(cfg.Timeout/4), nclient4.WithRetry(4))
		if err != nil {
			return nil, fmt.Errorf("DHCP client on %s: %w", cfg.Iface, err)
		}
		defer dc.Close()
	} else if mac == nil {
		return nil, errors.New("a node behind a Relay needs its MAC")
	}
	r := &Result{MAC: mac.String()}
	pxe := []dhcpv4.Modifier{
		dhcpv4.WithOption(dhcpv4.OptClassIdentifier("PXEClient:Arch:00000:UNDI:002001")),
		dhcpv4.WithOption(dhcpv4.OptClientArch(iana.INTEL_X86PC)),
		dhcpv4.WithRequestedOptions(dhcpv4.OptionTFTPServerName, dhcpv4.OptionBootfileName),
	}
	var ack *dhcpv4.DHCPv4
	dhcp := func(mods ...dhcpv4.Modifier) func(context.Context) (int64, error) {
		return func(ctx context.Context) (int64, error) {
			ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
			defer cancel()
			if cfg.Relay != nil {
				a, err := cfg.Relay.Request(ctx, mac, mods...)
				if err != nil {
					return 0, err
				}
				ack = a
				return 0, nil
			}
			l, err := dc.Request(ctx, mods...)
			if err != nil {
				return 0, err
			}
			ack = l.ACK
			return 0, nil
		}
	}
	if err := r.retry(ctx, &cfg, "dhcp-pxe", dhcp(pxe...)); err != nil {
		return r, err
	}
	r.IP = ack.YourIPAddr
	r.BootFile = ack.BootFileName
	if r.BootFile == "" {
		// Option 67, where some servers (dnsmasq when it is asked for
		// it) put the name instead of the file field; PXE ROMs read both.
		r.BootFile = ack.BootFileNameOption()
	}
	server := ack.ServerIPAddr
	if server == nil || server.IsUnspecified() {
		server = ack.ServerIdentifier()
	}
	if server == nil {
		return r, errors.New("the DHCP answer names no server (siaddr and option 54 are empty)")
	}
	if r.BootFile == "" {
		return r, errors.New("the first DHCP answer has no boot file")
	}
	if cfg.Configure != nil {
		var router net.IP
		if rs := ack.Router(); len(rs) > 0 {
			router = rs[0]
		}
		if err := cfg.Configure(r.IP, ack.SubnetMask(), router); err != nil {
			return r, fmt.Errorf("configuring the leased address %s: %w", r.IP, err)
		}
	}
	var local net.IP
	if cfg.BindLease {
		local = r.IP
	}

	if !cfg.SkipTFTP {
		err := r.retry(ctx, &cfg, "tftp", func(ctx context.Context) (int64, error) {
			c, err := tftp.NewClient(net.JoinHostPort(server.String(), strconv.Itoa(cfg.TFTPPort)))
			if err != nil {
				return 0, err
			}
			if local != nil {
				c.SetLocalAddr(local.String())
			}
			c.SetBlockSize(1408)
			c.SetTimeout(cfg.Timeout / 5)
			c.SetRetries(5)
			wt, err := c.Receive(r.BootFile, "octet")
			if err != nil {
				return 0, err
			}
			var buf bytes.Buffer
			n, err := wt.WriteTo(&buf)
			if err != nil {
				return n, err
			}
			if n == 0 {
				return 0, fmt.Errorf("TFTP %s: empty file", r.BootFile)
			}
			return n, nil
		})
		if err != nil {
			return r, err
		}
	}

	if cfg.PXELinux {
		if err := r.pxelinux(ctx, &cfg, server, local, mac); err != nil {
			return r, err
		}
		r.Total = time.Since(start)
		return r, nil
	}

	if err := r.retry(ctx, &cfg, "dhcp-ipxe", dhcp(append(pxe, dhcpv4.WithUserClass("iPXE", false))...)); err != nil {
		return r, err
	}
	if !r.IP.Equal(ack.YourIPAddr) {
		return r, fmt.Errorf("the second DHCP answer gave %s, the first %s", ack.YourIPAddr, r.IP)
	}
	r.ScriptURL = strings.ReplaceAll(ack.BootFileName, "${mac:hexhyp}", strings.ReplaceAll(mac.String(), ":", "-"))
	if !strings.HasPrefix(r.ScriptURL, "http://") {
		return r, fmt.Errorf("the iPXE DHCP answer has boot file %q, not an http:// script", ack.BootFileName)
	}

	hc := httpClient(local)
	defer hc.CloseIdleConnections()
	var body []byte
	if err := r.retry(ctx, &cfg, "script", func(ctx context.Context) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
		defer cancel()
		b, _, err := get(ctx, hc, r.ScriptURL)
		body = b
		return int64(len(b)), err
	}); err != nil {
		return r, err
	}
	if r.Script, err = ParseScript(string(body)); err != nil {
		return r, fmt.Errorf("the script from %s: %w", r.ScriptURL, err)
	}
	if r.Commit, err = CommitOf(r.Script.Kernel); err != nil {
		return r, err
	}
	if c, err := CommitOf(r.Script.Initrd); err != nil || c != r.Commit {
		return r, fmt.Errorf("the script's initrd %s is not of commit %s", r.Script.Initrd, r.Commit)
	}
	if !strings.Contains(r.Script.Cmdline, "onesis.commit="+r.Commit) {
		return r, fmt.Errorf("the script's kernel command line does not say onesis.commit=%s", r.Commit)
	}

	if err := r.retry(ctx, &cfg, "kernel", func(ctx context.Context) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.FileTimeout)
		defer cancel()
		b, etag, err := get(ctx, hc, r.Script.Kernel)
		if err != nil {
			return int64(len(b)), err
		}
		r.KernelBlob, r.KernelETag = GitBlobID(b), etag
		if etag != "" && etag != r.KernelBlob {
			return int64(len(b)), fmt.Errorf("kernel: ETag %s but the bytes are blob %s", etag, r.KernelBlob)
		}
		return int64(len(b)), nil
	}); err != nil {
		return r, err
	}
	if err := r.retry(ctx, &cfg, "initrd", func(ctx context.Context) (int64, error) {
		ctx, cancel := context.WithTimeout(ctx, cfg.FileTimeout)
		defer cancel()
		b, etag, err := get(ctx, hc, r.Script.Initrd)
		if err != nil {
			return int64(len(b)), err
		}
		sum := sha256.Sum256(b)
		r.InitrdSHA, r.InitrdETag = hex.EncodeToString(sum[:]), etag
		if etag != "" && etag != r.InitrdSHA {
			return int64(len(b)), fmt.Errorf("initrd: ETag %s but the bytes hash to %s", etag, r.InitrdSHA)
		}
		return int64(len(b)), nil
	}); err != nil {
		return r, err
	}
	r.Total = time.Since(start)
	return r, nil
}

// httpClient returns a client whose connections start from local (nil:
// the kernel's choice).
func httpClient(local net.IP) *http.Client {
	d := &net.Dialer{Timeout: 10 * time.Second}
	if local != nil {
		d.LocalAddr = &net.TCPAddr{IP: local}
	}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 2}}
}

// get fetches u and checks the status and Content-Length; it returns the
// body and the unquoted ETag.
func get(ctx context.Context, hc *http.Client, u string) ([]byte, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, "", fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return b, "", fmt.Errorf("GET %s: after %d bytes: %w", u, len(b), err)
	}
	if resp.ContentLength >= 0 && int64(len(b)) != resp.ContentLength {
		return b, "", fmt.Errorf("GET %s: %d bytes, Content-Length %d", u, len(b), resp.ContentLength)
	}
	etag := strings.Trim(resp.Header.Get("ETag"), `"`)
	return b, etag, nil
}
