#!/usr/bin/env bash
# git-onesis boot demo: two QEMU nodes network-boot one image from git.
#
#   1. build a small busybox image with a oneSIS sysimage.conf (two classes, a
#      class variant of /etc/fstab), a setuid file, a device node, an empty
#      dir and a 0600 secret; add the Debian kernel and its netboot modules
#   2. git onesis init --commit, git onesis sysimage, commit
#   3. a private network namespace: bridge + two taps; git onesis serve in it
#   4. two nodes in the inventory (n1 on the checked-out branch, n2 on its own)
#   5. PXE-boot both: iPXE -> DHCP -> HTTP script -> kernel + initramfs ->
#      NFS root -> personality -> the image's /sbin/init
#   6. each console reports hostname, class, /etc/fstab, commit, setuid bit,
#      device node
#   7. commit a change on n2's branch, reboot n2: new commit; n1, still up,
#      stays on its commit
#   8. tear down what it started
#
# Run by `make demo` as root; IMAGE=debian (make demo-debian) boots a
# debootstrap image with systemd instead of busybox. FIRMWARE picks how n1
# and n2 boot (make demo FIRMWARE=uefi-pxe):
#   bios       SeaBIOS and QEMU's iPXE option ROM (the default)
#   uefi-ipxe  OVMF (UEFI) and QEMU's iPXE option ROM
#   uefi-pxe   OVMF's own PXE: no option ROM; DHCP, TFTP snponly.efi, iPXE
#   uefi-http  OVMF's own HTTP boot: no option ROM, no TFTP; iPXE over HTTP
# Set KEEP=1 to keep the work dir, E2E=1 for the
# extra checks `make e2e` runs (an unknown MAC, TFTP traversal, a serve
# restart under a running node, a maintenance node booting a worktree rw,
# and two more nodes on OVMF's own network stack: n3 by UEFI PXE and n4 by
# UEFI HTTP boot, the latter under serve --no-tftp; then signed boots under
# serve --require-signature: n3 boots a signed commit, is refused an
# unsigned one with the reason on its console, and boots it once signed). BOOT_BENCH=N (1 to 4)
# boots n1..nN at once instead of n1 and n2, writes each node's time from
# onesis-init mounting the NFS root to the image's report ("ready") to
# BOOT_TIMES (a file; "NODE SECONDS" lines), checks that each runs the
# commit with the image's init as PID 1, and skips steps 6 and 7 (the
# nfs-boot benchmark, internal/bench/nfsbootbench.sh). Exit status 0 only
# if every check passed.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GIT_ONESIS=${GIT_ONESIS:-$REPO/bin/git-onesis}
CACHE=${GIT_ONESIS_TEST_CACHE:-/var/cache/git-onesis-test}
E2E=${E2E:-}
FIRMWARE=${FIRMWARE:-bios}
BOOT_BENCH=${BOOT_BENCH:-}
BOOT_TIMES=${BOOT_TIMES:-/dev/null}
OVMF=${OVMF:-/usr/share/ovmf/OVMF.fd}
START=$(date +%s)

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B= G= R= N=; fi
T() { printf '%4ss' $(($(date +%s) - START)); }
step() { printf '\n%s[%s] ==== %s ====%s\n' "$B" "$(T)" "$*" "$N"; }
say() { printf '       %s\n' "$*"; }
FAILED=0
ok() { printf '  %sok%s   %s\n' "$G" "$N" "$*"; }
bad() { printf '  %sFAIL%s %s\n' "$R" "$N" "$*"; FAILED=1; }
check() { # DESCRIPTION COMMAND...: ok when COMMAND succeeds
	local d=$1; shift
	if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi
}
die() { printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (network namespaces, device nodes, QEMU on taps); e.g. sudo make demo"
[ -x "$GIT_ONESIS" ] || die "$GIT_ONESIS not built; run 'make build'"
[ -x "$(dirname "$GIT_ONESIS")/onesis-init" ] || die "$(dirname "$GIT_ONESIS")/onesis-init not built; run 'make build'"
# What the demo needs from Debian: make demo and make test install it first
# (.ci/deps, from the one list in .ci/packages).
for tool in qemu-system-x86_64 ip busybox apt-get apt-cache dpkg-deb depmod modprobe curl; do
	command -v "$tool" >/dev/null || die "$tool not found; install the demo's packages first: $REPO/.ci/deps demo"
done
case $BOOT_BENCH in
'' | [1-4]) ;;
*) die "BOOT_BENCH=$BOOT_BENCH: boot 1 to 4 nodes" ;;
esac
[ -z "$BOOT_BENCH" ] || [ -z "$E2E" ] || die "BOOT_BENCH and E2E do not mix"
case $FIRMWARE in
bios | uefi-ipxe | uefi-pxe | uefi-http) ;;
*) die "FIRMWARE=$FIRMWARE: use bios, uefi-ipxe, uefi-pxe or uefi-http" ;;
esac
if [ -n "$E2E" ]; then
	command -v ssh-keygen >/dev/null || die "ssh-keygen not found (signed boots); install the test packages first: $REPO/.ci/deps test"
