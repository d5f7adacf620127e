package personality

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/onesis/git-onesis/boot/sysimage"
)

// obj is one object of a test image: "f" file, "d" dir, "l" symlink.
type obj struct {
	path     string
	kind     string
	mode     uint32
	uid, gid int
	data     string // file content or link text
}

// build creates objs under root, parents 0755 as needed, owners set when
// running as root.
func build(t *testing.T, root string, objs []obj) {
	t.Helper()
	for _, o := range objs {
		p := filepath.Join(root, o.path)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		switch o.kind {
		case "d":
			err = os.MkdirAll(p, 0o755)
		case "l":
			err = os.Symlink(o.data, p)
		default:
			err = os.WriteFile(p, []byte(o.data), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
		if os.Geteuid() == 0 {
			if err := os.Lchown(p, o.uid, o.gid); err != nil {
				t.Fatal(err)
			}
		}
		if o.kind != "l" {
			mode := o.mode
			if mode == 0 {
				mode = 0o644
				if o.kind == "d" {
					mode = 0o755
				}
			}
			if err := os.Chmod(p, fileMode(mode)); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// parse parses a sysimage.conf given as text.
func parse(t *testing.T, conf string) *sysimage.Config {
	t.Helper()
	cfg, err := sysimage.Parse(func(p string) ([]byte, error) {
		if p == "/etc/sysimage.conf" {
			return []byte(conf), nil
		}
		return nil, fs.ErrNotExist
	}, "/etc/sysimage.conf")
	if err != nil {
		t.Fatalf("parsing the test config: %v", err)
	}
	return cfg
}

// listing is a find(1)-like view of a tree: path type mode uid:gid [-> link].
func listing(t *testing.T, root string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == "." {
			return nil
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		kind := map[fs.FileMode]string{0: "f", fs.ModeDir: "d", fs.ModeSymlink: "l"}[fi.Mode().Type()]
		line := fmt.Sprintf("%s %s %04o %d:%d", rel, kind, st.Mode&0o7777, st.Uid, st.Gid)
		if kind == "l" {
			l, _ := os.Readlink(p)
			line = fmt.Sprintf("%s l %s", rel, l) // a link's mode and owner are not its business here
		}
		if kind == "f" && fi.Size() > 0 {
			b, _ := os.ReadFile(p)
			line += fmt.Sprintf(" %q", string(b))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

func needRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to set owners; CI runs as root")
	}
}
