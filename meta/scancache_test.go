package meta

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// cacheTree builds a small tree with user xattrs (which any user may set
// on tmpfs and ext4) and a hard-link pair. It skips when the filesystem
// holding the test's temporary directory refuses user xattrs.
func cacheTree(t testing.TB) string {
	t.Helper()
	root := t.TempDir()
	for _, d := range []string{"etc", "usr/bin", "var/empty"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"etc/passwd", "usr/bin/ping", "usr/bin/ls"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte(f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Link(filepath.Join(root, "usr/bin/ls"), filepath.Join(root, "usr/bin/dir")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../etc/passwd", filepath.Join(root, "usr/pw")); err != nil {
		t.Fatal(err)
	}
	err := unix.Lsetxattr(filepath.Join(root, "usr/bin/ping"), "user.tag", []byte("one"), 0)
	if errors.Is(err, unix.ENOTSUP) {
		t.Skipf("the filesystem of %s does not take user xattrs; the scan cache test needs them", root)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(root, "etc"), "user.dir", []byte("d"), 0); err != nil {
		t.Fatal(err)
	}
	return root
}

func scanWithCache(t *testing.T, root, path string) (*Manifest, *ScanCache) {
	t.Helper()
	c, err := LoadScanCache(path)
	if err != nil {
		t.Fatalf("LoadScanCache: %v", err)
	}
	m, err := Scan(root, ScanOptions{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		t.Fatal(err)
	}
	return m, c
}

// savedCache builds cacheTree, scans it and saves the cache, remembering
// every object however recent (racyMargin is restored after the test).
func savedCache(t *testing.T) (root, path string) {
	t.Helper()
	old := racyMargin
	racyMargin = -time.Hour
	t.Cleanup(func() { racyMargin = old })
	root = cacheTree(t)
	path = filepath.Join(t.TempDir(), "cache")
	scanWithCache(t, root, path)
	return root, path
}

// TestScanCacheReuseAndInvalidate: a second scan takes every xattr from the
// cache and records the same manifest; setting and removing an xattr (which
// move ctime) is seen at once.
func TestScanCacheReuseAndInvalidate(t *testing.T) {
	old := racyMargin
	racyMargin = -time.Hour // remember everything, however recent
	defer func() { racyMargin = old }()
	root := cacheTree(t)
	path := filepath.Join(t.TempDir(), "cache")

	plain, err := Scan(root, ScanOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, c := scanWithCache(t, root, path)
	if c.Hits() != 0 {
		t.Errorf("first scan: %d cache hits from an empty cache", c.Hits())
	}
	second, c := scanWithCache(t, root, path)
	if c.Hits() != len(second.Entries) {
		t.Errorf("second scan: %d cache hits, want all %d entries", c.Hits(), len(second.Entries))
	}
	for _, m := range []*Manifest{first, second} {
		if !reflect.DeepEqual(m.Entries, plain.Entries) {
			t.Fatalf("scan with cache differs from a plain scan:\n%v\nwant\n%v", m.Entries, plain.Entries)
		}
	}
	if !c.Unchanged() {
		t.Error("a scan that saw only cache hits says the cache changed")
	}

	// ctime granularity is a clock tick; wait one out so the change moves it.
	time.Sleep(20 * time.Millisecond)
	ping := filepath.Join(root, "usr/bin/ping")
	if err := unix.Lsetxattr(ping, "user.tag", []byte("two"), 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lremovexattr(filepath.Join(root, "etc"), "user.dir"); err != nil {
		t.Fatal(err)
	}
	third, c := scanWithCache(t, root, path)
	if v, _ := third.Lookup("usr/bin/ping").Xattr("user.tag"); string(v) != "two" {
		t.Errorf("after setxattr the scan recorded user.tag=%q, want \"two\" (stale cache)", v)
	}
	if xs := third.Lookup("etc").Xattrs; len(xs) != 0 {
		t.Errorf("after removexattr the scan still records %v on etc (stale cache)", xs)
	}
	if c.Unchanged() {
		t.Error("a scan that saw changed objects says the cache is unchanged")
	}
	if c.Hits() != len(third.Entries)-2 {
		t.Errorf("third scan: %d hits, want %d (all but the two changed objects)", c.Hits(), len(third.Entries)-2)
	}

	// What the third scan saved is the hits' old records merged with the
	// two fresh ones: one record per object (the hard-linked pair is one),
	// and a fourth scan hits every entry with the new values, but usr,
	// whose ctime the removal of usr/pw moved.
	if err := os.Remove(filepath.Join(root, "usr/pw")); err != nil {
		t.Fatal(err)
	}
	saved, err := LoadScanCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(third.Entries) - 1; saved.Len() != want {
		t.Errorf("saved cache holds %d records, want %d (one per object)", saved.Len(), want)
	}
	fourth, c := scanWithCache(t, root, path)
	if c.Hits() != len(fourth.Entries)-1 {
		t.Errorf("fourth scan: %d hits of %d entries, want all but usr", c.Hits(), len(fourth.Entries))
	}
	if v, _ := fourth.Lookup("usr/bin/ping").Xattr("user.tag"); string(v) != "two" {
		t.Errorf("fourth scan recorded user.tag=%q from the merged cache, want \"two\"", v)
	}
	if xs := fourth.Lookup("etc").Xattrs; len(xs) != 0 {
		t.Errorf("fourth scan records %v on etc from the merged cache", xs)
	}
	if v, _ := fourth.Lookup("etc").Xattr("user.dir"); v != nil {
		t.Error("stale xattr back")
	}
}

// TestScanCacheRacy: objects changed just before the scan are not
// remembered, so a change within the same timestamp tick cannot hide.
func TestScanCacheRacy(t *testing.T) {
	root := cacheTree(t)
	path := filepath.Join(t.TempDir(), "cache")
	scanWithCache(t, root, path)
	c, err := LoadScanCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() != 0 {
		t.Errorf("cache remembers %d objects changed within the last second", c.Len())
	}
}

func TestScanCacheCorrupt(t *testing.T) {
	root, path := savedCache(t)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	flip := bytes.Clone(good)
	flip[len(scanCacheMagic)+20] ^= 1
	tests := []struct {
		name string
		b    []byte
	}{
		{"empty", nil},
		{"other file", []byte("git-onesis scan cache 0\nxxxxxxxxxxxxxxxx")},
		{"truncated", good[:len(good)-9]},
		{"bit flipped", flip},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "cache")
			if err := os.WriteFile(p, tc.b, 0o600); err != nil {
				t.Fatal(err)
			}
			c, err := LoadScanCache(p)
			if !errors.Is(err, ErrScanCacheCorrupt) {
				t.Errorf("LoadScanCache = %v, want ErrScanCacheCorrupt", err)
			}
			if c == nil || c.Len() != 0 {
				t.Fatalf("a corrupt cache must load as an empty one, got %v", c)
			}
			// An empty cache still scans correctly.
			if _, err := Scan(root, ScanOptions{Cache: c}); err != nil {
				t.Fatal(err)
			}
		})
	}
	if c, err := LoadScanCache(filepath.Join(t.TempDir(), "missing")); err != nil || c.Len() != 0 {
		t.Errorf("missing cache: %v, %v; want an empty cache and no error", c, err)
	}
}

// TestScanCacheOtherUser: a cache written by another user (who may not see
// trusted.* xattrs) is not used.
func TestScanCacheOtherUser(t *testing.T) {
	_, path := savedCache(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the uid and the checksum, as another user's scan would.
	binary.LittleEndian.PutUint32(b[len(scanCacheMagic):], uint32(os.Geteuid()+1))
	body := b[:len(b)-4]
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(body, crcTable))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := LoadScanCache(path)
	if !errors.Is(err, ErrScanCacheOtherUser) {
		t.Errorf("LoadScanCache = %v, want ErrScanCacheOtherUser", err)
	}
	if c.Len() != 0 {
		t.Errorf("another user's cache loaded with %d records", c.Len())
	}
}

// TestScanCacheSaveSkipsSmallDrift: with a few objects changed out of
// many, Save leaves the file alone (writing it whole would cost more than
// the misses), the next scan still sees every change, and a larger drift
// is written.
func TestScanCacheSaveSkipsSmallDrift(t *testing.T) {
	old := racyMargin
	racyMargin = -time.Hour
	defer func() { racyMargin = old }()
	root := t.TempDir()
	const n = 3 * driftShare
	for i := 0; i < n; i++ {
		if err := os.WriteFile(filepath.Join(root, fmt.Sprintf("f%04d", i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "cache")
	scanWithCache(t, root, path)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(20 * time.Millisecond)
	if err := os.Chmod(filepath.Join(root, "f0007"), 0o600); err != nil {
		t.Fatal(err)
	}
	m, c := scanWithCache(t, root, path)
	if after, _ := os.ReadFile(path); !bytes.Equal(after, before) {
		t.Error("one changed object of many rewrote the cache")
	}
	if e := m.Lookup("f0007"); e == nil || e.Mode != 0o600 {
		t.Fatalf("the scan missed the chmod: %+v", e)
	}
	if c.Unchanged() {
		t.Error("a scan that saw a changed object says the cache is unchanged")
	}
	m, c = scanWithCache(t, root, path)
	if e := m.Lookup("f0007"); e == nil || e.Mode != 0o600 || c.Hits() != len(m.Entries)-1 {
		t.Errorf("next scan: %+v, %d hits, want the chmod seen and all but it hit", e, c.Hits())
	}
	time.Sleep(20 * time.Millisecond)
	for i := 0; i < n/driftShare+2; i++ {
		if err := os.Chmod(filepath.Join(root, fmt.Sprintf("f%04d", 100+i)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	scanWithCache(t, root, path)
	if after, _ := os.ReadFile(path); bytes.Equal(after, before) {
		t.Error("a drift beyond one in driftShare left the cache as it was")
	}
}

// TestScanCacheInPlace: on a little-endian machine the loaded records are
// the mapped file itself, and they are the records a copying decode
// (misaligned input) finds.
func TestScanCacheInPlace(t *testing.T) {
	root, path := savedCache(t)
	c, err := LoadScanCache(path)
	if err != nil {
		t.Fatal(err)
	}
	if c.Len() == 0 {
		t.Fatal("the cache remembers nothing")
	}
	if le := binary.NativeEndian.Uint16([]byte{1, 0}) == 1; le != c.inPlace {
		t.Errorf("records in place: %v on a machine that is little-endian: %v", c.inPlace, le)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	shifted := make([]byte, len(b)+1)[1:] // records at an odd address
	copy(shifted, b)
	d, err := decodeScanCache(shifted)
	if err != nil {
		t.Fatal(err)
	}
	if d.inPlace {
		t.Fatal("misaligned records were used in place")
	}
	if !slices.Equal(c.recs, d.recs) {
		t.Error("the mapped records differ from the decoded ones")
	}
	// Lookups hit through the mapping.
	c.reset()
	m, err := Scan(root, ScanOptions{Cache: c})
	if err != nil {
		t.Fatal(err)
	}
	if c.Hits() != len(m.Entries) {
		t.Errorf("%d hits of %d entries through the mapped cache", c.Hits(), len(m.Entries))
	}
}

// TestScanCacheUnmapped: a loaded cache's mapping goes when the cache is
// garbage, so a process that scans again and again does not pile them up.
func TestScanCacheUnmapped(t *testing.T) {
	_, path := savedCache(t)
	mapped := func() int {
		b, err := os.ReadFile("/proc/self/maps")
		if err != nil {
			t.Skip("no /proc/self/maps")
		}
		return strings.Count(string(b), path)
	}
	before := mapped()
	for range 20 {
		c, err := LoadScanCache(path)
		if err != nil || c.Len() == 0 {
			t.Fatalf("LoadScanCache: %v, %d records", err, c.Len())
		}
	}
	for i := 0; i < 50 && mapped() > before; i++ {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
	}
	if n := mapped(); n > before {
		t.Errorf("%d mappings of the cache left after its 20 loads were garbage", n-before)
	}
}

// TestScanCacheListings: a second scan lists every directory from the
// cache (no getdents) and takes symlink targets from it, and records what
// a plain scan records; adding, removing and renaming names, and
// retargeting a symlink, are all seen by the next scan, because each
// moves the ctime of the directory (or makes a new symlink).
func TestScanCacheListings(t *testing.T) {
	old := racyMargin
	racyMargin = -time.Hour
	defer func() { racyMargin = old }()
	root := cacheTree(t)
	path := filepath.Join(t.TempDir(), "cache")
	dirs := func(m *Manifest) int {
		n := 0
		for _, e := range m.Entries {
			if e.Type == TypeDir {
				n++
			}
		}
		return n
	}
	same := func(m *Manifest) {
		t.Helper()
		plain, err := Scan(root, ScanOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(m.Entries, plain.Entries) {
			t.Fatalf("scan with cache differs from a plain scan:\n%v\nwant\n%v", m.Entries, plain.Entries)
		}
	}
	m, c := scanWithCache(t, root, path)
	if n := c.listHits.Load(); n != 0 {
		t.Errorf("first scan listed %d directories from an empty cache", n)
	}
	m, c = scanWithCache(t, root, path)
	same(m)
	if n, want := c.listHits.Load(), int64(dirs(m)); n != want {
		t.Errorf("second scan listed %d directories from the cache, want all %d", n, want)
	}

	time.Sleep(20 * time.Millisecond) // a clock tick, so ctimes move
	for _, step := range []func() error{
		func() error { return os.WriteFile(filepath.Join(root, "usr/bin/new"), nil, 0o644) },
		func() error { return os.Remove(filepath.Join(root, "etc/passwd")) },
		func() error { return os.Rename(filepath.Join(root, "usr/bin/ls"), filepath.Join(root, "usr/bin/list")) },
		func() error { return os.Mkdir(filepath.Join(root, "var/empty/sub"), 0o700) },
		func() error {
			if err := os.Remove(filepath.Join(root, "usr/pw")); err != nil {
				return err
			}
			return os.Symlink("bin/ping", filepath.Join(root, "usr/pw"))
		},
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	m, c = scanWithCache(t, root, path)
	same(m)
	for _, p := range []string{"usr/bin/new", "usr/bin/list", "var/empty/sub"} {
		if m.Lookup(p) == nil {
			t.Errorf("%s, made since the last scan, is missing", p)
		}
	}
	for _, p := range []string{"etc/passwd", "usr/bin/ls"} {
		if m.Lookup(p) != nil {
			t.Errorf("%s, gone since the last scan, is still recorded", p)
		}
	}
	if e := m.Lookup("usr/pw"); e == nil || e.Link != "bin/ping" {
		t.Errorf("usr/pw retargeted to bin/ping: recorded %+v", e)
	}
	// root and bin were not touched; etc, usr, usr/bin, var/empty were,
	// and var/empty/sub is new.
	if n, want := c.listHits.Load(), int64(dirs(m)-5); n != want {
		t.Errorf("third scan listed %d directories from the cache, want %d", n, want)
	}
}

// TestScanCacheBadListing: a listing the cache holds but the scan finds
// malformed is read afresh with getdents, and replaced in the file.
func TestScanCacheBadListing(t *testing.T) {
	root, path := savedCache(t)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("passwd\x00"))
	if i < 0 {
		t.Fatal("etc's listing is not in the cache file")
	}
	b[i+4] = '/' // "pass/d"
	body := b[:len(b)-4]
	binary.LittleEndian.PutUint32(b[len(b)-4:], crc32.Checksum(body, crcTable))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	m, c := scanWithCache(t, root, path)
	if m.Lookup("etc/passwd") == nil {
		t.Error("etc/passwd missing after a malformed cached listing")
	}
	if n := c.Hits(); n != len(m.Entries)-1 {
		t.Errorf("%d hits of %d entries, want all but etc", n, len(m.Entries))
	}
	if _, c = scanWithCache(t, root, path); c.Hits() != len(m.Entries) {
		t.Errorf("after the rewrite: %d hits of %d entries, want all", c.Hits(), len(m.Entries))
	}
}

func TestValidListing(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{"", true},
		{"\x08a\x00", true},
		{"\x04dir\x00\x08f i le\x00\x0a\xff\x00", true},
		{"\x08a", false},          // no NUL
		{"\x08\x00", false},       // empty name
		{"\x08a/b\x00", false},    // a slash
		{"\x08a\x00\x08", false},  // a type without a name
		{"\x08a\x00\x08b", false}, // the last name unterminated
	}
	for _, tc := range tests {
		if got := validListing([]byte(tc.in)); got != tc.want {
			t.Errorf("validListing(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// FuzzScanCache: decoding any cache file never panics (the checksum is
// made right first, so the fuzzer reaches the structure behind it); in a
// file that decodes, every record can be looked up with its xattr set and
// aux bytes in bounds, and saving what was seen writes a file that loads
// with the same answers.
func FuzzScanCache(f *testing.F) {
	old := racyMargin
	racyMargin = -time.Hour
	root := cacheTree(f)
	path := filepath.Join(f.TempDir(), "cache")
	c := &ScanCache{}
	if _, err := Scan(root, ScanOptions{Cache: c}); err != nil {
		f.Fatal(err)
	}
	if err := c.Save(path); err != nil {
		f.Fatal(err)
	}
	racyMargin = old
	b, err := os.ReadFile(path)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b[:len(b)-4])
	f.Add(b[:scanCacheHeader])
	f.Fuzz(func(t *testing.T, body []byte) {
		b := binary.LittleEndian.AppendUint32(bytes.Clone(body), crc32.Checksum(body, crcTable))
		c, err := decodeScanCache(b)
		if err != nil {
			return
		}
		c.reset()
		type answer struct {
			xs  []Xattr
			aux []byte
		}
		want := map[statKey]answer{}
		for _, r := range slices.Clone(c.recs) {
			k := statKey{dev: r.dev, ino: r.ino, csec: r.csec, cnsec: r.cnsec}
			xs, aux, _, ok := c.lookup(k, r.aux != 0)
			if !ok {
				t.Fatalf("record %+v of a decoded cache is not found", r)
			}
			validListing(aux)
			want[k] = answer{xs, aux}
		}
		p := filepath.Join(t.TempDir(), "cache")
		if err := c.Save(p); err != nil {
			t.Fatal(err)
		}
		d, err := LoadScanCache(p)
		if err != nil {
			t.Fatalf("a saved cache does not load: %v", err)
		}
		d.reset()
		if d.Len() != len(want) {
			t.Fatalf("saved %d records of %d", d.Len(), len(want))
		}
		for k, a := range want {
			xs, aux, _, ok := d.lookup(k, a.aux != nil)
			if !ok || !reflect.DeepEqual(xs, a.xs) || !bytes.Equal(aux, a.aux) {
				t.Fatalf("%+v after a save: %v %q %v, want %v %q", k, xs, aux, ok, a.xs, a.aux)
			}
		}
	})
}
