package main

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/u-root/u-root/pkg/cpio"
)

// stockInit stands in for initramfs-tools' /init on the stock path: klibc
// ipconfig does DHCP and writes /run/net-eth0.conf as initramfs-tools
// does, the root is mounted read-only on ${rootmnt}, the documented
// nfs-bottom script runs, and klibc run-init switches to the image. The
// mount uses busybox with port= and mountport= because the test-only
// server has no portmapper for klibc nfsmount.
const stockInit = `#!/bin/sh
export PATH=/bin
mkdir -p /proc /sys /dev /run /root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs -o mode=0755 tmpfs /run
for m in $(cat /etc/onesis/modules); do modprobe "$m" 2>/dev/null; done
ipconfig -t 20 -c dhcp -d eth0 >/dev/null
. /run/net-eth0.conf
echo "STOCK: ipconfig IPV4ADDR=$IPV4ADDR HOSTNAME=$HOSTNAME"
mount -t nfs -o ro,nolock,vers=3,proto=tcp,port=2049,mountport=2049 "$NFSROOT" /root || { echo "STOCK: mount failed"; poweroff -f; }
export rootmnt=/root
/scripts/nfs-bottom/onesis
echo "STOCK: nfs-bottom done"
for d in dev proc sys run; do mount --move /$d /root/$d; done
exec run-init /root /sbin/init
`

// stockFunctions stands in for initramfs-tools' /scripts/functions.
const stockFunctions = `log_begin_msg() { echo "Begin: $*"; }
log_end_msg() { echo "done."; }
panic() { echo "PANIC: $*"; poweroff -f; }
`

// documentedNFSBottom returns the nfs-bottom script exactly as
// docs/initramfs.md shows it.
func documentedNFSBottom(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "initramfs.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)`/etc/initramfs-tools/scripts/nfs-bottom/onesis`:\\s*```sh\\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/initramfs.md has no nfs-bottom/onesis script")
	}
	return string(m[1])
}

// stockOverlay is a second cpio appended to the initramfs (the kernel
// unpacks both; later files win): the stand-in /init, busybox, klibc's
// ipconfig and run-init, onesis-init as /bin/onesis-init (where the
// documented hook copies it), and the documented nfs-bottom script.
func stockOverlay(t *testing.T, initBin []byte, nfsroot string) []byte {
	t.Helper()
	read := func(p string) []byte {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatalf("%v (klibc-utils and busybox-static provide it)", err)
		}
		return b
	}
	bb, _ := filepath.Glob("/bin/busybox")
	if len(bb) == 0 {
		t.Fatal("no /bin/busybox (busybox-static)")
	}
	klibc, _ := filepath.Glob("/usr/lib/klibc-*.so")
	if len(klibc) != 1 {
		t.Fatalf("want one /usr/lib/klibc-*.so, found %v (klibc-utils)", klibc)
	}
	init := strings.Replace(stockInit, `"$NFSROOT"`, nfsroot, 1)
	recs := []cpio.Record{
		cpio.Directory("bin", 0o755),
		cpio.Directory("lib", 0o755),
		cpio.Directory("scripts", 0o755),
		cpio.Directory("scripts/nfs-bottom", 0o755),
		cpio.StaticFile("init", init, 0o755),
		cpio.StaticRecord(read(bb[0]), cpio.Info{Name: "bin/busybox", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(read("/usr/lib/klibc/bin/ipconfig"), cpio.Info{Name: "bin/ipconfig", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(read("/usr/lib/klibc/bin/run-init"), cpio.Info{Name: "bin/run-init", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(read(klibc[0]), cpio.Info{Name: "lib/" + filepath.Base(klibc[0]), Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticRecord(initBin, cpio.Info{Name: "bin/onesis-init", Mode: cpio.S_IFREG | 0o755}),
		cpio.StaticFile("scripts/functions", stockFunctions, 0o644),
		cpio.StaticFile("scripts/nfs-bottom/onesis", documentedNFSBottom(t), 0o755),
	}
	for _, a := range []string{"sh", "mkdir", "mount", "cat", "modprobe", "poweroff", "echo"} {
		recs = append(recs, cpio.Symlink("bin/"+a, "busybox"))
	}
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	w := cpio.Newc.Writer(gz)
	for i, r := range recs {
		r.Ino = uint64(1000 + i)
		r.NLink = 1
		if err := w.WriteRecord(cpio.MakeReproducible(r)); err != nil {
			t.Fatal(err)
		}
	}
	if err := cpio.WriteTrailer(w); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
