package main

import (
	"bytes"
	"net"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/tftp"
)

func TestPercentile(t *testing.T) {
	s := time.Second
	ten := []time.Duration{10 * s, 9 * s, 8 * s, 7 * s, 6 * s, 5 * s, 4 * s, 3 * s, 2 * s, 1 * s}
	hundred := make([]time.Duration, 100)
	for i := range hundred {
		hundred[i] = time.Duration(100-i) * time.Millisecond // 100ms..1ms, unsorted
	}
	for _, tc := range []struct {
		name string
		ds   []time.Duration
		p    float64
		want time.Duration
	}{
		{"empty", nil, 50, 0},
		{"one value p50", []time.Duration{3 * s}, 50, 3 * s},
		{"one value p99", []time.Duration{3 * s}, 99, 3 * s},
		{"ten p50 is the 5th", ten, 50, 5 * s},
		{"ten p99 is the max", ten, 99, 10 * s},
		{"ten p10 is the min", ten, 10, 1 * s},
		{"ten p100", ten, 100, 10 * s},
		{"tiny p clamps to the min", ten, 0.001, 1 * s},
		{"hundred p50", hundred, 50, 50 * time.Millisecond},
		{"hundred p99", hundred, 99, 99 * time.Millisecond},
		{"two p50 is the lower", []time.Duration{2 * s, 1 * s}, 50, 1 * s},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var before []time.Duration
			before = append(before, tc.ds...)
			if got := percentile(tc.ds, tc.p); got != tc.want {
				t.Errorf("percentile(p%v) = %v, want %v", tc.p, got, tc.want)
			}
			for i := range before {
				if tc.ds[i] != before[i] {
					t.Fatalf("percentile reordered its input")
				}
			}
		})
	}
}

func TestRatiosAndMarkdown(t *testing.T) {
	rs := []Result{
		{Server: "git-onesis", Transport: "tftp", BlkSize: 1408, N: 10, OK: 10, AllDone: 2, Bytes: 120e6},
		{Server: "dnsmasq", Transport: "tftp", BlkSize: 1408, N: 10, OK: 10, AllDone: 4, Bytes: 120e6},
		{Server: "tftpd-hpa", Transport: "tftp", BlkSize: 1408, N: 10, OK: 10, AllDone: 1, Bytes: 120e6},
		{Server: "git-onesis", Transport: "http", N: 10, OK: 10, AllDone: 0.5, Bytes: 120e6},
		// A run with failures gives no ratio.
		{Server: "git-onesis", Transport: "tftp", BlkSize: 1408, N: 50, OK: 49, Failed: 1, AllDone: 9, Bytes: 1},
		{Server: "dnsmasq", Transport: "tftp", BlkSize: 1408, N: 50, OK: 50, AllDone: 9, Bytes: 1},
	}
	got := computeRatios(rs)
	want := []Ratio{
		{"git-onesis TFTP vs dnsmasq TFTP, blksize 1408", 10, 0.5},
		{"git-onesis TFTP vs tftpd-hpa TFTP, blksize 1408", 10, 2},
		{"git-onesis HTTP vs git-onesis TFTP blksize 1408", 10, 0.25},
	}
	if len(got) != len(want) {
		t.Fatalf("ratios = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("ratio %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	if m := rs[0].MBps(); m != 60 {
		t.Errorf("MBps = %v, want 60", m)
	}

	var buf bytes.Buffer
	for _, r := range rs {
		b, err := jsonLine(r)
		if err != nil {
			t.Fatal(err)
		}
		buf.Write(b)
		buf.WriteString("\n") // blank lines are skipped
	}
	back, err := readResults(&buf)
	if err != nil || len(back) != len(rs) || back[4] != rs[4] {
		t.Fatalf("readResults round trip: %v, %d results, %+v", err, len(back), back)
	}
	var md bytes.Buffer
	renderMarkdown(&md, back)
	for _, s := range []string{
		"| git-onesis | TFTP blksize 1408 | 10 | 2.00 s |",
		"| git-onesis | HTTP | 10 | 0.50 s |",
		"| 60.0 | 0 | 1 |",
		"| git-onesis TFTP vs dnsmasq TFTP, blksize 1408 | 10 | 0.50× (2.00× faster) |",
		"| git-onesis TFTP vs tftpd-hpa TFTP, blksize 1408 | 10 | 2.00× |",
	} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("markdown lacks %q:\n%s", s, md.String())
		}
	}
	if _, err := readResults(strings.NewReader("{not json\n")); err == nil {
		t.Error("readResults accepted garbage")
	}
}

