package inventory

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/renameio/v2"
)

// Sighting is an unknown MAC seen by serve --discover, kept so the admin
// can turn it into a node with `git onesis node add`.
type Sighting struct {
	MAC   net.HardwareAddr
	First time.Time
	Last  time.Time
	Count int
	// Info describes the client as its DHCP request did (vendor class,
	// architecture, user class), for the admin's eyes only.
	Info string
}

// MaxSightings bounds the discovered file: the oldest sightings are dropped
// beyond it, so a flood of random MACs cannot fill the disk.
const MaxSightings = 1024

var discoveredMu sync.Mutex

// RecordDiscovered adds or refreshes mac in the discovered file at path
// (written atomically). It is safe for concurrent use within a process.
func RecordDiscovered(path string, mac net.HardwareAddr, info string, now time.Time) error {
	discoveredMu.Lock()
	defer discoveredMu.Unlock()
	list, err := ReadDiscovered(path)
	if err != nil {
		list = nil // a damaged file is replaced, not fatal for serving
	}
	found := false
	for i := range list {
		if bytes.Equal(list[i].MAC, mac) {
			list[i].Last, list[i].Info = now, info
			list[i].Count++
			found = true
		}
	}
	if !found {
		list = append(list, Sighting{MAC: slices.Clone(mac), First: now, Last: now, Count: 1, Info: info})
	}
	slices.SortFunc(list, func(a, b Sighting) int { return b.Last.Compare(a.Last) })
	if len(list) > MaxSightings {
		list = list[:MaxSightings]
	}
	var b bytes.Buffer
	b.WriteString("# MACs seen by git onesis serve --discover; add them with 'git onesis node add'\n")
	for _, s := range list {
		fmt.Fprintf(&b, "%s first=%s last=%s count=%d info=%s\n", s.MAC, s.First.UTC().Format(time.RFC3339),
			s.Last.UTC().Format(time.RFC3339), s.Count, strconv.Quote(s.Info))
	}
	if err := os.MkdirAll(dirOf(path), 0o755); err != nil {
		return fmt.Errorf("recording discovered MAC %s: %w", mac, err)
	}
	if err := renameio.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("recording discovered MAC %s: %w", mac, err)
	}
	return nil
}

func dirOf(p string) string {
	if i := strings.LastIndexByte(p, '/'); i > 0 {
		return p[:i]
	}
	return "."
}

// ReadDiscovered reads the discovered file, newest sighting first. A
// missing file is an empty list.
func ReadDiscovered(path string) ([]Sighting, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading discovered MACs: %w", err)
	}
	var out []Sighting
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		bad := fmt.Errorf("%s:%d: malformed sighting", path, i+1)
		toks, err := tokenize("x " + line)
		if err != nil || len(toks) < 2 || toks[1].kv {
			return nil, bad
		}
		mac, err := ParseMAC(toks[1].key)
		if err != nil {
			return nil, bad
		}
		s := Sighting{MAC: mac}
		for _, t := range toks[2:] {
			switch t.key {
			case "first":
				s.First, err = time.Parse(time.RFC3339, t.val)
			case "last":
				s.Last, err = time.Parse(time.RFC3339, t.val)
			case "count":
				s.Count, err = strconv.Atoi(t.val)
			case "info":
				s.Info = t.val
			}
			if err != nil {
				return nil, bad
			}
		}
		out = append(out, s)
	}
	return out, nil
}
