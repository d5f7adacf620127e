// Command bootfetch is the load generator and the git-onesis servers for
// `make bench-boot` (internal/bench/bootbench.sh): N simulated nodes
// fetching a kernel and an initrd at once over TFTP or HTTP.
//
// It is a benchmark tool, not part of git-onesis; the script runs every
// subcommand inside network namespaces it creates (`ip netns exec`).
//
//	bootfetch tftp-server -addr IP:PORT [-iface IF] -kernel FILE -initrd FILE
//	bootfetch http-server -addr IP:PORT -kernel FILE -initrd FILE
//	bootfetch fetch -proto tftp|http -server IP:PORT -n N [-blksize B] ...
//	bootfetch report < results.jsonl
//
// The servers serve the kernel as "vmlinuz" and the initrd as "initrd.img"
// (TFTP), or as /c/<commit>/kernel and /c/<commit>/initrd (HTTP, through
// boot/httpboot's handler, as `git onesis serve` does, with the artifacts
// read from the two files instead of a git repository). They run until
// SIGTERM or SIGINT.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	ptftp "github.com/pin/tftp/v3"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/boot/tftp"
)

// benchCommit is the (made-up) commit the HTTP server serves under /c/.
const benchCommit = "0123456789abcdef0123456789abcdef01234567"

// Names the files have on the TFTP servers (dnsmasq and tftpd-hpa serve a
// directory holding them under these names).
const (
	kernelName = "vmlinuz"
	initrdName = "initrd.img"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "tftp-server":
		err = tftpServer(os.Args[2:])
	case "http-server":
		err = httpServer(os.Args[2:])
	case "fetch":
		err = fetch(os.Args[2:])
	case "report":
		var rs []Result
		if rs, err = readResults(os.Stdin); err == nil {
			renderMarkdown(os.Stdout, rs)
		}
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "bootfetch:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: bootfetch tftp-server|http-server|fetch|report [flags] (see the package doc)")
	os.Exit(2)
}

func logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// waitSignal returns a context cancelled by SIGTERM or SIGINT.
func waitSignal() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
}

func tftpServer(args []string) error {
	fs := flag.NewFlagSet("tftp-server", flag.ExitOnError)
	addr := fs.String("addr", "", "listen address IP:PORT")
	iface := fs.String("iface", "", "interface to bind to (SO_BINDTODEVICE), as serve does")
	kernel := fs.String("kernel", "", "kernel file")
	initrd := fs.String("initrd", "", "initrd file")
	fs.Parse(args)
	srv, err := tftp.New(tftp.Config{Addr: *addr, Iface: *iface, Logger: logger(),
		Files: map[string]string{kernelName: *kernel, initrdName: *initrd}})
	if err != nil {
		return err
	}
	ctx, stop := waitSignal()
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve() }()
	fmt.Fprintf(os.Stderr, "bootfetch: git-onesis TFTP listening on %s\n", srv.Addr())
	select {
	case <-ctx.Done():
		srv.Close()
		return nil
	case err := <-errc:
		return err
	}
}

// fileArtifacts serves two on-disk files as every commit's kernel and
// initrd, as an *os.File behind http.ServeContent (what serve's git-backed
// cache hands to httpboot too).
type fileArtifacts struct{ kernel, initrd string }

func openBlob(p string) (*httpboot.Blob, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &httpboot.Blob{Content: f, Size: st.Size(), Hash: "bench-" + st.Name(), ModTime: st.ModTime()}, nil
}

func (a fileArtifacts) Kernel(context.Context, string) (*httpboot.Blob, error) {
	return openBlob(a.kernel)
}
func (a fileArtifacts) Initrd(context.Context, string) (*httpboot.Blob, error) {
	return openBlob(a.initrd)
}

// noResolver: the benchmark never asks for boot scripts.
type noResolver struct{}

func (noResolver) Resolve(*inventory.Node) (httpboot.Resolution, error) {
	return httpboot.Resolution{}, errors.New("bootfetch serves no boot scripts")
}

// newHTTPHandler is boot/httpboot's handler serving kernel and initrd as
// benchCommit's artifacts.
func newHTTPHandler(addr, kernel, initrd string) (http.Handler, error) {
	inv := inventory.New()
	return httpboot.New(httpboot.Config{
		BaseURL: "http://" + addr, NFSServer: netip.MustParseAddr("127.0.0.1"),
		Inventory: func() *inventory.Inventory { return inv }, Resolver: noResolver{},
		Artifacts: fileArtifacts{kernel, initrd},
		Servable:  func(c string) bool { return c == benchCommit },
		Logger:    logger(),
	})
}

func httpServer(args []string) error {
	fs := flag.NewFlagSet("http-server", flag.ExitOnError)
	addr := fs.String("addr", "", "listen address IP:PORT")
	kernel := fs.String("kernel", "", "kernel file")
	initrd := fs.String("initrd", "", "initrd file")
	fs.Parse(args)
	h, err := newHTTPHandler(*addr, *kernel, *initrd)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("http: cannot listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := waitSignal()
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	fmt.Fprintf(os.Stderr, "bootfetch: git-onesis HTTP listening on %s\n", l.Addr())
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	case err := <-errc:
		return err
	}
}

