package inventory

import (
	"net"
	"path/filepath"
	"testing"
	"time"
)

func mustMAC(s string) net.HardwareAddr {
	m, err := ParseMAC(s)
	if err != nil {
		panic(err)
	}
	return m
}

func TestDiscovered(t *testing.T) {
	p := filepath.Join(t.TempDir(), "state", "discovered")
	t0 := mustTime("2026-01-02T03:04:05Z")
	m1, m2 := mustMAC("52:54:00:00:00:01"), mustMAC("52:54:00:00:00:02")
	for i, c := range []struct {
		mac  net.HardwareAddr
		info string
	}{{m1, "arch=0 vc=\"PXEClient\""}, {m2, "iPXE"}, {m1, "iPXE"}} {
		if err := RecordDiscovered(p, c.mac, c.info, t0.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	list, err := ReadDiscovered(p)
	if err != nil || len(list) != 2 {
		t.Fatalf("ReadDiscovered: %v %+v", err, list)
	}
	if list[0].MAC.String() != m1.String() || list[0].Count != 2 || list[0].Info != "iPXE" || !list[0].First.Equal(t0) {
		t.Errorf("newest first with counts: %+v", list[0])
	}
}

func mustTime(s string) time.Time {
	tm, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return tm
}
