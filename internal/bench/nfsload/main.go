// Command nfsload is the load generator of `make bench-nfs`
// (internal/bench/nfsbench.sh): it runs the embedded NFS root server
// (boot/nfsroot, as `git onesis serve` does) in one process, and N
// simulated nodes that each read a whole commit through it in another, so
// the server's memory can be read from /proc while they run.
//
//	nfsload server -repo DIR -commit SHA [-state DIR] [-addr 127.0.0.1:0] [-cpuprofile FILE]
//	nfsload read -port P (-commit SHA | -export PATH) -n N [-client pipelined|sync] [-host H]
//	             [-mountport P] [-inflight N] [-procs N] [-readsize B] [-readahead N] [-nordirplus] [-timeout 10m]
//
// server prints "port N" once listening and serves until SIGTERM. read
// prints one JSON line: clients, failures, all-done time, per-client p50
// and p99, files and bytes per client, RPCs per client, aggregate MB/s.
// Its clients are bootsim.ReadRootPipelined (the default: many RPCs in
// flight per connection, as a kernel client) or bootsim.ReadRoot
// (go-nfs-client, one RPC at a time); any NFSv3 server that serves MOUNT
// on -mountport (default: -port) can be read, so the same clients read a
// peer server's export of the same tree.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/pprof"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/onesis/git-onesis/boot/gitobjects"
	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/internal/bootsim"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nfsload server|read [flags]")
		os.Exit(129)
	}
	var err error
	switch os.Args[1] {
	case "server":
		err = server(os.Args[2:])
	case "read":
		err = read(os.Args[2:])
	default:
		fmt.Fprintf(os.Stderr, "nfsload: unknown command %q\n", os.Args[1])
		os.Exit(129)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "nfsload:", err)
		os.Exit(128)
	}
}

func server(args []string) error {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	repo := fs.String("repo", "", "image repository")
	commit := fs.String("commit", "", "the commit clients may mount (/c/<commit>)")
	state := fs.String("state", "", "state directory (default: a temporary one)")
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole run to `FILE`")
	skipVerify := fs.Bool("skip-verify", false, "serve stored blobs without verifying them (the 'before' arm of NFSBENCH_VERIFY)")
	fs.Parse(args)
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if *repo == "" || *commit == "" {
		return fmt.Errorf("server: -repo and -commit are required")
	}
	if *state == "" {
		d, err := os.MkdirTemp("", "nfsload-state-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		*state = d
	}
	objs, err := gitobjects.Open(*repo)
	if err != nil {
		return err
	}
	srv, err := nfsroot.New(nfsroot.Config{
		Objects: objs, StateDir: *state, SkipVerify: *skipVerify,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		Authorize: func(ip net.IP, export string) (nfsroot.Export, bool) {
			return nfsroot.Export{Commit: *commit}, ip.IsLoopback() && export == "/c/"+*commit
		},
	})
	if err != nil {
		return err
	}
	defer srv.Close()
	l, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	fmt.Printf("port %d\n", l.Addr().(*net.TCPAddr).Port)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case <-ctx.Done():
		return nil
	case err := <-errc:
		return err
	}
}

// Result is what read prints.
type Result struct {
	N        int     `json:"n"`
	Failed   int     `json:"failed"`
	AllDone  float64 `json:"all_done_s"`
	P50      float64 `json:"p50_s"`
	P99      float64 `json:"p99_s"`
	Files    int     `json:"files_per_client"`
	Bytes    int64   `json:"bytes_per_client"`
	Calls    int64   `json:"rpcs_per_client"`
	MBps     float64 `json:"mb_per_s"`
	FirstErr string  `json:"first_error,omitempty"`
}

