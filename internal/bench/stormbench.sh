#!/usr/bin/env bash
# git-onesis boot storm: N simulated PXE nodes (internal/bench/bootstorm)
# boot at once, the whole chain, from
#   - git-onesis serve, iPXE path: DHCP, undionly.kpxe over TFTP, DHCP as
#     iPXE, script, kernel and initramfs over HTTP;
#   - git-onesis serve --pxelinux: DHCP, pxelinux.0, its config, kernel and
#     initramfs all over TFTP;
#   - dnsmasq (DHCP + TFTP), the same PXELINUX chain and files;
#   - dnsmasq for DHCP and tftpd-hpa for TFTP, the same chain and files;
# and measures DHCP alone with kea's perfdhcp against git-onesis and
# kea-dhcp4. One server runs at a time, in the same namespaces. Writes the
# results into the `make bench-storm` part of docs/benchmarks.md.
#
# Usage (from the repository root; `make bench-storm` does this):
#     bash internal/bench/stormbench.sh
#
# Environment:
#     STORM_N        node counts (default "50 200 500")
#     STORM_ROUNDS   rounds; the best run of each row counts (default 1)
#     STORM_TIMEOUT  seconds per storm (default 600; late nodes count as failed)
#     STORM_OUT      markdown file to update (default docs/benchmarks.md; "-" prints)
#     STORM_ONLY     configurations to run (default "ipxe signed pxelinux dnsmasq tftpd-hpa";
#                    signed: the iPXE chain under serve --require-signature)
#     STORM_INVENTORY nodes in git-onesis's inventory (default: the largest N);
#                    the nodes beyond those that boot are known but silent,
#                    as most of a large site is during a partial storm. A
#                    list ("500 10000") runs git-onesis's storms once per
#                    inventory size, alternated within each round, and
#                    compares them: the largest keeps the plain rows
#     STORM_PERF_ROUNDS perfdhcp rounds (default 3; 0 skips perfdhcp)
#     STORM_SKIP_VERIFY=1 runs serve without verifying cached kernels and
#                    initramfs images (GIT_ONESIS_BENCH_SKIP_VERIFY=1) and
#                    without background re-verification (--verify-rate 0):
#                    the "before" arm for measuring what served-byte
#                    verification costs; use with STORM_OUT=-
#                    (docs/benchmarks.md, "Served-byte verification")
#
# Needs root: everything runs in two network namespaces (st-srv, st-cli,
# 10.81.0.0/16) that the script creates and deletes. Installs dnsmasq-base,
# tftpd-hpa, kea-dhcp4-server, kea-admin (perfdhcp), ipxe, pxelinux and
# syslinux-common with apt if missing; no service is left running.
# Timings are informational only; nothing here is a test assertion.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$REPO/internal/bench/lib.sh"
NS_LIST=${STORM_N:-50 200 500}
ROUNDS=${STORM_ROUNDS:-1}
TIMEOUT=${STORM_TIMEOUT:-600}
OUT=${STORM_OUT:-$REPO/docs/benchmarks.md}
ONLY=" ${STORM_ONLY:-ipxe signed pxelinux dnsmasq tftpd-hpa} "
want() { [[ $ONLY == *" $1 "* ]]; }
GO=${GO:-go}
SRV=st-srv-$$ CLI=st-cli-$$ # unique: other runs may share the machine
SIP=10.81.0.1 RIP=10.81.0.2 TIP=10.81.0.4

note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench-storm: fatal: %s\n' "$*" >&2; exit 128; }
[ "$(id -u)" = 0 ] || die "run as root: the benchmark creates network namespaces"
export LC_ALL=C

