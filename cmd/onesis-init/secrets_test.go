package main

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/onesis/git-onesis/boot/cmdline"
)

func TestUnpackSecrets(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	add := func(h *tar.Header, body string) {
		h.Size = int64(len(body))
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		tw.Write([]byte(body))
	}
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, "")
	add(&tar.Header{Name: "etc/shadow", Typeflag: tar.TypeReg, Mode: 0o640, Uid: os.Getuid(), Gid: os.Getgid()}, "root:hash:1::::::\n")
	add(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o600}, "x")
	add(&tar.Header{Name: "etc/ssh/ssh_host_ed25519_key", Typeflag: tar.TypeReg, Mode: 0o600}, "KEY")
	add(&tar.Header{Name: "etc/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"}, "")
	add(&tar.Header{Name: "etc/no-placeholder", Typeflag: tar.TypeReg, Mode: 0o600}, "y")
	tw.Close()

	base := t.TempDir()
	var mounted []string
	placed, err := unpackSecrets(&buf, base, func(rel, src string) error {
		if rel == "etc/no-placeholder" {
			return os.ErrNotExist
		}
		mounted = append(mounted, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"etc/shadow", "escape", "etc/ssh/ssh_host_ed25519_key"}
	if !reflect.DeepEqual(placed, want) || !reflect.DeepEqual(mounted, want) {
		t.Errorf("placed %v, mounted %v; want %v", placed, mounted, want)
	}
	// "../escape" is cleaned to stay inside base; nothing is written above it.
	if _, err := os.Stat(filepath.Join(filepath.Dir(base), "escape")); err == nil {
		t.Error("a ../ path escaped the secrets directory")
	}
	fi, err := os.Stat(filepath.Join(base, "etc/shadow"))
	if err != nil || fi.Mode().Perm() != 0o640 || fi.Size() != int64(len("root:hash:1::::::\n")) {
		t.Errorf("etc/shadow: %v %v", fi, err)
	}
	if _, err := os.Lstat(filepath.Join(base, "etc/link")); err == nil {
		t.Error("a symlink from the archive was created")
	}
	// A truncated archive is an error, not a partial success in silence.
	if _, err := unpackSecrets(bytes.NewReader(buf.Bytes()[:700]), t.TempDir(), func(string, string) error { return nil }); err == nil {
		t.Error("a truncated archive was accepted")
	}
}

func TestSecretsArgument(t *testing.T) {
	for _, tt := range []struct {
		arg  string
		want string
		bad  bool
	}{
		{"onesis.secrets=http://10.77.0.1:8080/n/n1/secrets", "http://10.77.0.1:8080/n/n1/secrets", false},
		{"onesis.secrets=https://10.77.0.1/n/n1/secrets", "", true},
		{"onesis.secrets=http://user:pw@10.77.0.1/x", "", true},
		{"onesis.secrets=/n/n1/secrets", "", true},
	} {
		c, err := cmdline.Parse("nfsroot=10.77.0.1:/c/x " + tt.arg)
		if (err != nil) != tt.bad || (!tt.bad && c.Secrets != tt.want) {
			t.Errorf("%s: %+v %v", tt.arg, c, err)
		}
	}
}