func read(args []string) error {
	fs := flag.NewFlagSet("read", flag.ExitOnError)
	port := fs.Int("port", 0, "server port")
	host := fs.String("host", "127.0.0.1", "server address")
	commit := fs.String("commit", "", "commit to mount (/c/<commit>)")
	export := fs.String("export", "", "export path to mount instead of /c/<commit>")
	n := fs.Int("n", 1, "concurrent clients")
	client := fs.String("client", "pipelined", "pipelined (many RPCs in flight) or sync (go-nfs-client)")
	var opt bootsim.PipelineOptions
	fs.IntVar(&opt.MountPort, "mountport", 0, "MOUNT port (default: -port)")
	fs.IntVar(&opt.InFlight, "inflight", 0, "pipelined: RPC slots per connection (default 64)")
	fs.IntVar(&opt.Procs, "procs", 0, "pipelined: directories and files read at once (default 16)")
	fs.IntVar(&opt.ReadSize, "readsize", 0, "pipelined: bytes per READ (default 128 KiB)")
	fs.IntVar(&opt.ReadAhead, "readahead", 0, "pipelined: READs in flight per file (default 4)")
	fs.BoolVar(&opt.NoRdirplus, "nordirplus", false, "pipelined: READDIR and a LOOKUP per name")
	timeout := fs.Duration("timeout", 10*time.Minute, "deadline for the whole run")
	fs.Parse(args)
	if *export == "" && *commit != "" {
		*export = "/c/" + *commit
	}
	if *port == 0 || *export == "" || *n < 1 || *n > 500 {
		return fmt.Errorf("read: -port, -commit or -export, and -n (1..500) are required")
	}
	readRoot := func(ctx context.Context) (*bootsim.RootStats, error) {
		return bootsim.ReadRootPipelined(ctx, *host, *port, *export, opt, nil)
	}
	switch *client {
	case "pipelined":
	case "sync":
		if opt.MountPort != 0 && opt.MountPort != *port {
			return fmt.Errorf("read: the sync client (go-nfs-client) mounts on the NFS port; -mountport must be -port")
		}
		readRoot = func(ctx context.Context) (*bootsim.RootStats, error) {
			return bootsim.ReadRoot(ctx, *host, *port, *export, 0, 0, nil)
		}
	default:
		return fmt.Errorf("read: -client %q: want pipelined or sync", *client)
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	type outcome struct {
		st  *bootsim.RootStats
		d   time.Duration
		err error
	}
	outs := make([]outcome, *n)
	var wg sync.WaitGroup
	start := time.Now()
	for i := range outs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			st, err := readRoot(ctx)
			outs[i] = outcome{st, time.Since(t0), err}
		}()
	}
	wg.Wait()
	all := time.Since(start)
	res := Result{N: *n, AllDone: all.Seconds()}
	var ds []float64
	var total int64
	for _, o := range outs {
		if o.err != nil {
			res.Failed++
			if res.FirstErr == "" {
				res.FirstErr = o.err.Error()
			}
			continue
		}
		ds = append(ds, o.d.Seconds())
		total += o.st.Bytes
		if o.st.Files > res.Files {
			res.Files, res.Bytes, res.Calls = o.st.Files, o.st.Bytes, o.st.Calls
		}
	}
	// Every client reads the same commit: a client that saw fewer files or
	// bytes than another did not read it all.
	for _, o := range outs {
		if o.err == nil && (o.st.Files != res.Files || o.st.Bytes != res.Bytes) {
			res.Failed++
			if res.FirstErr == "" {
				res.FirstErr = fmt.Sprintf("a client read %d files, %d bytes; another %d, %d", o.st.Files, o.st.Bytes, res.Files, res.Bytes)
			}
		}
	}
	sort.Float64s(ds)
	if len(ds) > 0 {
		res.P50 = ds[rank(len(ds), 0.50)]
		res.P99 = ds[rank(len(ds), 0.99)]
	}
	res.MBps = float64(total) / 1e6 / all.Seconds()
	return json.NewEncoder(os.Stdout).Encode(res)
}

// rank is the nearest-rank index of quantile q in n sorted values.
func rank(n int, q float64) int {
	i := int(q*float64(n)+0.999999) - 1
	return max(0, min(n-1, i))
}