fi
if [ "$FIRMWARE" != bios ] || [ -n "$E2E" ]; then
	[ -f "$OVMF" ] || die "$OVMF not found (UEFI firmware, Debian package ovmf); install the demo's packages first: $REPO/.ci/deps demo"
fi

export PATH="$(dirname "$GIT_ONESIS"):$PATH"
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid
export GIT_PAGER=cat PAGER=cat
umask 022

WORK=$(mktemp -d "${TMPDIR:-/tmp}/git-onesis-boot.XXXXXX")
NS=onesis-demo-$FIRMWARE-$$
SERVE_PID=
declare -A QEMU_PID=()
cleanup() {
	for n in "${!QEMU_PID[@]}"; do kill "${QEMU_PID[$n]}" 2>/dev/null || true; done
	[ -z "$SERVE_PID" ] || kill "$SERVE_PID" 2>/dev/null || true
	sleep 0.5
	for n in "${!QEMU_PID[@]}"; do kill -9 "${QEMU_PID[$n]}" 2>/dev/null || true; done
	[ -z "$SERVE_PID" ] || kill -9 "$SERVE_PID" 2>/dev/null || true
	ip netns del "$NS" 2>/dev/null || true
	if [ -z "${KEEP:-}" ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM # so the EXIT trap cleans up
IMG=$WORK/image
SRV=10.77.0.1

# ------------------------------------------------------------------ kernel
step "1. The Debian kernel (downloaded and unpacked, never installed)"
PKG=$(apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1)
if [ -z "$PKG" ]; then apt-get update -q >/dev/null; PKG=$(apt-cache depends linux-image-amd64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1); fi
[ -n "$PKG" ] || die "apt-cache names no kernel package for linux-image-amd64"
KVER=${PKG#linux-image-}
KROOT=$CACHE/$PKG
if [ ! -f "$KROOT/lib/modules/$KVER/modules.dep" ]; then
	mkdir -p "$CACHE"
	( cd "$CACHE" && ls "$PKG"_*.deb >/dev/null 2>&1 || apt-get download -q "$PKG" >/dev/null )
	tmp=$(mktemp -d "$CACHE/unpack-XXXXXX")
	dpkg-deb -x "$CACHE/$PKG"_*.deb "$tmp"
	depmod -b "$tmp" "$KVER"
	mv "$tmp" "$KROOT" 2>/dev/null || rm -rf "$tmp"
fi
say "kernel $KVER from $PKG"

# ------------------------------------------------------------------ image
# The report every node prints: from the image's own /sbin/init (busybox
# image), or from a systemd service (IMAGE=debian).
REPORT='C=$(sed -n "s/.*onesis\.commit=\([0-9a-f]*\).*/\1/p" /proc/cmdline)
H=$(hostname)
echo "NODE $H: init running from $(grep " / " /proc/mounts | grep -v rootfs | cut -d" " -f1,3,4 | cut -c1-60); pid 1 is $(cat /proc/1/comm)"
echo "NODE $H: commit ${C:-?}"
echo "NODE $H: /etc/fstab -> $(readlink /etc/fstab) -> $(readlink /ram/etc/fstab): $(cat /etc/fstab)"
echo "NODE $H: motd: $(cat /etc/motd)"
echo "NODE $H: setuid file: $(stat -c "%a %U" /opt/demo/suid-tool)"
echo "NODE $H: device node: $(stat -c "%F %t,%T" /opt/demo/null)"
echo "NODE $H: empty dir: $(stat -c "%F %a" /var/empty)"
if su -s /bin/sh demo -c "cat /etc/demo-secret" >/dev/null 2>&1; then echo "NODE $H: secret: READABLE by uid 1000"; else echo "NODE $H: secret: denied to uid 1000"; fi
echo "NODE $H: shadow: $(stat -c "%s bytes %a" /etc/shadow)"
if touch /etc/written 2>/dev/null; then echo "NODE $H: root: writable"; else echo "NODE $H: root: read-only"; fi
echo "NODE $H: ready"
while :; do
	sleep 3
	echo "NODE $H: alive on ${C:-?}: $(cat /etc/motd)"
done'

if [ "${IMAGE:-busybox}" = debian ]; then
	step "2. A Debian image (debootstrap minbase + systemd), two classes, setuid, a device, a secret"
	DEB=$CACHE/debian-bookworm-minbase
	if [ ! -d "$DEB" ]; then
		command -v debootstrap >/dev/null || die "debootstrap not found; install the packages first: $REPO/.ci/deps demo"
		rm -rf "$DEB.tmp"
		say "debootstrap (once; cached in $DEB)"
		debootstrap --variant=minbase --include=systemd-sysv bookworm "$DEB.tmp" "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1 ||
			{ tail -20 "$WORK/debootstrap.log"; die "debootstrap failed"; }
		rm -rf "$DEB.tmp"/var/cache/apt/archives/*.deb "$DEB.tmp"/var/lib/apt/lists/*_Packages
		mv "$DEB.tmp" "$DEB"
	fi
	cp -a "$DEB" "$IMG"
	mkdir -p "$IMG"/{opt/demo,var/empty,boot}
	rm -f "$IMG/etc/hostname" # the node's name comes from DHCP
	: >"$IMG/etc/machine-id" # systemd makes a transient one on a read-only root
	printf '#!/bin/sh\n%s\n' "$REPORT" >"$IMG/usr/local/sbin/onesis-report"
	chmod 755 "$IMG/usr/local/sbin/onesis-report"
	cat >"$IMG/etc/systemd/system/onesis-report.service" <<'EOF'
[Unit]
Description=git-onesis demo: report what this node sees
After=local-fs.target

[Service]
Type=simple
ExecStart=/usr/local/sbin/onesis-report
StandardOutput=tty
TTYPath=/dev/ttyS0

[Install]
WantedBy=multi-user.target
EOF
	mkdir -p "$IMG/etc/systemd/system/multi-user.target.wants"
	ln -sf /etc/systemd/system/onesis-report.service "$IMG/etc/systemd/system/multi-user.target.wants/onesis-report.service"
	echo 'demo:x:1000:1000::/tmp:/bin/sh' >>"$IMG/etc/passwd"
	echo 'demo:x:1000:' >>"$IMG/etc/group"
else
	step "2. A small image: busybox, two classes, setuid, a device, a secret"
	mkdir -p "$IMG"/{bin,sbin,etc,proc,sys,dev,run,tmp,root,opt/demo,var/empty,boot}
	cp "$(command -v busybox)" "$IMG/bin/busybox"
	for a in sh cat echo mount umount hostname readlink grep sed stat sleep poweroff ls su id head tr cut; do ln -s busybox "$IMG/bin/$a"; done
	printf '#!/bin/sh\n# The image init: report what this node sees, then stay up.\nmount -t proc proc /proc 2>/dev/null\n%s\n' "$REPORT" >"$IMG/sbin/init"
	chmod 755 "$IMG/sbin/init"
	printf 'root:x:0:0:root:/root:/bin/sh\ndemo:x:1000:1000::/tmp:/bin/sh\n' >"$IMG/etc/passwd"
	printf 'root:x:0:\ndemo:x:1000:\n' >"$IMG/etc/group"
	printf 'root:$6$demo$notarealhash:19000:0:99999:7:::\n' >"$IMG/etc/shadow"; chmod 640 "$IMG/etc/shadow"
	chmod 1777 "$IMG/tmp"; chmod 700 "$IMG/root"
fi
printf 'top secret\n' >"$IMG/etc/demo-secret"; chmod 600 "$IMG/etc/demo-secret"
printf 'welcome to the demo image, version 1\n' >"$IMG/etc/motd"
printf '# default fstab\n' >"$IMG/etc/fstab"
printf '# fstab for compute nodes: /scratch\n' >"$IMG/etc/fstab.cluster.compute"
printf '# fstab for login nodes: /home\n' >"$IMG/etc/fstab.cluster.login"
cat >"$IMG/etc/sysimage.conf" <<'EOF'
# oneSIS configuration, as sites bring it
NODECLASS_MAP  n1  cluster.compute
NODECLASS_MAP: n2  cluster.login
NODECLASS_MAP  n3  cluster.compute
NODECLASS_MAP  n4  cluster.login
RAMSIZE 16m
RAMDIR /tmp -m 1777
LINKBACK /etc/fstab CLASS
EOF
printf '#!/bin/sh\necho tool\n' >"$IMG/opt/demo/suid-tool"; chmod 4755 "$IMG/opt/demo/suid-tool"
mknod "$IMG/opt/demo/null" c 1 3; chmod 666 "$IMG/opt/demo/null"
chmod 711 "$IMG/var/empty"
# The kernel and the modules a network boot needs, from the kernel package.
cp "$KROOT/boot/vmlinuz-$KVER" "$IMG/boot/"
MODS=$(modprobe -d "$KROOT" -S "$KVER" --show-depends -a virtio_pci virtio_net e1000 af_packet nfsv3 nfs 2>/dev/null | awk '$1 == "insmod" { print $2 }' | sort -u)
[ -n "$MODS" ] || die "modprobe found no netboot modules in $KROOT"
for m in $MODS; do
	rel=${m#"$KROOT"/}
	mkdir -p "$IMG/$(dirname "$rel")"
	cp "$m" "$IMG/$rel"
done
cp "$KROOT/lib/modules/$KVER/modules.builtin" "$KROOT/lib/modules/$KVER/modules.order" "$IMG/lib/modules/$KVER/" 2>/dev/null || true
depmod -b "$IMG" "$KVER" 2>&1 | grep -v "modules.builtin.modinfo" || true
say "$(find "$IMG" | wc -l) entries, $(du -sh "$IMG" | cut -f1), $(echo "$MODS" | wc -l) kernel modules"

# ------------------------------------------------------------------ git
step "3. Into git: init --commit, the sysimage transform, commit"
cd "$IMG"
git init -q -b main
git onesis init --commit -q -m "demo image"
git onesis sysimage
git add -A
git onesis commit -q -m "sysimage transform: /etc/fstab is a class linkback"
git branch login-test
C1=$(git rev-parse HEAD)
say "main = ${C1:0:12}; n2 will boot branch login-test"
git onesis ls etc/fstab opt/demo
check "git onesis status is clean" git onesis status -q

# ------------------------------------------------------------------ network
step "4. A private network namespace with a bridge and two taps; serve in it"
ip netns add "$NS"
ip -n "$NS" link set lo up
ip -n "$NS" link add br0 type bridge
ip -n "$NS" addr add "$SRV/24" dev br0
ip -n "$NS" link set br0 up
for i in 0 1 3 4; do
	ip -n "$NS" tuntap add dev "tap$i" mode tap
	ip -n "$NS" link set "tap$i" master br0
	ip -n "$NS" link set "tap$i" up
done
git onesis node add n1 --mac 52:54:00:0e:00:01 --ip 10.77.0.11
git onesis node add n2 --mac 52:54:00:0e:00:02 --ip 10.77.0.12 --ref login-test
if [ -n "$E2E" ] || [ "${BOOT_BENCH:-0}" -ge 3 ]; then
	git onesis node add n3 --mac 52:54:00:0e:00:03 --ip 10.77.0.13 >/dev/null
	git onesis node add n4 --mac 52:54:00:0e:00:04 --ip 10.77.0.14 --ref login-test >/dev/null
fi
git onesis node list
# Per-node secrets stay out of the image: n2 gets its real /etc/shadow from
# serve at boot, over the image's empty placeholder.
mkdir -p "$WORK/secrets/n2/etc"
printf 'root:$6$n2$only-for-n2:19000:0:99999:7:::\n' >"$WORK/secrets/n2/etc/shadow"
chmod 700 "$WORK/secrets" && chmod 640 "$WORK/secrets/n2/etc/shadow"
SERVE_LOG=$WORK/serve.log
SERVE_ARGS=(--iface br0 --secrets-dir "$WORK/secrets")
ip netns exec "$NS" git onesis serve "${SERVE_ARGS[@]}" >"$SERVE_LOG" 2>&1 &
SERVE_PID=$!
for _ in $(seq 1 100); do
	ip netns exec "$NS" curl -fsS "http://$SRV:8080/status" >/dev/null 2>&1 && break
	kill -0 "$SERVE_PID" 2>/dev/null || { cat "$SERVE_LOG"; die "serve exited"; }
	sleep 0.2
done
ip netns exec "$NS" curl -fsS "http://$SRV:8080/status" >/dev/null || { cat "$SERVE_LOG"; die "serve did not come up"; }
say "serve is up (pid $SERVE_PID): DHCP, TFTP, HTTP :8080, portmap, NFS :2049 on br0"

# ------------------------------------------------------------------ boot
boot() { # NODE TAP MAC [FIRMWARE]: start QEMU, console to $WORK/NODE.log
	local n=$1 tap=$2 mac=$3 fw=${4:-$FIRMWARE} nic fwargs=()
	nic="virtio-net-pci,netdev=n0,mac=$mac"
	case $fw in
	bios) fwargs=(-boot n) ;;
	# OVMF boots what QEMU's bootindex names first. -bios keeps its
	# variables in RAM: every boot starts from a clean NVRAM. romfile=
	# takes QEMU's iPXE ROM off the NIC, so the firmware's own network
	# stack boots; fw_cfg turns off the PXE variants not under test (each
	# would otherwise wait for its DHCP to time out first).
	uefi-ipxe) fwargs=(-bios "$OVMF" -device virtio-rng-pci) nic+=",bootindex=1" ;;
	uefi-pxe) fwargs=(-bios "$OVMF" -device virtio-rng-pci -fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n) nic+=",romfile=,bootindex=1" ;;
	uefi-http) fwargs=(-bios "$OVMF" -device virtio-rng-pci -fw_cfg name=opt/org.tianocore/IPv4PXESupport,string=n
		-fw_cfg name=opt/org.tianocore/IPv6PXESupport,string=n) nic+=",romfile=,bootindex=1" ;;
	esac
	: >"$WORK/$n.log"
	date +%s >"$WORK/$n.start"
	ip netns exec "$NS" qemu-system-x86_64 -machine accel=tcg -m 384 -smp 1 -no-reboot \
		-display none -monitor none -serial "file:$WORK/$n.log" \
		-netdev "tap,id=n0,ifname=$tap,script=no,downscript=no" \
		-device "$nic" "${fwargs[@]}" >"$WORK/$n.qemu" 2>&1 &
	QEMU_PID[$n]=$!
}
fwname() { # FIRMWARE: what serve calls the firmware that starts the boot
	case $1 in bios | uefi-ipxe) echo ipxe ;; uefi-pxe) echo efi-x64 ;; uefi-http) echo efi-x64-http ;; esac
}
booted_in() { # NODE: seconds from QEMU start to now
	echo $(($(date +%s) - $(cat "$WORK/$1.start")))
}
wait_for() { # NODE PATTERN SECONDS
	local n=$1 pat=$2 secs=$3 i
	for ((i = 0; i < secs * 2; i++)); do
		grep -q -- "$pat" "$WORK/$n.log" 2>/dev/null && return 0
		kill -0 "${QEMU_PID[$n]}" 2>/dev/null || break
		sleep 0.5
	done
	return 1
}
report() { # NODE: the console lines that tell the story
	grep -a -E '^(onesis: (hostname|class|mounted|switch|secrets)|NODE )' "$WORK/$1.log" | grep -av alive | sed 's/^/       | /' | cut -c1-130
}

root_to_ready() { # NODE: when onesis-init mounts the root and when the report says ready (ms)
	local n=$1 m= r= end=$(($(date +%s) + 600))
	# A guest that panics (TCG on a loaded host: "IO-APIC + timer doesn't
	# work") stays up forever: give up after 10 minutes.
	while kill -0 "${QEMU_PID[$n]}" 2>/dev/null && [ -z "$r" ] && [ "$(date +%s)" -lt "$end" ]; do
		[ -n "$m" ] || ! grep -aq "onesis: mounting" "$WORK/$n.log" || m=$(date +%s%3N)
		[ -z "$m" ] || ! grep -aq "NODE $n: ready" "$WORK/$n.log" || r=$(date +%s%3N)
		sleep 0.1
	done
	echo "$m $r" >"$WORK/$n.times"
}
if [ -n "$BOOT_BENCH" ]; then
	step "5. PXE-boot $BOOT_BENCH node(s) at once, timing the NFS root mount to the report"
	NODES=()
	taps=(tap0 tap1 tap3 tap4)
	declare -A WATCH=()
	for ((i = 1; i <= BOOT_BENCH; i++)); do
		NODES+=("n$i")
		boot "n$i" "${taps[i - 1]}" "52:54:00:0e:00:0$i"
	done
	for n in "${NODES[@]}"; do root_to_ready "$n" & WATCH[$n]=$!; done
	for n in "${NODES[@]}"; do
		wait "${WATCH[$n]}" || true
		read -r m r <"$WORK/$n.times" || true
		if [ -n "${m:-}" ] && [ -n "${r:-}" ]; then
			secs=$(awk -v a="$m" -v b="$r" 'BEGIN { printf "%.1f", (b - a) / 1000 }')
			ok "$n: NFS root mounted to ready in $secs s ($(booted_in "$n") s after QEMU started)"
			echo "$n $secs" >>"$BOOT_TIMES"
		else
			bad "$n did not reach the image's init"
			tail -40 "$WORK/$n.log"
		fi
		check "$n runs ${C1:0:12} from the NFS root, the image's init as PID 1" sh -c "grep -aq 'NODE $n: commit $C1' '$WORK/$n.log' && grep -aq 'NODE $n: init running from $SRV:/c/$C1 nfs ro' '$WORK/$n.log'"
	done
	step "8. Tear down"
	if [ "$FAILED" = 0 ]; then
		printf '\n%sdemo: all checks passed in %d s%s\n' "$G" "$(($(date +%s) - START))" "$N"
		exit 0
	fi
	printf '\n%sdemo: some checks FAILED; logs in %s (KEEP=1 keeps them)%s\n' "$R" "$WORK" "$N"
	exit 1
fi

step "5. PXE-boot n1 and n2 ($FIRMWARE: iPXE -> DHCP -> HTTP -> kernel + initramfs -> NFS root -> /ram -> init)"
NODES=(n1 n2)
boot n1 tap0 52:54:00:0e:00:01
boot n2 tap1 52:54:00:0e:00:02
if [ -n "$E2E" ]; then
	# The same serve boots OVMF's own UEFI PXE (DHCP, TFTP snponly.efi)
	# and UEFI HTTP boot (DHCP HTTPClient, snponly.efi over HTTP) at once.
	say "with n3 by UEFI PXE and n4 by UEFI HTTP boot (OVMF, no option ROM)"
	NODES+=(n3 n4)
	boot n3 tap3 52:54:00:0e:00:03 uefi-pxe
	boot n4 tap4 52:54:00:0e:00:04 uefi-http
fi
for n in "${NODES[@]}"; do
	if wait_for "$n" "NODE $n: ready" 420; then
		ok "$n booted the image's init $(booted_in "$n") s after QEMU started"
	else
		bad "$n did not reach the image's init"
		tail -40 "$WORK/$n.log"; tail -20 "$SERVE_LOG"
	fi
done

step "6. What each node reports"
for n in "${NODES[@]}"; do say "$n:"; report "$n"; done
check "n1 is class cluster.compute, /etc/fstab is the compute variant" grep -aq "NODE n1: /etc/fstab -> /ram/etc/fstab -> /etc/fstab.cluster.compute" "$WORK/n1.log"
check "n2 is class cluster.login, /etc/fstab is the login variant" grep -aq "NODE n2: /etc/fstab -> /ram/etc/fstab -> /etc/fstab.cluster.login" "$WORK/n2.log"
check "both booted commit ${C1:0:12}" sh -c "grep -aq 'NODE n1: commit $C1' '$WORK/n1.log' && grep -aq 'NODE n2: commit $C1' '$WORK/n2.log'"
check "the setuid bit came through NFS (4755 root)" grep -aq "NODE n1: setuid file: 4755 root" "$WORK/n1.log"
check "the device node came through (char 1,3)" grep -aq "NODE n1: device node: character special file 1,3" "$WORK/n1.log"
check "the root is read-only" grep -aq "NODE n1: root: read-only" "$WORK/n1.log"
if [ "${IMAGE:-busybox}" = debian ]; then
	check "the image's own systemd is PID 1 on the NFS root" grep -aq "NODE n1: init running from $SRV:/c/$C1 nfs ro; pid 1 is systemd" "$WORK/n1.log"
fi
check "uid 1000 on the node cannot read the 0600 secret" grep -aq "NODE n1: secret: denied to uid 1000" "$WORK/n1.log"
check "/etc/shadow is an empty placeholder" grep -aq "NODE n1: shadow: 0 bytes 600" "$WORK/n1.log"
check "n2's own /etc/shadow came from serve at boot, over the placeholder" grep -aq "NODE n2: shadow: 42 bytes 640" "$WORK/n2.log"
if [ -n "$E2E" ]; then
	for n in n3 n4; do
		class=compute; [ $n = n4 ] && class=login
		check "$n (UEFI) is class cluster.$class, booted ${C1:0:12}" sh -c "grep -aq 'NODE $n: /etc/fstab -> /ram/etc/fstab -> /etc/fstab.cluster.$class' '$WORK/$n.log' && grep -aq 'NODE $n: commit $C1' '$WORK/$n.log'"
		check "$n (UEFI): setuid 4755 root, device char 1,3, secret denied to uid 1000" sh -c "grep -aq 'NODE $n: setuid file: 4755 root' '$WORK/$n.log' && grep -aq 'NODE $n: device node: character special file 1,3' '$WORK/$n.log' && grep -aq 'NODE $n: secret: denied to uid 1000' '$WORK/$n.log'"
	done
	check "n3 loaded snponly.efi over TFTP (UEFI PXE), n4 over HTTP (UEFI HTTP boot)" sh -c "grep -q 'msg=tftp outcome=sent node=n3 .*detail=snponly.efi' '$SERVE_LOG' && grep -q 'http: boot loader.*node=n4.*name=snponly.efi' '$SERVE_LOG'"
	ip netns exec "$NS" curl -fsS "http://$SRV:8080/status" >"$WORK/status.json"
	FW1=$(fwname "$FIRMWARE")
	check "/status shows each node's firmware (n1 $FW1, n3 efi-x64, n4 efi-x64-http)" sh -c "grep -A14 '\"name\": \"n3\"' '$WORK/status.json' | grep -q '\"firmware\": \"efi-x64\"' && grep -A14 '\"name\": \"n4\"' '$WORK/status.json' | grep -q '\"firmware\": \"efi-x64-http\"' && grep -A14 '\"name\": \"n1\"' '$WORK/status.json' | grep -q '\"firmware\": \"$FW1\"'"
	git onesis node list | sed 's/^/       | /'
	check "node list shows each node's firmware" sh -c "git onesis node list --porcelain | awk -F'\t' '{print \$1, \$10}' | tr '\n' ' ' | grep -q 'n1 $FW1 n2 $FW1 n3 efi-x64 n4 efi-x64-http'"
fi
check "refs/onesis/booted/n1 and n2 record the commit" sh -c "[ \$(git rev-parse refs/onesis/booted/n1) = $C1 ] && [ \$(git rev-parse refs/onesis/booted/n2) = $C1 ]"
say "serve's /status:"
ip netns exec "$NS" curl -fsS "http://$SRV:8080/status" | head -c 1200 | sed 's/^/       | /'; echo

step "7. A change on n2's branch; n2 reboots onto it, n1 stays where it is"
git worktree add -q "$WORK/login" login-test
( cd "$WORK/login" && printf 'welcome to the demo image, version 2 (login)\n' >etc/motd && git onesis commit -q -am "login nodes: new motd" )
C2=$(git rev-parse login-test)
git worktree remove "$WORK/login"
say "login-test = ${C2:0:12}; main stays ${C1:0:12}"
kill "${QEMU_PID[n2]}" 2>/dev/null || true; wait "${QEMU_PID[n2]}" 2>/dev/null || true
boot n2 tap1 52:54:00:0e:00:02
BOOT0=$(date +%s)
if wait_for n2 "NODE n2: ready" 240; then ok "n2 rebooted in $(($(date +%s) - BOOT0)) s"; else bad "n2 did not come back"; tail -30 "$WORK/n2.log"; fi
report n2
check "n2 now runs ${C2:0:12} with the new motd" sh -c "grep -aq 'NODE n2: commit $C2' '$WORK/n2.log' && grep -aq 'version 2 (login)' '$WORK/n2.log'"
: >"$WORK/n1.tail"; sleep 7; tail -c 2000 "$WORK/n1.log" >"$WORK/n1.tail"
check "n1, still up, is still on ${C1:0:12} (its root never changed)" grep -aq "NODE n1: alive on $C1: welcome to the demo image, version 1" "$WORK/n1.tail"
check "refs/onesis/booted/n2 moved to ${C2:0:12}" sh -c "[ \$(git rev-parse refs/onesis/booted/n2) = $C2 ]"

if [ -n "$E2E" ]; then
	step "E2E. Faults and refusals"
	# An unknown MAC gets no lease and does not boot.
	ip -n "$NS" tuntap add dev tap9 mode tap; ip -n "$NS" link set tap9 master br0; ip -n "$NS" link set tap9 up
	boot stranger tap9 52:54:00:0e:00:99
	for _ in $(seq 1 120); do grep -q '52:54:00:0e:00:99' "$SERVE_LOG" && break; sleep 0.5; done
	sleep 20 # iPXE keeps asking; give it time to go wrong if it would
	check "serve saw the unknown MAC and ignored it" grep -q '52:54:00:0e:00:99' "$SERVE_LOG"
	check "the unknown MAC got no lease and did not boot" sh -c "! grep -q 'ack.*52:54:00:0e:00:99\|52:54:00:0e:00:99.*ack' '$SERVE_LOG' && ! grep -aq 'NODE' '$WORK/stranger.log'"
	kill "${QEMU_PID[stranger]}" 2>/dev/null || true; unset 'QEMU_PID[stranger]'
	# TFTP traversal is refused with a generic error.
	if command -v tftp >/dev/null; then
		out=$(cd "$WORK" && ip netns exec "$NS" timeout 10 tftp "$SRV" -c get ../../etc/shadow stolen 2>&1 || true)
		check "TFTP ../../etc/shadow is refused, no file, no server path in the error" sh -c "[ ! -s '$WORK/stolen' ] && ! printf '%s' '$out' | grep -q '/'"
	fi
	# serve killed and restarted under a running node: its NFS root still
	# works. It comes back without TFTP: UEFI HTTP boot and iPXE ROMs need
	# none.
	kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
	ip netns exec "$NS" git onesis serve "${SERVE_ARGS[@]}" --no-tftp >>"$SERVE_LOG" 2>&1 &
	SERVE_PID=$!
	sleep 12
	tail -c 1500 "$WORK/n1.log" >"$WORK/n1.tail2"
	check "after a serve restart n1 still reads its NFS root (stable handles)" grep -aq "NODE n1: alive on $C1: welcome" "$WORK/n1.tail2"
	check "no stale file handle on n1's console" sh -c "! grep -aqi 'stale' '$WORK/n1.log'"
	check "git onesis status on the server is still clean" git onesis status -q
	# A maintenance node: n1 boots a linked worktree read-write; what it
	# writes lands in the worktree on the server, ready to commit.
	git worktree add -q "$WORK/maint" login-test
	git onesis node set n1 --maintenance "$WORK/maint" >/dev/null
	kill "${QEMU_PID[n1]}" 2>/dev/null || true; wait "${QEMU_PID[n1]}" 2>/dev/null || true
	sleep 3 # serve's inventory watcher picks the change up
	boot n1 tap0 52:54:00:0e:00:01
	# n4 reboots by UEFI HTTP boot while serve runs --no-tftp, onto
	# login-test's new commit.
	kill "${QEMU_PID[n4]}" 2>/dev/null || true; wait "${QEMU_PID[n4]}" 2>/dev/null || true
	boot n4 tap4 52:54:00:0e:00:04 uefi-http
	if wait_for n1 "NODE n1: ready" 240; then
		check "the maintenance node mounts /w/n1 read-write" grep -aq "NODE n1: root: writable" "$WORK/n1.log"
		check "what it wrote is in the worktree on the server" test -e "$WORK/maint/etc/written"
		check "and git sees it there, ready to commit" sh -c "git -C '$WORK/maint' status --porcelain | grep -q 'etc/written'"
	else
		bad "the maintenance node did not boot"; tail -30 "$WORK/n1.log"
	fi
	git onesis node set n1 --maintenance "" >/dev/null
	if wait_for n4 "NODE n4: ready" 420; then
		ok "n4 booted by UEFI HTTP boot under serve --no-tftp in $(booted_in n4) s"
		check "n4 now runs ${C2:0:12}, class cluster.login, secret denied" sh -c "grep -aq 'NODE n4: commit $C2' '$WORK/n4.log' && grep -aq 'NODE n4: /etc/fstab -> /ram/etc/fstab -> /etc/fstab.cluster.login' '$WORK/n4.log' && grep -aq 'NODE n4: secret: denied to uid 1000' '$WORK/n4.log'"
	else
		bad "n4 did not boot by UEFI HTTP boot under serve --no-tftp"; tail -30 "$WORK/n4.log"; tail -20 "$SERVE_LOG"
	fi
	check "n3 (UEFI PXE) is still up on its NFS root" sh -c "tail -c 1500 '$WORK/n3.log' | grep -aq 'NODE n3: alive on $C1'"
fi

if [ -n "$E2E" ]; then
	step "E2E. Signed boots: onesis.serve.requireSignature"
	# SSH signing with a key the allowed-signers file trusts; serve pins
	# these trust settings when it starts.
	ssh-keygen -q -t ed25519 -N "" -C ops@example.com -f "$WORK/signkey"
	printf 'ops@example.com %s\n' "$(cat "$WORK/signkey.pub")" >"$WORK/allowed_signers"
	git config gpg.format ssh
	git config user.signingkey "$WORK/signkey"
	git config gpg.ssh.allowedSignersFile "$WORK/allowed_signers"
	git commit -q --allow-empty -S -m "signed release"
	S1=$(git rev-parse HEAD)
	# The one setting (serve --require-signature is the same for one run;
	# node list reads the setting).
	git config onesis.serve.requireSignature true
	kill "$SERVE_PID"; wait "$SERVE_PID" 2>/dev/null || true
	ip netns exec "$NS" git onesis serve "${SERVE_ARGS[@]}" --retry-after 5s >>"$SERVE_LOG" 2>&1 &
	SERVE_PID=$!
	for _ in $(seq 1 100); do ip netns exec "$NS" curl -fsS "http://$SRV:8080/status" >/dev/null 2>&1 && break; sleep 0.2; done
	# n3 boots by OVMF's own UEFI PXE: the firmware mirrors its console,
	# iPXE's included, to the serial port, so the refusal line is seen
	# (SeaBIOS with QEMU's ROM prints iPXE's lines on VGA only).
	kill "${QEMU_PID[n3]}" 2>/dev/null || true; wait "${QEMU_PID[n3]}" 2>/dev/null || true
	boot n3 tap3 52:54:00:0e:00:03 uefi-pxe
	if wait_for n3 "NODE n3: ready" 420; then
		check "n3 boots the signed commit ${S1:0:12}" grep -aq "NODE n3: commit $S1" "$WORK/n3.log"
	else
		bad "n3 did not boot the signed commit"; tail -30 "$WORK/n3.log"; tail -20 "$SERVE_LOG"
	fi
	# An unsigned commit on n3's branch: refused, with the reason on the
	# console and in /status; n3 keeps asking.
	git commit -q --allow-empty --no-gpg-sign -m "unsigned change"
	U1=$(git rev-parse HEAD)
	kill "${QEMU_PID[n3]}" 2>/dev/null || true; wait "${QEMU_PID[n3]}" 2>/dev/null || true
	boot n3 tap3 52:54:00:0e:00:03 uefi-pxe
	if wait_for n3 "will not boot commit ${U1:0:12}" 300; then
		grep -a "git-onesis: n3 will not boot" "$WORK/n3.log" | head -1 | tr -d '\r' | sed 's/\x1b\[[0-9;]*[A-Za-z]//g; s/^/       | /'
		# Firmware paints with ANSI escapes: match on the text alone.
		check "the console says why: the commit is not signed" sh -c "sed 's/\x1b\[[0-9;]*[A-Za-z]//g' '$WORK/n3.log' | grep -aq 'n3 will not boot commit ${U1:0:12}: the commit is not signed'"
		ip netns exec "$NS" curl -fsS "http://$SRV:8080/status" >"$WORK/status-refused.json"
		check "/status names n3, the refused commit and the reason" sh -c "grep -A20 '\"name\": \"n3\"' '$WORK/status-refused.json' | grep -q '\"refused\": \"$U1\"' && grep -A20 '\"name\": \"n3\"' '$WORK/status-refused.json' | grep -q 'not signed'"
		check "node list shows n3 REFUSED" sh -c "git onesis node list n3 | grep -q 'REFUSED ${U1:0:12}: the commit is not signed'"
		check "the refused commit was not pinned" sh -c "[ \$(git rev-parse refs/onesis/booted/n3) = $S1 ]"
	else
		bad "n3's console never said the unsigned commit was refused"; tail -c 2000 "$WORK/n3.log"; tail -20 "$SERVE_LOG"
	fi
	# Signing it lets n3 boot at its next try, with nobody touching n3.
	git commit -q --amend --allow-empty -S --no-edit
	S2=$(git rev-parse HEAD)
	if wait_for n3 "NODE n3: commit $S2" 300; then
		ok "signed as ${S2:0:12}: n3 booted it at its next try"
	else
		bad "n3 did not boot the commit once signed"; tail -c 2000 "$WORK/n3.log"; tail -20 "$SERVE_LOG"
	fi
	git onesis audit n3 | sed 's/^/       | /'
	check "audit shows n3 on ${S1:0:12} then ${S2:0:12}, both signed by ops@example.com" sh -c "git onesis audit --porcelain n3 | tail -2 | awk -F'\t' '{print \$3, \$5, \$6}' | tr '\n' ' ' | grep -q '$S1 true ops@example.com $S2 true ops@example.com'"
fi

step "8. Tear down"
say "stopping QEMU, serve, and the namespace $NS"
elapsed=$(($(date +%s) - START))
if [ "$FAILED" = 0 ]; then
	printf '\n%sdemo: all checks passed in %d s%s\n' "$G" "$elapsed" "$N"
else
	printf '\n%sdemo: some checks FAILED (%d s); logs in %s (KEEP=1 keeps them)%s\n' "$R" "$elapsed" "$WORK" "$N"
	exit 1
fi
