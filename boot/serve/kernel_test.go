package serve

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestServedKernelMatchesInitramfs is the proof that serve boots the
// kernel whose modules are in the initramfs it serves next to it, with the
// real initramfs builder. The image has two kernels, each with its own
// modules; the case names say which one the image marks as its kernel.
func TestServedKernelMatchesInitramfs(t *testing.T) {
	const oldV, newV = "6.1.0-57-amd64", "9.9.9-zz"
	kernels := map[string][]byte{oldV: testkit.BzImage(oldV), newV: testkit.BzImage(newV)}
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, dir string)
		want  string
	}{
		// boot/vmlinuz -> the newer one, as a kernel package leaves it.
		{"symlink to the newer", func(t *testing.T, dir string) {
			sh(t, dir, "ln", "-s", "vmlinuz-"+newV, "boot/vmlinuz")
		}, newV},
		// boot/vmlinuz -> the older one, although a newer is installed.
		{"symlink to the older", func(t *testing.T, dir string) {
			sh(t, dir, "ln", "-s", "/boot/vmlinuz-"+oldV, "boot/vmlinuz")
		}, oldV},
		// The case: boot/vmlinuz a plain copy of the older kernel.
		// Before, the initramfs took the newer kernel's modules.
		{"plain copy of the older", func(t *testing.T, dir string) {
			write(t, dir, "boot/vmlinuz", string(kernels[oldV]))
		}, oldV},
		// No marker: the newest by version.
		{"no boot/vmlinuz", func(t *testing.T, dir string) {}, newV},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sh(t, dir, "git", "init", "-q", "-b", "main")
			for v, k := range kernels {
				write(t, dir, "boot/vmlinuz-"+v, string(k))
				md := "lib/modules/" + v + "/"
				write(t, dir, md+"modules.dep", "kernel/drivers/net/virtio_net.ko:\n")
				write(t, dir, md+"kernel/drivers/net/virtio_net.ko", "virtio_net for "+v)
			}
			tc.setup(t, dir)
			sh(t, dir, "git", "add", "-A")
			sh(t, dir, "git", "commit", "-q", "-m", "two kernels")
			commit := sh(t, dir, "git", "rev-parse", "HEAD")

			initBin := filepath.Join(t.TempDir(), "onesis-init")
			if err := os.WriteFile(initBin, []byte("fake init\n"), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := newInitrd(InitrdParams{RepoDir: dir, InitPath: initBin})
			if err != nil {
				t.Fatal(err)
			}
			a, err := NewGitArtifacts(dir, t.TempDir(), b)
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			kb, err := a.Kernel(ctx, commit)
			if err != nil {
				t.Fatal(err)
			}
			served, _ := io.ReadAll(kb.Content)
			kb.Content.Close()
			if !bytes.Equal(served, kernels[tc.want]) {
				t.Errorf("served a kernel that is not %s", tc.want)
			}
			ib, err := a.Initrd(ctx, commit)
			if err != nil {
				t.Fatal(err)
			}
			defer ib.Content.Close()
			zr, err := gzip.NewReader(ib.Content)
			if err != nil {
				t.Fatal(err)
			}
			cpio, err := io.ReadAll(zr)
			if err != nil {
				t.Fatal(err)
			}
			for v := range kernels {
				has := bytes.Contains(cpio, []byte("virtio_net for "+v)) && bytes.Contains(cpio, []byte("lib/modules/"+v+"/"))
				if has != (v == tc.want) {
					t.Errorf("initramfs has the modules of %s: %v; the served kernel is %s", v, has, tc.want)
				}
			}
			if t.Failed() {
				t.Logf("initramfs names: %q", strings.Join(strings.Fields(string(bytes.Map(func(r rune) rune {
					if r < ' ' || r > '~' {
						return ' '
					}
					return r
				}, cpio))), " "))
			}
		})
	}
}
