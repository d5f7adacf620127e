package meta

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func wrManifest(gen uint32, n int) *Manifest {
	m := &Manifest{Entries: make([]Entry, 0, n+1)}
	m.Entries = append(m.Entries, Entry{Path: ".", Type: TypeDir, Mode: 0o755, UID: gen, GID: gen})
	pad := bytes.Repeat([]byte{0xA5}, 64)
	for i := 0; i < n; i++ {
		m.Entries = append(m.Entries, Entry{
			Path: fmt.Sprintf("d%03d/f%06d", i/1000, i), Type: TypeFile, Mode: 0o644, UID: gen, GID: gen,
			Xattrs: []Xattr{{Name: "user.pad", Value: pad}},
		})
	}
	return m
}

func TestWriteFile(t *testing.T) {
	small := wrManifest(1, 3)
	smallBytes, err := small.Bytes()
	must(t, err)
	other := wrManifest(2, 3)
	tests := []struct {
		name      string
		setup     func(t *testing.T, p string)
		m         *Manifest
		wantWrote bool
	}{
		{"new file", func(t *testing.T, p string) {}, small, true},
		{"identical bytes skip the write", func(t *testing.T, p string) { must(t, os.WriteFile(p, smallBytes, 0o644)) }, small, false},
		{"different bytes", func(t *testing.T, p string) { must(t, os.WriteFile(p, smallBytes, 0o644)) }, other, true},
		{"same size, other bytes", func(t *testing.T, p string) {
			b := bytes.Clone(smallBytes)
			b[len(b)-2] ^= 1
			must(t, os.WriteFile(p, b, 0o644))
		}, small, true},
		{"old file mode 0600 becomes 0644", func(t *testing.T, p string) { must(t, os.WriteFile(p, []byte("old"), 0o600)) }, small, true},
		{"symlink is replaced, its target untouched", func(t *testing.T, p string) {
			target := filepath.Join(filepath.Dir(filepath.Dir(p)), "outside")
			must(t, os.WriteFile(target, smallBytes, 0o600))
			must(t, os.Symlink(target, p))
		}, small, true},
		{"fifo is replaced without blocking", func(t *testing.T, p string) { must(t, syscall.Mkfifo(p, 0o644)) }, small, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			base := t.TempDir()
			dir := filepath.Join(base, "repo")
			must(t, os.Mkdir(dir, 0o755))
			p := filepath.Join(dir, ".gitmeta")
			tc.setup(t, p)
			var before os.FileInfo
			if !tc.wantWrote {
				before, _ = os.Lstat(p)
			}
			wrote, err := WriteFile(p, tc.m)
			if err != nil {
				t.Fatal(err)
			}
			if wrote != tc.wantWrote {
				t.Errorf("wrote = %v, want %v", wrote, tc.wantWrote)
			}
			fi, err := os.Lstat(p)
			must(t, err)
			if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o644 {
				t.Errorf("mode %v, want regular 0644", fi.Mode())
			}
			if before != nil && !os.SameFile(before, fi) {
				t.Errorf("identical write replaced the file")
			}
			got, err := os.ReadFile(p)
			must(t, err)
			want, _ := tc.m.Bytes()
			if !bytes.Equal(got, want) {
				t.Errorf("content differs")
			}
			if out, err := os.ReadFile(filepath.Join(base, "outside")); err == nil && !bytes.Equal(out, smallBytes) {
				t.Errorf("the symlink's target was written through")
			}
			ents, _ := os.ReadDir(dir)
			if len(ents) != 1 {
				t.Errorf("leftover files in the directory: %v", ents)
			}
		})
	}
}

func TestWriteBytesPerm(t *testing.T) {
	old := syscall.Umask(0o077)
	defer syscall.Umask(old)
	p := filepath.Join(t.TempDir(), "merged")
	wrote, err := WriteBytes(p, []byte("x\n"), 0o640)
	if err != nil || !wrote {
		t.Fatalf("WriteBytes = %v, %v", wrote, err)
	}
	fi, _ := os.Stat(p)
	if fi.Mode().Perm() != 0o640 {
		t.Errorf("perm %v, want 0640 regardless of the umask", fi.Mode().Perm())
	}
	if wrote, err := WriteBytes(p, []byte("x\n"), 0o640); wrote || err != nil {
		t.Errorf("second write = %v, %v; want skipped", wrote, err)
	}
}