# ---------------------------------------------------------------- tools
need=()
command -v dnsmasq >/dev/null || [ -x /usr/sbin/dnsmasq ] || need+=(dnsmasq-base)
[ -x /usr/sbin/in.tftpd ] || need+=(tftpd-hpa)
[ -x /usr/sbin/kea-dhcp4 ] || need+=(kea-dhcp4-server)
[ -x /usr/sbin/perfdhcp ] || need+=(kea-admin)
[ -f /usr/lib/ipxe/undionly.kpxe ] || need+=(ipxe)
[ -f /usr/lib/PXELINUX/pxelinux.0 ] || need+=(pxelinux)
[ -f /usr/lib/syslinux/modules/bios/ldlinux.c32 ] || need+=(syslinux-common)
command -v jq >/dev/null || need+=(jq)
command -v ssh-keygen >/dev/null || need+=(openssh-client)
if [ ${#need[@]} -gt 0 ]; then
	note "installing ${need[*]}"
	apt-get update -qq >&2 || true
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi
# Packages may start host services (Docker's policy-rc.d usually stops
# them); ours run in namespaces, so stop any that did start.
for s in tftpd-hpa kea-dhcp4-server; do service "$s" stop >/dev/null 2>&1 || true; done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/stormbench.XXXXXX")
PIDS=()
cleanup() {
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	ip netns del $SRV 2>/dev/null || true
	ip netns del $CLI 2>/dev/null || true
	rm -rf "$WORK"
	if [ -n "${CG:-}" ]; then # empty once the killed servers are gone
		for _ in $(seq 50); do [ -s "$CG/cgroup.procs" ] || break; sleep 0.1; done
		rmdir "$CG" 2>/dev/null || true
	fi
}
trap cleanup EXIT
(cd "$REPO" && "$GO" build -o "$WORK/bin/git-onesis" ./cmd/git-onesis && "$GO" build -o "$WORK/bin/onesis-init" ./cmd/onesis-init &&
	"$GO" build -o "$WORK/bin/bootstorm" ./internal/bench/bootstorm) || die "build failed"
export PATH=$WORK/bin:$PATH HOME=$WORK/home GIT_CONFIG_NOSYSTEM=1
mkdir -p "$HOME"
git config --global user.name bench && git config --global user.email bench@example.com

MAXN=0
for n in $NS_LIST; do [ "$n" -gt "$MAXN" ] && MAXN=$n; done
INV_LIST=${STORM_INVENTORY:-$MAXN}
INVN=0
for v in $INV_LIST; do
	[ "$v" -ge "$MAXN" ] || die "STORM_INVENTORY ($v) is smaller than the largest storm ($MAXN)"
	[ "$v" -gt "$INVN" ] && INVN=$v
done
[ "$INVN" -le 62500 ] || die "STORM_INVENTORY is at most 62500 (10.81.0.0/16)"
gname() { if [ "$1" = "$INVN" ]; then echo git-onesis; else echo "git-onesis-inv$1"; fi; } # a storm's server name
ipof() { echo "10.81.$((1 + ($1 - 1) / 250)).$((1 + ($1 - 1) % 250))"; }
macof() { printf '52:54:00:81:%02x:%02x' $(($1 >> 8)) $(($1 & 255)); }

# ---------------------------------------------------------------- network
ip netns del $SRV 2>/dev/null || true
ip netns del $CLI 2>/dev/null || true
ip netns add $SRV && ip netns add $CLI
ip link add s0 netns $SRV type veth peer name c0 netns $CLI
ip -n $SRV addr add $SIP/16 dev s0 && ip -n $SRV addr add $TIP/16 dev s0
ip -n $SRV link set s0 up && ip -n $SRV link set lo up
ip -n $CLI addr add $RIP/16 dev c0
{ for ((i = 1; i <= MAXN; i++)); do echo "addr add $(ipof $i)/16 dev c0"; done; } | ip -n $CLI -batch -
ip -n $CLI link set c0 up && ip -n $CLI link set lo up
# One ARP entry per node: the neighbour table limits are global (not per
# namespace) on recent kernels; the defaults (1024 hard) are too low at 500.
sysctl -qw net.ipv4.neigh.default.gc_thresh1=4096 net.ipv4.neigh.default.gc_thresh2=8192 net.ipv4.neigh.default.gc_thresh3=16384 || true

# ---------------------------------------------------------------- image
IMG=$WORK/image
KSRC=$(ls /var/cache/git-onesis-test/linux-image-*/boot/vmlinuz-* 2>/dev/null | head -1 || true)
# The image's modules directory must be the kernel's own version (serve
# reads it from the kernel's header): a cached Debian kernel's, else the
# random stand-in's file name.
KVER=6.1.0-81-amd64
[ -z "$KSRC" ] || KVER=$(basename "$KSRC" | sed 's/^vmlinuz-//')
mkdir -p "$IMG/boot" "$IMG/lib/modules/$KVER" "$IMG/etc"
if [ -n "$KSRC" ]; then cp "$KSRC" "$IMG/boot/vmlinuz-$KVER"; KNOTE="Debian $(basename "$KSRC")"; else
	head -c 8388608 /dev/urandom >"$IMG/boot/vmlinuz-$KVER"; KNOTE="random"; fi
: >"$IMG/lib/modules/$KVER/modules.dep"
echo storm >"$IMG/etc/hostname"
(cd "$IMG" && git init -q && git onesis init --commit -q) || die "git onesis init failed"
# The commit is SSH-signed, so the "signed" configuration (serve
# --require-signature) boots the very commit the others do, and the rows
# differ only by the signature check.
ssh-keygen -q -t ed25519 -N "" -C bench@example.com -f "$WORK/signkey" || die "ssh-keygen failed"
printf 'bench@example.com %s\n' "$(cat "$WORK/signkey.pub")" >"$WORK/allowed_signers"
git -C "$IMG" config gpg.format ssh && git -C "$IMG" config user.signingkey "$WORK/signkey" &&
	git -C "$IMG" config gpg.ssh.allowedSignersFile "$WORK/allowed_signers" &&
	git -C "$IMG" commit -q --amend --allow-empty --no-edit -S || die "signing the image commit failed"
COMMIT=$(git -C "$IMG" rev-parse HEAD)
{
	echo "subnet 10.81.0.0 netmask 255.255.0.0 { option routers $RIP; }"
	for ((i = 1; i <= INVN; i++)); do echo "host n$i { hardware ethernet $(macof $i); fixed-address $(ipof $i); option host-name \"n$i\"; }"; done
} >"$WORK/dhcpd.conf"
declare -A INV_COMMIT
for v in $INV_LIST; do # one inventory commit per size: the first v hosts
	head -n $((v + 1)) "$WORK/dhcpd.conf" >"$WORK/dhcpd-$v.conf"
	(cd "$IMG" && git update-ref -d refs/onesis/inventory 2>/dev/null; git onesis node import "$WORK/dhcpd-$v.conf" >/dev/null) || die "node import failed"
	INV_COMMIT[$v]=$(git -C "$IMG" rev-parse refs/onesis/inventory)
done
git -C "$IMG" update-ref refs/onesis/inventory "${INV_COMMIT[$INVN]}"
for ((i = 1; i <= MAXN; i++)); do echo "$(macof $i),$(ipof $i)"; done >"$WORK/dnsmasq.hosts"
for ((i = 1; i <= MAXN; i++)); do macof $i; echo; done >"$WORK/macs"

VERIFY_FLAGS=()
if [ "${STORM_SKIP_VERIFY:-}" = 1 ]; then
	export GIT_ONESIS_BENCH_SKIP_VERIFY=1
	VERIFY_FLAGS=(--verify-rate 0)
fi
serve_start() { # extra serve flags...
	(cd "$IMG" && exec ip netns exec $SRV git onesis serve ${VERIFY_FLAGS[@]+"${VERIFY_FLAGS[@]}"} --iface s0 --addr $SIP --no-nfs --no-portmap --no-ra \
		--state-dir "$WORK/state" --init "$WORK/bin/onesis-init" --log-format json "$@") >"$WORK/serve.log" 2>&1 &
	SPID=$!
	PIDS+=("$SPID")
	for _ in $(seq 300); do ip netns exec $SRV curl -fsS -o /dev/null "http://$SIP:8080/status" 2>/dev/null && return 0; sleep 0.1; done
	die "serve did not start (see $WORK/serve.log)"
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }

# The same kernel and initramfs for everyone: serve builds the initramfs,
# the other servers get a copy of it.
serve_start
KSIZE=$(stat -c %s "$IMG/boot/vmlinuz-$KVER")
TFTPROOT=$WORK/tftproot
mkdir -p "$TFTPROOT/pxelinux.cfg"
cp /usr/lib/PXELINUX/pxelinux.0 /usr/lib/syslinux/modules/bios/ldlinux.c32 "$TFTPROOT/"
cp "$IMG/boot/vmlinuz-$KVER" "$TFTPROOT/vmlinuz"
ip netns exec $SRV curl -fsS -o "$TFTPROOT/initrd" "http://$SIP:8080/c/$COMMIT/initrd" || die "fetching the initramfs from serve failed"
ISIZE=$(stat -c %s "$TFTPROOT/initrd")
printf 'DEFAULT linux\nPROMPT 0\nLABEL linux\n  KERNEL vmlinuz\n  INITRD initrd\n  APPEND ip=dhcp ro\n' >"$TFTPROOT/pxelinux.cfg/default"
stop "$SPID"

RESULTS=$WORK/results.json
: >"$RESULTS"
# Server CPU: a cgroup (v2) holds the server under test, so processes it
# forks per transfer (tftpd-hpa) are counted; without one, /proc's times of
# the server processes and the children they reap.
HZ=$(getconf CLK_TCK)
CG=
cg2=$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)
if [ -n "$cg2" ] && mkdir "$cg2/stormbench.$$" 2>/dev/null; then CG=$cg2/stormbench.$$; fi
cpu_of() { # PID... -> CPU seconds (user + system) the servers used so far
	local p ticks=0
	if [ -n "$CG" ]; then
		for p in "$@"; do echo "$p" >"$CG/cgroup.procs" 2>/dev/null || true; done
		awk '$1 == "usage_usec" { printf "%.2f", $2 / 1e6 }' "$CG/cpu.stat"
		return
	fi
	for p in "$@"; do
		[ -r "/proc/$p/stat" ] || continue
		# Fields after "(comm) ": utime, stime, cutime, cstime are $12-$15.
		ticks=$((ticks + $(sed 's/^.*) //' "/proc/$p/stat" | awk '{ print $12 + $13 + $14 + $15 }')))
	done
	awk -v t=$ticks -v hz="$HZ" 'BEGIN { printf "%.2f", t / hz }'
}
serve_pid() { echo "$SPID" $(pgrep -P "$SPID" -x git-onesis); } # git runs git-onesis as its child
storm() { # NAME MODE N SERVER_PID...: the server's CPU is measured over the storm
	local out c0 c1
	c0=$(cpu_of "${@:4}")
	out=$(ip netns exec $CLI bootstorm -server "${SERVER_IP:-$SIP}" -relay $RIP -n "$3" -mode "$2" -name "$1" -timeout "${TIMEOUT}s") ||
		die "bootstorm failed"
	sleep 0.2 # let servers that fork per transfer reap the last ones
	c1=$(cpu_of "${@:4}")
	out=$(echo "$out" | jq -c --argjson c "$(awk -v a="$c0" -v b="$c1" 'BEGIN { printf "%.2f", b - a }')" '. + {server_cpu_s: $c}')
	echo "$out" >>"$RESULTS"
	note "$1 $2 N=$3: $(echo "$out" | jq -r '"ok \(.ok), all done \(.all_done_s) s, server CPU \(.server_cpu_s) s, client CPU \(.client_cpu_s) s"')"
}
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
	for n in $NS_LIST; do
		note "round $r, N=$n"
		# serve keeps its state (initramfs cache) between runs, as in production.
		for v in $INV_LIST; do
			git -C "$IMG" update-ref refs/onesis/inventory "${INV_COMMIT[$v]}"
			if want ipxe; then serve_start; storm "$(gname "$v")" ipxe "$n" $(serve_pid); stop "$SPID"; fi
			if want signed && [ "$v" = "$INVN" ]; then serve_start --require-signature; storm git-onesis-signed ipxe "$n" $(serve_pid); stop "$SPID"; fi
			if want pxelinux; then serve_start --pxelinux; storm "$(gname "$v")" pxelinux "$n" $(serve_pid); stop "$SPID"; fi
		done
		git -C "$IMG" update-ref refs/onesis/inventory "${INV_COMMIT[$INVN]}"
		want dnsmasq || continue
		ip netns exec $SRV dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=s0 --bind-interfaces \
			--listen-address=$SIP --dhcp-range=10.81.0.0,static,255.255.0.0 --dhcp-hostsfile="$WORK/dnsmasq.hosts" \
			--dhcp-boot=pxelinux.0 --enable-tftp --tftp-root="$TFTPROOT" --tftp-max=4000 --dhcp-leasefile="$WORK/dnsmasq.leases" \
			--log-facility=- --quiet-dhcp >"$WORK/dnsmasq.log" 2>&1 &
		DPID=$!; PIDS+=("$DPID"); sleep 1
		storm dnsmasq pxelinux "$n" "$DPID"; stop "$DPID"; rm -f "$WORK/dnsmasq.leases"
		want tftpd-hpa || continue
		# tftpd-hpa: DHCP from dnsmasq (no TFTP), which names tftpd-hpa's address.
		ip netns exec $SRV dnsmasq --no-daemon --conf-file=/dev/null --port=0 --interface=s0 --bind-interfaces \
			--listen-address=$SIP --dhcp-range=10.81.0.0,static,255.255.0.0 --dhcp-hostsfile="$WORK/dnsmasq.hosts" \
			--dhcp-boot=pxelinux.0,,$TIP --dhcp-leasefile="$WORK/dnsmasq.leases" --log-facility=- --quiet-dhcp >"$WORK/dnsmasq.log" 2>&1 &
		DPID=$!; PIDS+=("$DPID")
		ip netns exec $SRV /usr/sbin/in.tftpd --foreground --address $TIP:69 --secure "$TFTPROOT" &
		TPID=$!; PIDS+=("$TPID"); sleep 1
		storm tftpd-hpa pxelinux "$n" "$DPID" "$TPID"; stop "$DPID"; stop "$TPID"; rm -f "$WORK/dnsmasq.leases"
	done
done

# ---------------------------------------------------------------- perfdhcp
PERF_RATE=${STORM_PERF_RATE:-20000}
PERF_ROUNDS=${STORM_PERF_ROUNDS:-3}
declare -A PRATE PDROP
perf() { # NAME: one 10 s perfdhcp run; keeps NAME's best rate
	local out rate drop
	out=$(ip netns exec $CLI /usr/sbin/perfdhcp -4 -l c0 -r "$PERF_RATE" -p 10 -M "$WORK/macs" $SIP 2>&1 || true)
	echo "$out" >>"$WORK/perfdhcp-$1.log"
	rate=$(echo "$out" | awk '/^Rate:/ { print $2; exit }')
	drop=$(echo "$out" | awk '/drops:/ { d += $2 } /sent packets:/ { s += $3 } END { if (s) printf "%.1f", 100 * d / s; else print "n/a" }')
	note "perfdhcp $1: $rate exchanges/s, $drop% dropped"
	if [ -n "$rate" ] && { [ -z "${PRATE[$1]:-}" ] || awk -v a="$rate" -v b="${PRATE[$1]}" 'BEGIN { exit !(a > b) }'; }; then
		PRATE[$1]=$rate PDROP[$1]=$drop
	fi
}
cat >"$WORK/kea.json" <<EOF
{ "Dhcp4": {
  "interfaces-config": { "interfaces": [ "s0/$SIP" ] },
  "lease-database": { "type": "memfile", "persist": false },
  "valid-lifetime": 3600,
  "subnet4": [ { "subnet": "10.81.0.0/16", "pools": [ { "pool": "10.81.1.1 - 10.81.20.250" } ],
                 "option-data": [ { "name": "routers", "data": "$RIP" } ] } ],
  "loggers": [ { "name": "kea-dhcp4", "output_options": [ { "output": "stderr" } ], "severity": "ERROR" } ]
} }
EOF
mkdir -p /run/kea
# Alternated, best of PERF_ROUNDS each: a load spike from elsewhere on the
# machine then hits both servers alike.
for ((r = 1; r <= PERF_ROUNDS; r++)); do
	serve_start; perf git-onesis; stop "$SPID"
	ip netns exec $SRV /usr/sbin/kea-dhcp4 -c "$WORK/kea.json" >"$WORK/kea.log" 2>&1 &
	KPID=$!; PIDS+=("$KPID"); sleep 2
	perf kea-dhcp4; stop "$KPID"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
field() { sed -n "s/.*\"$1\":\"\{0,1\}\([^,\"}]*\).*/\1/p"; }
best() { # SERVER MODE N -> the JSON line with most ok, then shortest all_done
	grep "\"server\":\"$1\",\"mode\":\"$2\",\"n\":$3," "$RESULTS" |
		awk '{ match($0, /"ok":[0-9]+/); ok = substr($0, RSTART + 5, RLENGTH - 5); match($0, /"all_done_s":[0-9.e+-]+/); t = substr($0, RSTART + 13, RLENGTH - 13)
			if (best == "" || ok + 0 > bok + 0 || (ok + 0 == bok + 0 && t + 0 < bt + 0)) { best = $0; bok = ok; bt = t } } END { print best }'
}
row() { # LABEL SERVER MODE N
	local l; l=$(best "$2" "$3" "$4")
	[ -n "$l" ] || return 0
	printf '| %s | %s | %.2f s | %.2f s | %.2f s | %s | %s | %s | %.1f s | %.1f s |\n' "$1" "$4" "$(echo "$l" | field all_done_s)" "$(echo "$l" | field p50_s)" \
		"$(echo "$l" | field p99_s)" "$(echo "$l" | field failed)" "$(echo "$l" | field retries)" "$(echo "$l" | field distinct_kernels)" \
		"$(echo "$l" | jq '.server_cpu_s // 0')" "$(echo "$l" | jq '.client_cpu_s // 0')"
}
t_of() { best "$1" "$2" "$3" | field all_done_s; }
failed_of() { best "$1" "$2" "$3" | field failed; }
ratio() { # A B [WORD] -> a/b, with "n/a" if a run had failures
	awk -v a="$1" -v b="$2" -v w="${3:-faster}" 'BEGIN { if (a == "" || b == "" || b <= 0) { print "n/a"; exit } r = a / b
		if (r < 1) printf "%.2f× (%.1f× %s)", r, 1 / r, w; else printf "%.2f×", r }'
}
cmp() { # LABEL A_SERVER A_MODE B_SERVER B_MODE N
	[ -n "$(best "$2" "$3" "$6")" ] && [ -n "$(best "$4" "$5" "$6")" ] || return 0 # a configuration not run
	if [ "$(failed_of "$2" "$3" "$6")" != 0 ] || [ "$(failed_of "$4" "$5" "$6")" != 0 ]; then echo "| $1 | $6 | n/a (failures) |"; return; fi
	echo "| $1 | $6 | $(ratio "$(t_of "$2" "$3" "$6")" "$(t_of "$4" "$5" "$6")") |"
}
cpucmp() { # LABEL A_SERVER A_MODE B_SERVER B_MODE N [FIELD]: CPU seconds over the same storm
	local f=${7:-server_cpu_s} a b
	a=$(best "$2" "$3" "$6" | jq ".$f // empty" 2>/dev/null) b=$(best "$4" "$5" "$6" | jq ".$f // empty" 2>/dev/null)
	[ -n "$a" ] && [ -n "$b" ] || return 0
	echo "| $1 | $6 | $(ratio "$a" "$b" cheaper) |"
}
gen() {
	echo "Generated by \`make bench-storm\` (stormbench.sh) on $(date -u +%Y-%m-%d) UTC."
	echo
	echo "**Machine:** $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r)."
	echo "**Software:** $(go version | sed 's/^go version //'), $(/usr/sbin/dnsmasq --version | head -1), tftpd-hpa $(dpkg-query -W -f '${Version}' tftpd-hpa 2>/dev/null), kea $(/usr/sbin/kea-dhcp4 -v 2>/dev/null)."
	echo "**Files:** kernel $KSIZE bytes ($KNOTE), initramfs $ISIZE bytes (built by serve, copied for the others); iPXE's undionly.kpxe $(stat -c %s /usr/lib/ipxe/undionly.kpxe) bytes, pxelinux.0 $(stat -c %s /usr/lib/PXELINUX/pxelinux.0) bytes. Best of $ROUNDS round(s); storm timeout ${TIMEOUT} s."
	echo "**Inventory:** $INVN nodes known to git-onesis serve (rows that say so: $INV_LIST), of which the storm's N boot."
	echo "**Load average** (1, 5, 15 min): $LOAD_BEFORE before, $LOAD_AFTER after."
	echo
	echo "| server and chain | N | all done | p50 per node | p99 per node | failed | retries | distinct kernels | server CPU | client CPU |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
	for n in $NS_LIST; do
		row "git-onesis, iPXE: DHCP, TFTP loader, DHCP, HTTP script, kernel, initramfs" git-onesis ipxe "$n"
		row "git-onesis, iPXE, signed commits only (\`--require-signature\`)" git-onesis-signed ipxe "$n"
		row "git-onesis \`--pxelinux\`: DHCP, then all over TFTP" git-onesis pxelinux "$n"
		for v in $INV_LIST; do
			[ "$v" = "$INVN" ] && continue
			row "git-onesis, iPXE, with a $v-node inventory" "$(gname "$v")" ipxe "$n"
			row "git-onesis \`--pxelinux\`, with a $v-node inventory" "$(gname "$v")" pxelinux "$n"
		done
		row "dnsmasq (DHCP + TFTP), PXELINUX chain" dnsmasq pxelinux "$n"
		row "dnsmasq DHCP + tftpd-hpa, PXELINUX chain" tftpd-hpa pxelinux "$n"
	done
	echo
	echo "Where git-onesis's two chains spend their time, per stage: p50 / p99 over the nodes, in seconds (a stage's time includes its retries)."
	echo
	for n in $NS_LIST; do for m in ipxe pxelinux; do
		l=$(best git-onesis $m "$n")
		[ -n "$l" ] || continue
		echo "- $m, N=$n: $(echo "$l" | jq -r '.stages as $s | ["dhcp-pxe","tftp","dhcp-ipxe","script","pxelinux.cfg","kernel","initrd"]
			| map(select($s[.] != null) | "\(.) \($s[.][0] * 100 | round / 100) / \($s[.][1] * 100 | round / 100)") | join(", ")')"
	done; done
	echo
	echo "Ratios are all-done times, or CPU seconds where the row says so, first / second: below 1 means the first is faster or cheaper. Server CPU is user + system time of the server processes over the storm (tftpd-hpa's with the children it forks, and the DHCP server's), client CPU the simulator's; the two share the machine's $(nproc) CPUs, so a server that costs its clients more wake-ups shows in both."
	echo
	echo "| comparison | N | ratio |"
	echo "|---|---:|---:|"
	for n in $NS_LIST; do cmp "git-onesis TFTP chain vs dnsmasq" git-onesis pxelinux dnsmasq pxelinux "$n"; done
	for n in $NS_LIST; do cmp "git-onesis TFTP chain vs dnsmasq + tftpd-hpa" git-onesis pxelinux tftpd-hpa pxelinux "$n"; done
	for n in $NS_LIST; do cmp "git-onesis HTTP (iPXE) chain vs git-onesis TFTP chain" git-onesis ipxe git-onesis pxelinux "$n"; done
	for n in $NS_LIST; do cmp "git-onesis iPXE chain, signature policy on vs off" git-onesis-signed ipxe git-onesis ipxe "$n"; done
	for n in $NS_LIST; do cpucmp "server CPU: git-onesis iPXE chain, signature policy on vs off" git-onesis-signed ipxe git-onesis ipxe "$n"; done
	for v in $INV_LIST; do
		[ "$v" = "$INVN" ] && continue
		for n in $NS_LIST; do for m in ipxe pxelinux; do
			[ -n "$(best git-onesis "$m" "$n")" ] || continue
			cmp "git-onesis $m chain, $INVN-node inventory vs $v-node inventory" git-onesis "$m" "$(gname "$v")" "$m" "$n"
		done; done
	done
	for n in $NS_LIST; do cpucmp "server CPU: git-onesis TFTP chain vs dnsmasq" git-onesis pxelinux dnsmasq pxelinux "$n"; done
	for n in $NS_LIST; do cpucmp "server CPU: git-onesis TFTP chain vs dnsmasq + tftpd-hpa" git-onesis pxelinux tftpd-hpa pxelinux "$n"; done
	for n in $NS_LIST; do cpucmp "client CPU: git-onesis TFTP chain vs dnsmasq" git-onesis pxelinux dnsmasq pxelinux "$n" client_cpu_s; done
	echo
	echo "DHCP alone, kea's perfdhcp (\`-r $PERF_RATE -p 10\`, full DORA exchanges, as a relay, MACs drawn from the $MAXN known nodes): best of $PERF_ROUNDS alternated 10 s runs each: git-onesis ${PRATE[git-onesis]:-n/a} exchanges/s (${PDROP[git-onesis]:-n/a}% dropped), kea-dhcp4 ${PRATE[kea-dhcp4]:-n/a} exchanges/s (${PDROP[kea-dhcp4]:-n/a}% dropped); git-onesis / kea-dhcp4 = $(awk -v a="${PRATE[git-onesis]:-0}" -v b="${PRATE[kea-dhcp4]:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }') (above 1: git-onesis completes more exchanges per second)."
}
BEGIN='<!-- BEGIN GENERATED: make bench-storm -->'
END='<!-- END GENERATED: make bench-storm -->'
OUTTXT=$(gen)
cp "$RESULTS" "${TMPDIR:-/tmp}/stormbench-results.json"
if [ "$OUT" = - ]; then printf '%s\n' "$OUTTXT"; exit 0; fi
replace_section "$OUT" "$BEGIN" "$END" "$OUTTXT"
note "wrote the bench-storm part of $OUT"
