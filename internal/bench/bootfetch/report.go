package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strings"
	"time"
)

// Result is one benchmark run: N clients each fetching the kernel and the
// initrd from one server. It is printed as one JSON line by `fetch` and
// read back by `report`.
type Result struct {
	Server    string  `json:"server"`    // "git-onesis", "dnsmasq", "tftpd-hpa"
	Transport string  `json:"transport"` // "tftp" or "http"
	BlkSize   int     `json:"blksize"`   // TFTP block size asked for; 0 for HTTP
	N         int     `json:"n"`         // clients started
	OK        int     `json:"ok"`        // clients that got both files, complete
	Failed    int     `json:"failed"`    // clients with an error or still running at the deadline
	AllDone   float64 `json:"all_done_s"`
	P50       float64 `json:"p50_s"`
	P99       float64 `json:"p99_s"`
	Bytes     int64   `json:"bytes"` // bytes received by the clients that completed
	FirstErr  string  `json:"first_error,omitempty"`
	Rounds    int     `json:"rounds,omitempty"` // runs this result is the best of (set by bestOf)
}

// bestOf keeps one result per (server, transport, block size, N): the run
// with the fewest failures, then the shortest all-done time. Rounds counts
// the runs seen. The order is that of each key's first run.
func bestOf(rs []Result) []Result {
	type key struct {
		server, transport string
		blk, n            int
	}
	idx := map[key]int{}
	var out []Result
	for _, r := range rs {
		k := key{r.Server, r.Transport, r.BlkSize, r.N}
		i, seen := idx[k]
		if !seen {
			r.Rounds = 1
			idx[k] = len(out)
			out = append(out, r)
			continue
		}
		best := out[i]
		if r.Failed < best.Failed || r.Failed == best.Failed && r.AllDone < best.AllDone {
			r.Rounds = best.Rounds + 1
			out[i] = r
		} else {
			out[i].Rounds++
		}
	}
	return out
}

// MBps is the aggregate throughput of the run, in 10^6 bytes per second.
func (r Result) MBps() float64 {
	if r.AllDone <= 0 {
		return 0
	}
	return float64(r.Bytes) / 1e6 / r.AllDone
}

// percentile returns the p-th percentile (0 < p <= 100) of ds by the
// nearest-rank method: the smallest value such that at least p% of the
// values are <= it. ds need not be sorted; it is not modified. Empty = 0.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	rank := int(math.Ceil(p / 100 * float64(len(s))))
	if rank < 1 {
		rank = 1
	}
	if rank > len(s) {
		rank = len(s)
	}
	return s[rank-1]
}

// readResults parses JSON lines, skipping blank ones.
func readResults(r io.Reader) ([]Result, error) {
	var out []Result
	sc := bufio.NewScanner(r)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" {
			continue
		}
		var res Result
		if err := json.Unmarshal([]byte(t), &res); err != nil {
			return nil, fmt.Errorf("results line %d: %w", line, err)
		}
		out = append(out, res)
	}
	return out, sc.Err()
}

// label names a run's server and transport for the table.
func (r Result) label() (server, transport string) {
	if r.Transport == "http" {
		return r.Server, "HTTP"
	}
	return r.Server, fmt.Sprintf("TFTP blksize %d", r.BlkSize)
}

func secs(f float64) string { return fmt.Sprintf("%.2f s", f) }

// renderMarkdown writes the results table (the best run of each
// configuration, see bestOf) and the ratio table.
func renderMarkdown(w io.Writer, rs []Result) {
	rs = bestOf(rs)
	fmt.Fprintln(w, "| server | transport | N | all done | p50 per client | p99 per client | MB/s | failed | runs |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		srv, tr := r.label()
		fmt.Fprintf(w, "| %s | %s | %d | %s | %s | %s | %.1f | %d | %d |\n",
			srv, tr, r.N, secs(r.AllDone), secs(r.P50), secs(r.P99), r.MBps(), r.Failed, r.Rounds)
	}
	ratios := computeRatios(rs)
	if len(ratios) == 0 {
		return
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Ratios are all-done times, first / second: below 1 means the first is faster.")
	fmt.Fprintln(w)
	fmt.Fprintln(w, "| comparison | N | ratio |")
	fmt.Fprintln(w, "|---|---:|---:|")
	for _, r := range ratios {
		fmt.Fprintf(w, "| %s | %d | %s |\n", r.What, r.N, fmtRatio(r.Value))
	}
}

// Ratio is first.AllDone / second.AllDone for one comparison at one N.
type Ratio struct {
	What  string
	N     int
	Value float64
}

// computeRatios compares our TFTP with dnsmasq and tftpd-hpa at each block
// size, and our HTTP with our TFTP at blksize 1408, for every N where both
// runs completed without failures. Order: by comparison, then N.
func computeRatios(rs []Result) []Ratio {
	type key struct {
		server, transport string
		blk, n            int
	}
	m := map[key]Result{}
	var ns, blks []int
	seenN, seenB := map[int]bool{}, map[int]bool{}
	for _, r := range rs {
		m[key{r.Server, r.Transport, r.BlkSize, r.N}] = r
		if !seenN[r.N] {
			seenN[r.N] = true
			ns = append(ns, r.N)
		}
		if r.Transport == "tftp" && !seenB[r.BlkSize] {
			seenB[r.BlkSize] = true
			blks = append(blks, r.BlkSize)
		}
	}
	sort.Ints(ns)
	sort.Sort(sort.Reverse(sort.IntSlice(blks)))
	var out []Ratio
	add := func(what string, a, b key) {
		for _, n := range ns {
			a.n, b.n = n, n
			ra, okA := m[a]
			rb, okB := m[b]
			if !okA || !okB || ra.Failed > 0 || rb.Failed > 0 || rb.AllDone <= 0 {
				continue
			}
			out = append(out, Ratio{What: what, N: n, Value: ra.AllDone / rb.AllDone})
		}
	}
	for _, blk := range blks {
		for _, other := range []string{"dnsmasq", "tftpd-hpa"} {
			add(fmt.Sprintf("git-onesis TFTP vs %s TFTP, blksize %d", other, blk),
				key{"git-onesis", "tftp", blk, 0}, key{other, "tftp", blk, 0})
		}
	}
	add("git-onesis HTTP vs git-onesis TFTP blksize 1408",
		key{"git-onesis", "http", 0, 0}, key{"git-onesis", "tftp", 1408, 0})
	return out
}

// fmtRatio prints 0.25 as "0.25× (4.00× faster)" and 1.3 as "1.30×".
func fmtRatio(v float64) string {
	if v > 0 && v < 1 {
		return fmt.Sprintf("%.2f× (%.2f× faster)", v, 1/v)
	}
	return fmt.Sprintf("%.2f×", v)
}

// jsonLine is r as one line of JSON, newline-terminated.
func jsonLine(r Result) ([]byte, error) {
	b, err := json.Marshal(r)
	return append(b, '\n'), err
}