func TestWriteBytesErrorNamesPath(t *testing.T) {
	p := filepath.Join(t.TempDir(), "no", "such", "dir", ".gitmeta")
	_, err := WriteBytes(p, []byte("x"), 0o644)
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("error %v does not name %s", err, p)
	}
}

// writeLoop is the helper-process body for TestWriteFileKill: it writes
// successive generations of a large manifest until it is killed.
func writeLoop() {
	p := os.Getenv("ONESIS_WRITE_PATH")
	gen, _ := strconv.Atoi(os.Getenv("ONESIS_WRITE_GEN"))
	n, _ := strconv.Atoi(os.Getenv("ONESIS_WRITE_N"))
	m := wrManifest(0, n)
	for ; ; gen++ {
		for i := range m.Entries {
			m.Entries[i].UID, m.Entries[i].GID = uint32(gen), uint32(gen)
		}
		if _, err := WriteFile(p, m); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(5)
		}
		fmt.Println("wrote", gen)
	}
}

// TestWriteFileKill SIGKILLs a writer of a ~30 MB .gitmeta at random
// moments: every time, the file must parse and be one whole generation.
// Each writer is killed only after it has finished its first write (it
// says so on stdout), at a random moment of a later one, so every trial
// proves something however slow the machine is.
func TestWriteFileKill(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	const n = 200000
	dir := t.TempDir()
	p := filepath.Join(dir, ".gitmeta")
	if _, err := WriteFile(p, wrManifest(0, n)); err != nil {
		t.Fatal(err)
	}
	if fi, _ := os.Stat(p); fi.Size() < 25<<20 {
		t.Fatalf("test manifest is only %d bytes", fi.Size())
	}
	lastGen := uint32(0)
	changed := 0
	for trial := 0; trial < 20; trial++ {
		start := (trial + 1) * 1000
		cmd := exec.Command(os.Args[0], "-test.run=^TestApplyHelperProcess$")
		cmd.Env = append(os.Environ(), "ONESIS_APPLY_HELPER=write", "ONESIS_WRITE_PATH="+p,
			"ONESIS_WRITE_GEN="+strconv.Itoa(start), "ONESIS_WRITE_N="+strconv.Itoa(n))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.StdoutPipe()
		must(t, err)
		must(t, cmd.Start())
		first := make(chan bool, 1)
		go func() {
			sc := bufio.NewScanner(out)
			first <- sc.Scan()
			for sc.Scan() {
			}
		}()
		select {
		case ok := <-first:
			if !ok {
				cmd.Wait()
				t.Fatalf("trial %d: the writer ended before its first write: %s", trial, stderr.String())
			}
		case <-time.After(5 * time.Minute):
			cmd.Process.Kill()
			t.Fatalf("trial %d: the writer did not finish one write in 5 minutes", trial)
		}
		time.Sleep(time.Duration(rand.IntN(800)) * time.Millisecond)
		must(t, cmd.Process.Kill())
		cmd.Wait()
		if strings.Contains(stderr.String(), "writing") {
			t.Fatalf("writer failed: %s", stderr.String())
		}

		f, err := os.Open(p)
		must(t, err)
		m, err := Parse(f)
		f.Close()
		if err != nil {
			t.Fatalf("trial %d: .gitmeta does not parse after SIGKILL: %v", trial, err)
		}
		if len(m.Entries) != n+1 {
			t.Fatalf("trial %d: %d entries, want %d", trial, len(m.Entries), n+1)
		}
		gen := m.Entries[0].UID
		for i := range m.Entries {
			if m.Entries[i].UID != gen || m.Entries[i].GID != gen {
				t.Fatalf("trial %d: entry %s is from generation %d, entry . from %d: a mix of versions", trial, m.Entries[i].Path, m.Entries[i].UID, gen)
			}
		}
		if gen != lastGen && !(gen >= uint32(start) && gen < uint32(start+1000)) {
			t.Fatalf("trial %d: generation %d is neither the old one (%d) nor one this writer made", trial, gen, lastGen)
		}
		if gen != lastGen {
			changed++
		}
		lastGen = gen
	}
	if changed != 20 {
		t.Errorf("%d of 20 trials left a new generation, though every writer finished a write before it was killed", changed)
	}
	ents, _ := os.ReadDir(dir)
	t.Logf("%d of 20 kills left a new version; %d stale temporary files left beside .gitmeta", changed, len(ents)-1)
}
