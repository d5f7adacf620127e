package main

import (
	"runtime/debug"
	"testing"
)

func TestIsBatch(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"git-onesis", "record", "--stdout"}, true},
		{[]string{"git-onesis", "status"}, true},
		{[]string{"git-onesis", "pre-commit"}, true},
		{[]string{"git-onesis", "post-index-change", "1", "0"}, true},
		{[]string{"git-onesis", "--help", "checkout"}, true},
		{[]string{"git-onesis", "serve", "--iface", "eth0"}, false},
		{[]string{"git-onesis", "sync"}, false},
		{[]string{"git-onesis", "node", "ls"}, false},
		{[]string{"git-onesis", "images", "status"}, false},
		{[]string{"git-onesis"}, false},
		{nil, false},
	} {
		if got := isBatch(tc.args); got != tc.want {
			t.Errorf("isBatch(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

func TestBatchGC(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(debug.SetMemoryLimit(-1))
	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	if batchGC([]string{"git-onesis", "serve"}) {
		t.Fatal("serve got the batch collector settings")
	}
	if !batchGC([]string{"git-onesis", "record"}) {
		t.Fatal("record did not get the batch collector settings")
	}
	if p := debug.SetGCPercent(100); p != -1 {
		t.Errorf("GC percent after batchGC = %d, want -1 (off)", p)
	}
	if l := debug.SetMemoryLimit(-1); l < 512<<20 || l == 1<<63-1 {
		t.Errorf("memory limit after batchGC = %d, want at least 512 MiB and set", l)
	}
	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50)
	if batchGC([]string{"git-onesis", "record"}) {
		t.Error("batchGC overrode GOGC")
	}
	if p := debug.SetGCPercent(50); p != 50 {
		t.Errorf("GC percent with GOGC=50 = %d", p)
	}
}
