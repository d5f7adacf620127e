package nfsroot

import (
	"bytes"
	"errors"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// mountAs mounts export over go-nfs-client with an AUTH_UNIX credential.
func mountAs(t *testing.T, port int, export string, uid, gid uint32) (*nfsc.Target, error) {
	t.Helper()
	var client *rpc.Client
	var err error
	for i := 0; i < 5; i++ { // a random privileged source port may be taken
		client, err = nfsc.DialServiceAtPort("127.0.0.1", port)
		if err == nil {
			break
		}
	}
	if err != nil {
		t.Fatalf("dialing the NFS server: %v", err)
	}
	t.Cleanup(client.Close)
	m := &nfsc.Mount{Client: client}
	return m.Mount(export, rpc.NewAuthUnix("node1", uid, gid).Auth())
}

func mustMount(t *testing.T, port int, export string, uid, gid uint32) *nfsc.Target {
	t.Helper()
	tg, err := mountAs(t, port, export, uid, gid)
	if err != nil {
		t.Fatalf("MOUNT %s as uid %d: %v", export, uid, err)
	}
	return tg
}

func readAll(t *testing.T, tg *nfsc.Target, p string) ([]byte, error) {
	t.Helper()
	f, err := tg.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out bytes.Buffer
	buf := make([]byte, 64<<10)
	for i := 0; i < 1000; i++ {
		n, err := f.Read(buf)
		out.Write(buf[:n])
		if errors.Is(err, io.EOF) {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
	return nil, errors.New("read did not end")
}

func TestCommitExportOverNFS(t *testing.T) {
	fx := newFixture(t)
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)

	// Hidden names and the top-level listing.
	got := listing(t, tg, "/")
	want := "big.bin bin dev etc hello.link owned root secret600 tmp usr var"
	if got != want {
		t.Errorf("top-level listing:\n got %s\nwant %s", got, want)
	}

	commitTime := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		path         string
		typ          uint32
		mode         uint32
		uid, gid     uint32
		size         int64
		nlink        uint32
		major, minor uint32
	}{
		{path: "bin/suid", typ: nfsc.NF3Reg, mode: 04755, size: 12, nlink: 1},
		{path: "bin/sgid", typ: nfsc.NF3Reg, mode: 02755, size: 12, nlink: 1},
		{path: "tmp", typ: nfsc.NF3Dir, mode: 01777, nlink: 2},
		{path: "var/empty", typ: nfsc.NF3Dir, mode: 0711, nlink: 2},
		{path: "owned", typ: nfsc.NF3Reg, mode: 0640, uid: 1234, gid: 5678, size: 19, nlink: 1},
		{path: "dev/null", typ: nfsc.NF3Chr, mode: 0666, nlink: 1, major: 1, minor: 3},
		{path: "dev/initctl", typ: nfsc.NF3FIFO, mode: 0600, nlink: 1},
		{path: "hello.link", typ: nfsc.NF3Lnk, mode: 0777, size: int64(len("/usr/bin/hello")), nlink: 1},
		{path: "usr/bin/editor", typ: nfsc.NF3Reg, mode: 0755, size: 22, nlink: 2},
		{path: "usr/bin/vi", typ: nfsc.NF3Reg, mode: 0755, size: 22, nlink: 2},
		{path: "etc/shadow", typ: nfsc.NF3Reg, mode: 0600, size: 0, nlink: 1},                // placeholder
		{path: "root/.ssh/authorized_keys", typ: nfsc.NF3Reg, mode: 0600, size: 0, nlink: 1}, // placeholder
		{path: "root/.ssh", typ: nfsc.NF3Dir, mode: 0700, nlink: 2},
		{path: "secret600", typ: nfsc.NF3Reg, mode: 0600, size: 17, nlink: 1},
		{path: "usr", typ: nfsc.NF3Dir, mode: 0755, nlink: 3},
	}
	for _, tc := range tests {
		fi, _, err := tg.Lookup(tc.path)
		if err != nil {
			t.Errorf("lookup %s: %v", tc.path, err)
			continue
		}
		a := fi.(*nfsc.Fattr)
		if a.Type != tc.typ || a.FileMode&07777 != tc.mode || a.UID != tc.uid || a.GID != tc.gid ||
			int64(a.Filesize) != tc.size || a.Nlink != tc.nlink || a.SpecData != [2]uint32{tc.major, tc.minor} {
			t.Errorf("%s: type=%d mode=%#o uid=%d gid=%d size=%d nlink=%d dev=%v; want type=%d mode=%#o uid=%d gid=%d size=%d nlink=%d dev=%d,%d",
				tc.path, a.Type, a.FileMode&07777, a.UID, a.GID, a.Filesize, a.Nlink, a.SpecData,
				tc.typ, tc.mode, tc.uid, tc.gid, tc.size, tc.nlink, tc.major, tc.minor)
		}
		if !a.ModTime().Equal(commitTime) {
			t.Errorf("%s: mtime %v, want the commit time %v", tc.path, a.ModTime(), commitTime)
		}
	}
	// Hard links share a file id; other files do not.
	ed, _, _ := tg.Lookup("usr/bin/editor")
	vi, _, _ := tg.Lookup("usr/bin/vi")
	he, _, _ := tg.Lookup("usr/bin/hello")
	if ed.(*nfsc.Fattr).Fileid != vi.(*nfsc.Fattr).Fileid || ed.(*nfsc.Fattr).Fileid == he.(*nfsc.Fattr).Fileid {
		t.Errorf("file ids: editor %d vi %d hello %d; want editor == vi != hello",
			ed.(*nfsc.Fattr).Fileid, vi.(*nfsc.Fattr).Fileid, he.(*nfsc.Fattr).Fileid)
	}
	// Hidden names cannot be looked up either.
	for _, p := range []string{".git", ".gitmeta", ".gitignore", ".git/HEAD"} {
		if _, _, err := tg.Lookup(p); err == nil {
			t.Errorf("lookup %s succeeded; it must be hidden", p)
		}
	}

	// Raw symlink target.
	f, err := tg.Open("hello.link")
	if err != nil {
		t.Fatal(err)
	}
	if target, err := f.Readlink(); err != nil || target != "/usr/bin/hello" {
		t.Errorf("readlink hello.link = %q, %v; want /usr/bin/hello", target, err)
	}

	// Contents.
	for p, want := range map[string]string{
		"secret600":                 "root-only-secret\n",
		"etc/passwd":                "root:x:0:0:root:/root:/bin/sh\n",
		"etc/shadow":                "",
		"root/.ssh/authorized_keys": "",
		"usr/bin/vi":                "#!/bin/sh\necho editor\n",
	} {
		got, err := readAll(t, tg, p)
		if err != nil || string(got) != want {
			t.Errorf("read %s as root = %q, %v; want %q", p, got, err, want)
		}
	}
	if got, err := readAll(t, tg, "big.bin"); err != nil || !bytes.Equal(got, fx.big) {
		t.Errorf("read big.bin: %d bytes, %v; want %d identical bytes", len(got), err, len(fx.big))
	}
}

func TestMountAuthorization(t *testing.T) {
	fx := newFixture(t)
	other := strings.Repeat("ab", 20)
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(other)}, "127.0.0.1:0")
	for _, export := range []string{"/c/" + fx.commit, "/", "/etc", "/c/" + other[:12], "/w/node1"} {
		if _, err := mountAs(t, ts.port, export, 0, 0); err == nil {
			t.Errorf("MOUNT %s succeeded for an unauthorized client", export)
		}
	}
	// Authorized, but the commit does not exist in the repository.
	if _, err := mountAs(t, ts.port, "/c/"+other, 0, 0); err == nil {
		t.Errorf("MOUNT of a commit missing from the repo succeeded")
	}

	if st := ts.srv.Stats(); st.MountsRefused != 6 || st.MountsGranted != 0 {
		t.Errorf("stats %+v: want 6 mounts refused, none granted", st)
	}
	// A nil Authorize refuses everything.
	ts2 := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir()}, "127.0.0.1:0")
	if _, err := mountAs(t, ts2.port, "/c/"+fx.commit, 0, 0); err == nil {
		t.Errorf("MOUNT succeeded without an Authorize function")
	}
}