func TestBestOf(t *testing.T) {
	a1 := Result{Server: "a", Transport: "tftp", BlkSize: 512, N: 10, AllDone: 3}
	b1 := Result{Server: "b", Transport: "tftp", BlkSize: 512, N: 10, AllDone: 9}
	a2 := Result{Server: "a", Transport: "tftp", BlkSize: 512, N: 10, AllDone: 2}
	a3 := Result{Server: "a", Transport: "tftp", BlkSize: 512, N: 10, AllDone: 1, Failed: 1}
	a4 := Result{Server: "a", Transport: "tftp", BlkSize: 1408, N: 10, AllDone: 1}
	b2 := Result{Server: "b", Transport: "tftp", BlkSize: 512, N: 10, AllDone: 1, Failed: 2}
	got := bestOf([]Result{a1, b1, a2, a3, a4, b2})
	want := []Result{a2, b1, a4}
	want[0].Rounds, want[1].Rounds, want[2].Rounds = 3, 2, 1
	if len(got) != len(want) {
		t.Fatalf("bestOf = %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("bestOf[%d] = %+v, want %+v", i, got[i], want[i])
		}
	}
}

// TestRunTFTP runs the load generator against our TFTP server on
// 127.0.0.1 (no root needed): 4 clients must each get both files whole,
// and a wrong expected size must count as a failure.
func TestRunTFTP(t *testing.T) {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "k"), filepath.Join(dir, "i")
	if err := os.WriteFile(k, bytes.Repeat([]byte("k"), 300_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(i, bytes.Repeat([]byte("i"), 100_001), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := tftp.New(tftp.Config{Addr: "127.0.0.1:0", Files: map[string]string{kernelName: k, initrdName: i},
		Logger: logger()})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
	addr := srv.Addr().(*net.UDPAddr).String()

	res := run("tftp", addr, 4, 1408, 300_000, 100_001, 30*time.Second)
	if res.OK != 4 || res.Failed != 0 || res.Bytes != 4*400_001 || res.FirstErr != "" {
		t.Fatalf("run = %+v, want 4 clients OK with 400001 bytes each", res)
	}
	if res.P50 <= 0 || res.P99 < res.P50 || res.AllDone < res.P99 {
		t.Errorf("inconsistent timings: %+v", res)
	}
	bad := run("tftp", addr, 2, 512, 299_999, 100_001, 30*time.Second)
	if bad.OK != 0 || bad.Failed != 2 || !strings.Contains(bad.FirstErr, "want 299999") {
		t.Errorf("wrong size not reported: %+v", bad)
	}
}

// TestRunHTTP does the same over HTTP against boot/httpboot's handler.
func TestRunHTTP(t *testing.T) {
	dir := t.TempDir()
	k, i := filepath.Join(dir, "k"), filepath.Join(dir, "i")
	if err := os.WriteFile(k, bytes.Repeat([]byte("k"), 300_000), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(i, bytes.Repeat([]byte("i"), 100_001), 0o644); err != nil {
		t.Fatal(err)
	}
	h, err := newHTTPHandler("127.0.0.1:1", k, i)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	addr := strings.TrimPrefix(srv.URL, "http://")
	res := run("http", addr, 4, 0, 300_000, 100_001, 30*time.Second)
	if res.OK != 4 || res.Failed != 0 || res.Bytes != 4*400_001 {
		t.Fatalf("run = %+v, want 4 clients OK with 400001 bytes each", res)
	}
	bad := run("http", addr, 1, 0, 300_000, 5, 30*time.Second)
	if bad.OK != 0 || bad.Failed != 1 || !strings.Contains(bad.FirstErr, "want 5") {
		t.Errorf("wrong size not reported: %+v", bad)
	}
}
