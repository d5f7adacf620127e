#!/bin/bash
# serve-qemu-chain.sh: the whole boot chain through `git onesis serve`, once.
#
# Builds a tiny busybox image repository (the kernel and its netboot modules
# from an unpacked Debian kernel package), adds node n1, starts
# `git onesis serve` (DHCP, TFTP, HTTP, portmap, NFS, router advertisements)
# in a private network namespace on a tap device, and PXE-boots QEMU (TCG)
# through its iPXE ROM: DHCP -> HTTP script -> kernel + initramfs ->
# onesis-init -> NFS root -> the image's init, which prints what it sees and
# powers off. Exit 0 when the node ran the expected commit.
#
# Needs root, qemu-system-x86, ipxe, busybox-static, kmod, curl, and
# bin/git-onesis + bin/onesis-init (make build). Traffic stays in the
# namespace (10.77.0.0/24); the script kills only what it started.
#
#   KROOT=/var/cache/git-onesis-test/linux-image-6.1.0-57-amd64 contrib/serve-qemu-chain.sh [serve options, e.g. --no-ra]
#
# MAINT=1 makes n1 a maintenance node booting a linked worktree read-write:
# the node's init then writes /written, which must appear in the worktree.
set -u
BIN=${ONESIS_BIN_DIR:-$(cd "$(dirname "$0")/.." && pwd)/bin}
KROOT=${KROOT:-$(ls -d /var/cache/git-onesis-test/linux-image-*-amd64 2>/dev/null | head -1)}
KVER=$(basename "$(ls "$KROOT"/boot/vmlinuz-* | head -1)" | sed 's/^vmlinuz-//')
[ -x "$BIN/git-onesis" ] && [ -x "$BIN/onesis-init" ] || { echo "no $BIN/git-onesis or onesis-init: run make build" >&2; exit 2; }
[ -n "$KVER" ] || { echo "no unpacked kernel: set KROOT (apt-get download linux-image-...; dpkg-deb -x; depmod -b)" >&2; exit 2; }
W=$(mktemp -d /tmp/onesis-chain.XXXXXX)
IMG=$W/image
NS=onesis-chain-$$
SRV= QPID=
cleanup() { [ -n "$QPID" ] && kill $QPID 2>/dev/null; [ -n "$SRV" ] && kill $SRV 2>/dev/null; wait 2>/dev/null; ip netns del $NS 2>/dev/null; }
trap cleanup EXIT
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid
export PATH=$BIN:$PATH

mkdir -p $IMG/{bin,sbin,etc,proc,sys,dev,run,tmp,ram,boot,lib/modules/$KVER}
cp "$(command -v busybox)" $IMG/bin/busybox
for a in sh cat echo mount hostname grep touch poweroff ls; do ln -s busybox $IMG/bin/$a; done
cat > $IMG/sbin/init <<'INIT'
#!/bin/sh
mount -t proc proc /proc 2>/dev/null
echo "IMAGE-HOSTNAME: $(hostname)"
echo "IMAGE-COMMIT: $(sed -n 's/.*onesis.commit=\([0-9a-f]*\).*/\1/p' /proc/cmdline)"
echo "IMAGE-ROOTMOUNT: $(grep ' / ' /proc/mounts | grep -v rootfs)"
if touch /written 2>/dev/null; then echo "IMAGE-ROOT: writable"; else echo "IMAGE-ROOT: read-only"; fi
echo "IMAGE-SHADOW: [$(cat /etc/shadow)]"
echo IMAGE-DONE
poweroff -f
INIT
chmod 755 $IMG/sbin/init
echo "root:x:0:0:root:/root:/bin/sh" > $IMG/etc/passwd
echo "root:SECRETHASH:19000:0:99999:7:::" > $IMG/etc/shadow && chmod 600 $IMG/etc/shadow
cp $KROOT/boot/vmlinuz-$KVER $IMG/boot/
# The initramfs's default module set and its dependencies, from modules.dep.
for f in $(modprobe -d $KROOT -S $KVER -a --show-depends virtio_pci virtio_net e1000 e1000e igb ixgbe tg3 bnx2 r8169 \
		af_packet sunrpc grace lockd nfs_acl nfs nfsv3 2>/dev/null | awk '$1=="insmod"{print $2}' | sort -u); do
	rel=${f#$KROOT/lib/modules/$KVER/}; mkdir -p $IMG/lib/modules/$KVER/$(dirname $rel); cp $f $IMG/lib/modules/$KVER/$rel
done
cp $KROOT/lib/modules/$KVER/modules.{dep,builtin,order} $IMG/lib/modules/$KVER/
for d in proc sys dev run tmp ram; do touch $IMG/$d/.keep; done
(cd $IMG && git init -q -b main && git add -A && git commit -qm image) || exit 1
HEAD=$(git -C $IMG rev-parse HEAD)
(cd $IMG && git onesis node add n1 --mac 52:54:00:12:34:56 --ip 10.77.0.50 && git onesis node network 10.77.0.0/24 --router 10.77.0.1) || exit 1
if [ -n "${MAINT:-}" ]; then
	git -C $IMG worktree add -q -b update $W/update || exit 1
	(cd $IMG && git onesis node set n1 --maintenance $W/update) || exit 1
fi

ip netns add $NS || exit 1
ip netns exec $NS sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
ip -n $NS link set lo up
ip -n $NS tuntap add dev tap0 mode tap
ip -n $NS addr add 10.77.0.1/24 dev tap0
ip -n $NS link set tap0 up
(cd $IMG && exec ip netns exec $NS "$BIN/git-onesis" serve --iface tap0 --init "$BIN/onesis-init" "$@") 2> $W/serve.log &
SRV=$!
for i in $(seq 1 100); do ip netns exec $NS curl -sf -o /dev/null http://10.77.0.1:8080/status && break; sleep 0.1; done
start=$(date +%s.%N)
ip netns exec $NS timeout 180 qemu-system-x86_64 -machine accel=tcg -nographic -m 512 -no-reboot \
	-netdev tap,id=n0,ifname=tap0,script=no,downscript=no \
	-device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 -boot n > $W/qemu.log 2>&1 &
QPID=$!
wait $QPID; QPID=
printf 'QEMU start -> power off: %.1f s\n' "$(echo "$(date +%s.%N) - $start" | bc)"
grep -a '^IMAGE-' $W/qemu.log
echo "logs: $W/serve.log $W/qemu.log"
if [ -n "${MAINT:-}" ]; then
	grep -aq 'IMAGE-ROOT: writable' $W/qemu.log && [ -e $W/update/written ] && echo "the node wrote $W/update/written"
	exit
fi
grep -aq "IMAGE-COMMIT: $HEAD" $W/qemu.log && grep -aq '^IMAGE-DONE' $W/qemu.log
