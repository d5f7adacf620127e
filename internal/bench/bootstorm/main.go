// Command bootstorm is the client side of `make bench-storm`
// (internal/bench/stormbench.sh): N simulated PXE nodes boot at once,
// each the whole chain (internal/bootsim): DHCP, the boot loader over TFTP,
// then either iPXE's second DHCP, script, kernel and initramfs over HTTP
// (-mode ipxe) or PXELINUX's configuration, kernel and initramfs over TFTP
// (-mode pxelinux). All nodes share one interface behind a simulated DHCP
// relay (bootsim.Relay, giaddr = -relay), each sending its TFTP and HTTP
// from its own leased address, which the script has configured on the
// interface beforehand.
//
//	bootstorm -server 10.81.0.1 -relay 10.81.0.2 -n 200 -mode ipxe -name git-onesis
//
// It prints one JSON line: nodes, failures, time until all are done, p50
// and p99 per node, bytes, and the first error.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/onesis/git-onesis/internal/bootsim"
)

// Result is one storm.
type Result struct {
	Server   string  `json:"server"`
	Mode     string  `json:"mode"`
	N        int     `json:"n"`
	OK       int     `json:"ok"`
	Failed   int     `json:"failed"`
	AllDone  float64 `json:"all_done_s"`
	P50      float64 `json:"p50_s"`
	P99      float64 `json:"p99_s"`
	Bytes    int64   `json:"bytes"`
	Retries  int     `json:"retries"`
	Kernels  int     `json:"distinct_kernels"`
	FirstErr string  `json:"first_error,omitempty"`
	// Stages gives each stage's p50 and p99 over the nodes that finished
	// it ("dhcp-pxe": [0.01, 0.2]), to show where a storm spends its time.
	Stages map[string][2]float64 `json:"stages"`
	// ClientCPU is the CPU time (user + system) the whole simulator used,
	// so a row's client cost can be set against its server's.
	ClientCPU float64 `json:"client_cpu_s"`
}

// MAC returns node i's address (1-based): base with i in its last two bytes.
func MAC(base net.HardwareAddr, i int) net.HardwareAddr {
	m := append(net.HardwareAddr(nil), base...)
	m[4], m[5] = byte(i>>8), byte(i)
	return m
}

func main() {
	server := flag.String("server", "", "server address (DHCP, TFTP, HTTP)")
	relay := flag.String("relay", "", "the relay's own address (giaddr; bound to port 67)")
	n := flag.Int("n", 50, "nodes")
	mode := flag.String("mode", "ipxe", "ipxe or pxelinux")
	name := flag.String("name", "", "server name for the results")
	baseMAC := flag.String("base-mac", "52:54:00:81:00:00", "MAC of node 0; node i has i in the last two bytes")
	timeout := flag.Duration("timeout", 10*time.Minute, "deadline for the whole storm")
	flag.Parse()
	base, err := net.ParseMAC(*baseMAC)
	if err != nil || *server == "" || *relay == "" || *n < 1 || *n > 4000 || (*mode != "ipxe" && *mode != "pxelinux") {
		fmt.Fprintln(os.Stderr, "usage: bootstorm -server IP -relay IP -n N(1..4000) -mode ipxe|pxelinux [-name NAME]")
		os.Exit(129)
	}
	rl, err := bootsim.NewRelay(net.ParseIP(*relay), net.ParseIP(*server))
	if err != nil {
		fmt.Fprintln(os.Stderr, "bootstorm:", err)
		os.Exit(128)
	}
	defer rl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	type outcome struct {
		r   *bootsim.Result
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
			r, err := bootsim.Boot(ctx, bootsim.Config{
				MAC: MAC(base, i+1), Relay: rl, BindLease: true, PXELinux: *mode == "pxelinux",
				Timeout: 10 * time.Second, FileTimeout: 5 * time.Minute, Attempts: 8,
			})
			outs[i] = outcome{r, time.Since(t0), err}
		}()
	}
	wg.Wait()
	res := Result{Server: *name, Mode: *mode, N: *n, AllDone: time.Since(start).Seconds()}
	var ds []float64
	kernels := map[string]bool{}
	stages := map[string][]float64{}
	for _, o := range outs {
		if o.r != nil {
			for _, st := range o.r.Stages {
				res.Retries += st.Attempts - 1
				stages[st.Name] = append(stages[st.Name], st.Took.Seconds())
			}
		}
		if o.err != nil {
			res.Failed++
			if res.FirstErr == "" {
				res.FirstErr = o.err.Error()
			}
			continue
		}
		res.OK++
		ds = append(ds, o.d.Seconds())
		kernels[o.r.KernelBlob] = true
		for _, st := range o.r.Stages {
			res.Bytes += st.Bytes
		}
	}
	res.Kernels = len(kernels)
	res.Stages = map[string][2]float64{}
	for name, v := range stages {
		sort.Float64s(v)
		res.Stages[name] = [2]float64{v[rank(len(v), 0.50)], v[rank(len(v), 0.99)]}
	}
	sort.Float64s(ds)
	if len(ds) > 0 {
		res.P50 = ds[rank(len(ds), 0.50)]
		res.P99 = ds[rank(len(ds), 0.99)]
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		res.ClientCPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano()).Seconds()
	}
	json.NewEncoder(os.Stdout).Encode(res)
}

// rank is the nearest-rank index of quantile q in n sorted values.
func rank(n int, q float64) int {
	i := int(q*float64(n)+0.999999) - 1
	return max(0, min(n-1, i))
}