func TestHandlesStableAcrossRestart(t *testing.T) {
	fx := newFixture(t)
	state := t.TempDir()
	cfg := Config{Objects: openGit(t, fx.repo), StateDir: state, Authorize: allowCommits(fx.commit)}
	ts := startServer(t, cfg, "127.0.0.1:0")
	tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)
	paths := []string{"bin/suid", "usr/bin/vi", "tmp", "dev/null", "etc/passwd"}
	before := map[string][]byte{}
	for _, p := range paths {
		_, fh, err := tg.Lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		before[p] = fh
	}
	ts.stop()

	ts2 := startServer(t, cfg, "127.0.0.1:0")
	tg2 := mustMount(t, ts2.port, "/c/"+fx.commit, 0, 0)
	for _, p := range paths {
		_, fh, err := tg2.Lookup(p)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(fh, before[p]) {
			t.Errorf("%s: handle changed across a restart: %x -> %x", p, before[p], fh)
		}
		// The old handle works on the new server without a new lookup.
		if _, err := tg2.GetAttr(before[p]); err != nil {
			t.Errorf("%s: GETATTR with the pre-restart handle: %v", p, err)
		}
	}
	// A forged handle (one bit flipped anywhere) is refused.
	fh := before["etc/passwd"]
	for _, i := range []int{0, 21, 27, len(fh) - 1} {
		forged := bytes.Clone(fh)
		forged[i] ^= 1
		if _, err := tg2.GetAttr(forged); err == nil {
			t.Errorf("GETATTR with a handle forged at byte %d succeeded", i)
		}
	}
	if _, err := tg2.GetAttr(fh[:20]); err == nil {
		t.Errorf("GETATTR with a truncated handle succeeded")
	}
	// A different state dir (different key) gives different handles.
	ts3 := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	tg3 := mustMount(t, ts3.port, "/c/"+fx.commit, 0, 0)
	if _, err := tg3.GetAttr(fh); err == nil {
		t.Errorf("a handle signed with another key was accepted")
	}
	if st, err := os.Stat(state + "/" + keyFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("handle key: %v, %v; want a 0600 file", st, err)
	}
}