// countWriter counts bytes and discards them.
type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// fetchTFTP gets one file with pin/tftp's client, as a PXE ROM would
// (octet mode, the given blksize, tsize asked for).
func fetchTFTP(server, name string, blksize int) (int64, error) {
	c, err := ptftp.NewClient(server)
	if err != nil {
		return 0, err
	}
	if blksize != 512 {
		c.SetBlockSize(blksize)
	}
	c.RequestTSize(true)
	c.SetTimeout(2 * time.Second)
	c.SetRetries(5)
	wt, err := c.Receive(name, "octet")
	if err != nil {
		return 0, fmt.Errorf("tftp %s: %w", name, err)
	}
	var cw countWriter
	if _, err := wt.WriteTo(&cw); err != nil {
		return cw.n, fmt.Errorf("tftp %s: %w", name, err)
	}
	return cw.n, nil
}

// fetchHTTP gets one file over cl (one connection per simulated node,
// kept alive between its two requests, as iPXE does).
func fetchHTTP(ctx context.Context, cl *http.Client, url string) (int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err
	}
	resp, err := cl.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil && resp.ContentLength >= 0 && n != resp.ContentLength {
		err = fmt.Errorf("GET %s: got %d of %d bytes", url, n, resp.ContentLength)
	}
	return n, err
}

func fetch(args []string) error {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	proto := fs.String("proto", "tftp", "tftp or http")
	server := fs.String("server", "", "server IP:PORT")
	name := fs.String("name", "", "server name for the results (git-onesis, dnsmasq, tftpd-hpa)")
	n := fs.Int("n", 10, "concurrent clients")
	blksize := fs.Int("blksize", 1408, "TFTP block size to ask for (512 = no option)")
	kernelSize := fs.Int64("kernel-size", -1, "expected kernel size (-1 = do not check)")
	initrdSize := fs.Int64("initrd-size", -1, "expected initrd size (-1 = do not check)")
	timeout := fs.Duration("timeout", 5*time.Minute, "deadline for the whole run")
	fs.Parse(args)
	if *n < 1 || *n > 1000 {
		return fmt.Errorf("-n %d: want 1..1000 clients", *n)
	}
	if *proto != "tftp" && *proto != "http" {
		return fmt.Errorf("-proto %q: want tftp or http", *proto)
	}
	res := run(*proto, *server, *n, *blksize, *kernelSize, *initrdSize, *timeout)
	res.Server = *name
	return printResult(os.Stdout, res)
}

// run starts n clients at once, each fetching the kernel then the initrd,
// and waits for all of them or the deadline.
func run(proto, server string, n, blksize int, kernelSize, initrdSize int64, timeout time.Duration) Result {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	type outcome struct {
		d     time.Duration
		bytes int64
		err   error
	}
	outs := make(chan outcome, n)
	check := func(got, want int64, what string) error {
		if want >= 0 && got != want {
			return fmt.Errorf("%s: got %d bytes, want %d", what, got, want)
		}
		return nil
	}
	var wg sync.WaitGroup
	gate := make(chan struct{})
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-gate
			t0 := time.Now()
			var k, r int64
			var err error
			if proto == "tftp" {
				if k, err = fetchTFTP(server, kernelName, blksize); err == nil {
					if err = check(k, kernelSize, kernelName); err == nil {
						r, err = fetchTFTP(server, initrdName, blksize)
					}
				}
			} else {
				cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
				defer cl.CloseIdleConnections()
				base := "http://" + server + "/c/" + benchCommit + "/"
				if k, err = fetchHTTP(ctx, cl, base+"kernel"); err == nil {
					if err = check(k, kernelSize, "kernel"); err == nil {
						r, err = fetchHTTP(ctx, cl, base+"initrd")
					}
				}
			}
			if err == nil {
				err = check(r, initrdSize, "initrd")
			}
			outs <- outcome{time.Since(t0), k + r, err}
		}()
	}
	start := time.Now()
	close(gate)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
	}
	allDone := time.Since(start)
	res := Result{Transport: proto, N: n}
	if proto == "tftp" {
		res.BlkSize = blksize
	}
	var ds []time.Duration
	var errs []string
collect:
	for i := 0; i < n; i++ {
		select {
		case o := <-outs:
			if o.err != nil {
				res.Failed++
				errs = append(errs, o.err.Error())
				continue
			}
			res.OK++
			res.Bytes += o.bytes
			ds = append(ds, o.d)
		default:
			break collect // still running at the deadline
		}
	}
	res.Failed = n - res.OK
	if res.Failed > 0 && len(errs) == 0 {
		errs = append(errs, fmt.Sprintf("%d clients still running after %s", res.Failed, timeout))
	}
	if len(errs) > 0 {
		res.FirstErr = errs[0]
		if len(errs) > 1 {
			res.FirstErr += fmt.Sprintf(" (and %d more errors)", len(errs)-1)
		}
	}
	res.AllDone = allDone.Seconds()
	res.P50 = percentile(ds, 50).Seconds()
	res.P99 = percentile(ds, 99).Seconds()
	return res
}

func printResult(w io.Writer, r Result) error {
	b, err := jsonLine(r)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	if r.Failed > 0 {
		fmt.Fprintf(os.Stderr, "bootfetch: %s %s n=%d: %d of %d clients failed: %s\n",
			r.Server, r.Transport, r.N, r.Failed, r.N, strings.TrimSpace(r.FirstErr))
	}
	return err
}
