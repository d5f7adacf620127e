package kernel

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/onesis/git-onesis/internal/testkit"
)

var bzImage = testkit.BzImage

func TestHeaderVersion(t *testing.T) {
	old := bzImage("2.4.0")
	binary.LittleEndian.PutUint16(old[offProtocol:], 0x0103)
	pastEnd := bzImage("6.1.0")
	binary.LittleEndian.PutUint16(pastEnd[offVersionPtr:], 0xF000)
	tests := []struct {
		name string
		data []byte
		want string // "" = ErrNoHeader
	}{
		{"debian", bzImage("6.1.0-57-amd64"), "6.1.0-57-amd64"},
		{"local", bzImage("9.9.9-zz"), "9.9.9-zz"},
		{"not a kernel", []byte("KERNEL 6.1.0-10"), ""},
		{"no boot flag", append(make([]byte, 0x210), make([]byte, 0x4000)...), ""},
		{"protocol 1", old, ""},
		{"pointer past the end", pastEnd, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := HeaderVersion(bytes.NewReader(tc.data))
			if tc.want == "" {
				if !errors.Is(err, ErrNoHeader) {
					t.Errorf("HeaderVersion = %q, %v; want ErrNoHeader", got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("HeaderVersion = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

// TestHeaderVersionDebian reads the header of the Debian kernel the boot
// tests boot (fetched once into testkit.KernelCache): the version in it is
// the one its package names.
func TestHeaderVersionDebian(t *testing.T) {
	root, kver := testkit.DebianKernel(t)
	f, err := os.Open(filepath.Join(root, "boot", "vmlinuz-"+kver))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if got, err := HeaderVersion(f); err != nil || got != kver {
		t.Errorf("HeaderVersion(vmlinuz-%s) = %q, %v", kver, got, err)
	}
	k, err := Find(os.DirFS(root))
	if err != nil || k.Version != kver || k.VersionFrom != "bzImage header" {
		t.Errorf("Find on the unpacked package = %+v, %v; want %s from its header", k, err, kver)
	}
}

func TestFind(t *testing.T) {
	file := func(b []byte) *fstest.MapFile { return &fstest.MapFile{Data: b, Mode: 0o644} }
	plain := func() *fstest.MapFile { return file([]byte("k")) }
	link := func(to string) *fstest.MapFile {
		return &fstest.MapFile{Data: []byte(to), Mode: fs.ModeSymlink | 0o777}
	}
	tests := []struct {
		name            string
		img             fstest.MapFS
		path, ver, from string
		why             string // a part of Why
	}{
		{"only", fstest.MapFS{"boot/vmlinuz-6.1.0-5-amd64": plain()},
			"boot/vmlinuz-6.1.0-5-amd64", "6.1.0-5-amd64", "file name", "the only"},
		{"newest", fstest.MapFS{"boot/vmlinuz-6.1.0-9-amd64": plain(), "boot/vmlinuz-6.1.0-10-amd64": plain(), "boot/config-6.1.0-11-amd64": plain()},
			"boot/vmlinuz-6.1.0-10-amd64", "6.1.0-10-amd64", "file name", "newest of 2"},
		{"vmlinuz symlink wins over the newest", fstest.MapFS{"boot/vmlinuz-6.1.0-9-amd64": plain(), "boot/vmlinuz-6.1.0-10-amd64": plain(), "vmlinuz": link("boot/vmlinuz-6.1.0-9-amd64")},
			"boot/vmlinuz-6.1.0-9-amd64", "6.1.0-9-amd64", "file name", "/vmlinuz -> /boot/vmlinuz-6.1.0-9-amd64"},
		{"absolute symlink", fstest.MapFS{"boot/vmlinuz-6.1.0-9-amd64": plain(), "boot/vmlinuz-6.1.0-10-amd64": plain(), "vmlinuz": link("/boot/vmlinuz-6.1.0-9-amd64")},
			"boot/vmlinuz-6.1.0-9-amd64", "6.1.0-9-amd64", "file name", ""},
		{"boot/vmlinuz wins over vmlinuz", fstest.MapFS{"boot/vmlinuz-1.0": plain(), "boot/vmlinuz-2.0": plain(), "vmlinuz": link("boot/vmlinuz-2.0"), "boot/vmlinuz": link("vmlinuz-1.0")},
			"boot/vmlinuz-1.0", "1.0", "file name", "/boot/vmlinuz -> "},
		{"chain of links", fstest.MapFS{"boot/vmlinuz-1.0": plain(), "boot/vmlinuz": link("../vmlinuz"), "vmlinuz": link("boot/vmlinuz-1.0")},
			"boot/vmlinuz-1.0", "1.0", "file name", "/boot/vmlinuz -> /vmlinuz -> /boot/vmlinuz-1.0"},
		// The case: boot/vmlinuz is a plain copy of 6.1.0-57 with
		// a newer kernel beside it. The copy boots, and its header says
		// which modules it needs.
		{"plain copy named boot/vmlinuz", fstest.MapFS{"boot/vmlinuz": file(bzImage("6.1.0-57-amd64")), "boot/vmlinuz-6.1.0-57-amd64": file(bzImage("6.1.0-57-amd64")), "boot/vmlinuz-9.9.9-zz": file(bzImage("9.9.9-zz"))},
			"boot/vmlinuz", "6.1.0-57-amd64", "bzImage header", "regular file"},
		{"header wins over name", fstest.MapFS{"boot/vmlinuz-6.1.0-10": file(bzImage("6.1.0-11"))},
			"boot/vmlinuz-6.1.0-10", "6.1.0-11", "bzImage header", "its name says 6.1.0-10 but its header says 6.1.0-11"},
		// An arm64 Image has no version in its header: a plain copy is
		// known by the boot/vmlinuz-* it copies.
		{"plain copy without a header", fstest.MapFS{"boot/vmlinuz": file([]byte("arm64 image 6.1")), "boot/vmlinuz-6.1.0-57-arm64": file([]byte("arm64 image 6.1")), "boot/vmlinuz-6.1.0-58-arm64": file([]byte("arm64 image 6.2"))},
			"boot/vmlinuz", "6.1.0-57-arm64", "file name of its copy /boot/vmlinuz-6.1.0-57-arm64", "regular file"},
		{"symlink to a differently named kernel", fstest.MapFS{"boot/kernel.img": file(bzImage("6.2.0")), "vmlinuz": link("boot/kernel.img")},
			"boot/kernel.img", "6.2.0", "bzImage header", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k, err := Find(tc.img)
			if err != nil {
				t.Fatal(err)
			}
			if k.Path != tc.path || k.Version != tc.ver || k.VersionFrom != tc.from || !strings.Contains(k.Why, tc.why) {
				t.Errorf("Find = %+v, want %s %s from %s, why containing %q", k, tc.path, tc.ver, tc.from, tc.why)
			}
		})
	}
	errs := []struct {
		name string
		img  fstest.MapFS
		want string
	}{
		{"none", fstest.MapFS{"boot/config-1": plain()}, "no kernel"},
		{"no boot directory", fstest.MapFS{"etc/passwd": plain()}, "no kernel"},
		{"escaping link", fstest.MapFS{"boot/vmlinuz-1.0": plain(), "boot/vmlinuz": link("../../../etc/passwd")}, "leaves the image"},
		{"dangling link", fstest.MapFS{"boot/vmlinuz-1.0": plain(), "vmlinuz": link("boot/vmlinuz-0.9")}, "vmlinuz -> /boot/vmlinuz-0.9"},
		{"loop", fstest.MapFS{"boot/vmlinuz-1.0": plain(), "vmlinuz": link("vmlinuz")}, "too many levels"},
		{"directory", fstest.MapFS{"boot/vmlinuz/x": plain()}, "not a kernel file"},
		{"no version", fstest.MapFS{"boot/vmlinuz": plain()}, "cannot tell the version"},
		{"bad version", fstest.MapFS{"boot/vmlinuz-..": plain()}, "cannot name a directory"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			if k, err := Find(tc.img); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Find = %+v, %v; want an error containing %q", k, err, tc.want)
			}
		})
	}
	if _, err := Find(fstest.MapFS{}); !errors.Is(err, ErrNoKernel) {
		t.Errorf("empty image: %v, want ErrNoKernel", err)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"vmlinuz-6.1.0-10-amd64", "vmlinuz-6.1.0-9-amd64", 1},
		{"6.1.0-9", "6.1.0-10", -1},
		{"6.1", "6.1.0", -1},
		{"6.1.0-rc1", "6.1.0-rc1", 0},
	} {
		if got := CompareVersions(tc.a, tc.b); got != tc.want {
			t.Errorf("CompareVersions(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}