func TestPermissionsEnforced(t *testing.T) {
	fx := newFixture(t)
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	export := "/c/" + fx.commit
	root := mustMount(t, ts.port, export, 0, 0)
	user := mustMount(t, ts.port, export, 1000, 1000)
	group := mustMount(t, ts.port, export, 1000, 5678)

	tests := []struct {
		who      string
		tg       *nfsc.Target
		path     string
		readable bool
	}{
		{"root", root, "secret600", true},
		{"uid 1000", user, "secret600", false},
		{"uid 1000", user, "etc/passwd", true},
		{"uid 1000", user, "owned", false},
		{"uid 1000 in group 5678", group, "owned", true},
		{"uid 1000", user, "root/notes", false}, // root/ is 0700: no search
		{"root", root, "root/notes", true},
	}
	for _, tc := range tests {
		got, err := readAll(t, tc.tg, tc.path)
		if tc.readable && err != nil {
			t.Errorf("%s reading %s: %v; want success", tc.who, tc.path, err)
		}
		if !tc.readable && (err == nil || len(got) > 0) {
			t.Errorf("%s read %s: %q, %v; want permission denied", tc.who, tc.path, got, err)
		}
		if !tc.readable && err != nil && !strings.Contains(err.Error(), "ACCES") && !strings.Contains(strings.ToLower(err.Error()), "permission") {
			t.Errorf("%s reading %s: error %v; want NFS3ERR_ACCES", tc.who, tc.path, err)
		}
	}

	// ACCESS is cut down to what the mode allows.
	accessTests := []struct {
		who  string
		tg   *nfsc.Target
		path string
		ask  uint32
		want uint32
	}{
		{"uid 1000", user, "secret600", 0x3f, 0},
		{"root", root, "secret600", 0x01, 0x01},
		{"uid 1000", user, "etc/passwd", 0x21, 0x01},
		{"uid 1000", user, "bin/suid", 0x21, 0x21},
		{"uid 1000", user, "tmp", 0x03, 0x03},
		{"uid 1000", user, "root", 0x03, 0},
	}
	for _, tc := range accessTests {
		got, err := tc.tg.Access(tc.path, tc.ask)
		if err != nil || got != tc.want {
			t.Errorf("%s ACCESS %s %#x = %#x, %v; want %#x", tc.who, tc.path, tc.ask, got, err, tc.want)
		}
	}
	if st := ts.srv.Stats(); st.MountsGranted != 3 || st.Denied == 0 || st.Connections != 3 || st.Commits != 1 {
		t.Errorf("stats %+v: want 3 mounts granted, some denials, 3 connections, 1 commit", st)
	}
	// Listing a directory without read permission is refused.
	if _, err := user.ReadDirPlus("root"); err == nil {
		t.Errorf("uid 1000 listed root/ (0700)")
	}
	if _, err := root.ReadDirPlus("root"); err != nil {
		t.Errorf("root listing root/: %v", err)
	}
}

// TestHandleOfUnauthorizedCommitRefused: a valid, signed handle of a commit
// the client may not mount (say, learnt from another node) is refused.
func TestHandleOfUnauthorizedCommitRefused(t *testing.T) {
	fx := newFixture(t)
	if err := os.WriteFile(fx.repo+"/etc/passwd", []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, fx.repo, "git", "commit", "-qam", "second")
	second := run(t, fx.repo, "git", "rev-parse", "HEAD")
	ts := startServer(t, Config{Objects: openGit(t, fx.repo), StateDir: t.TempDir(), Authorize: allowCommits(fx.commit)}, "127.0.0.1:0")
	if err := ts.srv.Prepare(t.Context(), second); err != nil {
		t.Fatal(err)
	}
	tg := mustMount(t, ts.port, "/c/"+fx.commit, 0, 0)
	h := (*handler)(ts.srv)
	e, err := ts.srv.index(t.Context(), ts.srv.mustResolve(t, second))
	if err != nil {
		t.Fatal(err)
	}
	foreign := h.ToHandle(e.fs, []string{"etc", "passwd"})
	if _, _, err := h.FromHandle(foreign); err != nil {
		t.Fatalf("the handle itself is valid: %v", err)
	}
	if _, err := tg.GetAttr(foreign); err == nil {
		t.Errorf("GETATTR with a handle of an unauthorized commit succeeded")
	}
	if _, _, err := tg.Lookup("etc/passwd"); err != nil {
		t.Errorf("the authorized commit still works: %v", err)
	}
}

// listing is a directory's names as READDIRPLUS gives them, sorted and
// joined by spaces.
func listing(t *testing.T, tg *nfsc.Target, dir string) string {
	t.Helper()
	ents, err := tg.ReadDirPlus(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	sort.Strings(names)
	return strings.Join(names, " ")
}
