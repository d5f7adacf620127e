package nfsroot

import (
	"bytes"
	"crypto/sha256"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fixture is a real git repository with one commit whose .gitmeta carries
// everything git cannot: special mode bits, foreign owners, a device, a
// fifo, empty dirs, a hard-link pair, plus secrets.
type fixture struct {
	repo   string
	commit string
	big    []byte // content of big.bin
}

const fixtureGitmeta = `#mtree v2.0
# git-onesis .gitmeta v1 (numeric ids; sorted by path; one self-contained line per object; see docs/gitmeta.md)
.  mode=0755  uid=0  gid=0  type=dir
./big.bin  mode=0644  uid=0  gid=0  type=file
./bin  mode=0755  uid=0  gid=0  type=dir
./bin/sgid  mode=02755  uid=0  gid=0  type=file
./bin/suid  mode=04755  uid=0  gid=0  type=file
./dev  mode=0755  uid=0  gid=0  type=dir
./dev/initctl  mode=0600  uid=0  gid=0  type=fifo
./dev/null  mode=0666  uid=0  gid=0  type=char  device=native,1,3
./etc  mode=0755  uid=0  gid=0  type=dir
./etc/passwd  mode=0644  uid=0  gid=0  type=file
./etc/shadow  mode=0640  uid=0  gid=42  type=file
./hello.link  mode=0777  uid=0  gid=0  type=link  link=/usr/bin/hello
./owned  mode=0640  uid=1234  gid=5678  type=file
./root  mode=0700  uid=0  gid=0  type=dir
./root/.ssh  mode=0700  uid=0  gid=0  type=dir
./root/.ssh/authorized_keys  mode=0600  uid=0  gid=0  type=file
./root/notes  mode=0644  uid=0  gid=0  type=file
./secret600  mode=0600  uid=0  gid=0  type=file
./tmp  mode=01777  uid=0  gid=0  type=dir  empty=1
./usr  mode=0755  uid=0  gid=0  type=dir
./usr/bin  mode=0755  uid=0  gid=0  type=dir
./usr/bin/editor  mode=0755  uid=0  gid=0  type=file
./usr/bin/hello  mode=0755  uid=0  gid=0  type=file
./usr/bin/vi  mode=0755  uid=0  gid=0  type=file  hardlink=./usr/bin/editor
./var  mode=0755  uid=0  gid=0  type=dir
./var/empty  mode=0711  uid=0  gid=0  type=dir  empty=1
`

func run(t testing.TB, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com",
		"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z",
		"GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	dir := t.TempDir()
	run(t, dir, "git", "init", "-q", "-b", "main")
	files := map[string]string{
		"bin/sgid":                  "sgid binary\n",
		"bin/suid":                  "suid binary\n",
		"etc/passwd":                "root:x:0:0:root:/root:/bin/sh\n",
		"etc/shadow":                "root:$6$notreallysecret:19000:0:99999:7:::\n",
		"owned":                     "owned by 1234:5678\n",
		"root/.ssh/authorized_keys": "ssh-ed25519 AAAA secret-key\n",
		"root/notes":                "root notes\n",
		"secret600":                 "root-only-secret\n",
		"usr/bin/editor":            "#!/bin/sh\necho editor\n",
		"usr/bin/vi":                "#!/bin/sh\necho editor\n",
		"usr/bin/hello":             "#!/bin/sh\necho hello\n",
		".gitmeta":                  fixtureGitmeta,
		".gitignore":                "/proc/*\n",
	}
	for p, c := range files {
		full := filepath.Join(dir, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A file larger than one READ, with content that shows misplaced bytes.
	var big bytes.Buffer
	for i := 0; big.Len() < 300<<10; i++ {
		s := sha256.Sum256([]byte{byte(i), byte(i >> 8)})
		big.Write(s[:])
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"bin/suid", "bin/sgid", "usr/bin/editor", "usr/bin/vi", "usr/bin/hello"} {
		os.Chmod(filepath.Join(dir, p), 0o755)
	}
	if err := os.Symlink("/usr/bin/hello", filepath.Join(dir, "hello.link")); err != nil {
		t.Fatal(err)
	}
	run(t, dir, "git", "add", "-A")
	run(t, dir, "git", "commit", "-q", "-m", "image")
	return &fixture{repo: dir, commit: run(t, dir, "git", "rev-parse", "HEAD"), big: big.Bytes()}
}

// allowCommits authorizes 127.0.0.1 for the given commits only.
func allowCommits(commits ...string) func(net.IP, string) (Export, bool) {
	return func(ip net.IP, export string) (Export, bool) {
		if !ip.IsLoopback() {
			return Export{}, false
		}
		for _, c := range commits {
			if export == "/c/"+c {
				return Export{Commit: c}, true
			}
		}
		return Export{}, false
	}
}

type testServer struct {
	srv  *Server
	addr string
	port int
	done chan error
	once sync.Once
}

func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startServer(t testing.TB, cfg Config, addr string) *testServer {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	ts := &testServer{srv: srv, addr: l.Addr().String(), port: l.Addr().(*net.TCPAddr).Port, done: make(chan error, 1)}
	go func() { ts.done <- srv.Serve(l) }()
	t.Cleanup(ts.stop)
	return ts
}

func (ts *testServer) stop() {
	ts.once.Do(func() {
		ts.srv.Close()
		select {
		case <-ts.done:
		case <-time.After(10 * time.Second):
		}
	})
}

func (s *Server) mustResolve(t testing.TB, rev string) ID {
	t.Helper()
	h, err := s.resolve(rev)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func mustID(t testing.TB, s string) ID {
	t.Helper()
	id, ok := ParseID(s)
	if !ok {
		t.Fatalf("%q is not an object id", s)
	}
	return id
}
