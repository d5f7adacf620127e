#!/usr/bin/env bash
# git-onesis boot benchmark: N simulated nodes fetch a kernel and an initrd
# at once, over TFTP from git-onesis (boot/tftp), dnsmasq and tftpd-hpa, and
# over HTTP from git-onesis (boot/httpboot), in one run. Writes the results
# into the `make bench-boot` part of docs/benchmarks.md.
#
# Usage (from the repository root; `make bench-boot` does this):
#     bash internal/bench/bootbench.sh
#
# Environment:
#     BOOTBENCH_N        client counts         (default "10 50 100")
#     BOOTBENCH_BLKSIZE  TFTP block sizes      (default "1408 512")
#     BOOTBENCH_TIMEOUT  seconds per run       (default 300; late clients count as failed)
#     BOOTBENCH_ROUNDS   rounds of the whole matrix (default 3; the best run of
#                        each configuration is reported)
#     BOOTBENCH_OUT      markdown file to update (default docs/benchmarks.md;
#                        "-" prints the generated part only)
#
# Needs root: all traffic stays inside two network namespaces this script
# creates (servers and clients, joined by a veth pair on 10.77.91.0/24) and
# deletes on exit. Installs dnsmasq-base and tftpd-hpa with apt if missing;
# both servers are run by this script, never as system services.
# Timings are informational only; nothing here is a test assertion.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$REPO/internal/bench/lib.sh"
NS_LIST=${BOOTBENCH_N:-10 50 100}
BLK_LIST=${BOOTBENCH_BLKSIZE:-1408 512}
TIMEOUT=${BOOTBENCH_TIMEOUT:-300}
ROUNDS=${BOOTBENCH_ROUNDS:-3}
OUT=${BOOTBENCH_OUT:-$REPO/docs/benchmarks.md}
GO=${GO:-go}

say() { printf '\n### %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench-boot: fatal: %s\n' "$*" >&2; exit 128; }

[ "$(id -u)" = 0 ] || die "run as root: the benchmark creates network namespaces"
export LC_ALL=C

# ---------------------------------------------------------------- tools
have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ]; }
APT_UPDATED=
apt_install() {
	command -v apt-get >/dev/null 2>&1 || return 1
	[ -n "$APT_UPDATED" ] || { apt-get update -qq >&2 || true; APT_UPDATED=1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >&2
}
INSTALL_NOTES=()
# dnsmasq-base is the binary only (the dnsmasq package would start a DNS service).
if ! have dnsmasq; then
	apt_install dnsmasq-base && INSTALL_NOTES+=("installed dnsmasq-base") || note "dnsmasq not available: its rows are skipped"
fi
if ! have in.tftpd; then
	# Was a TFTP service already listening on the host before we installed?
	before=$(ss -Hulpn 'sport = :69' 2>/dev/null | grep -c in.tftpd || true)
	if apt_install tftpd-hpa; then
		INSTALL_NOTES+=("installed tftpd-hpa")
		# The package's postinst may start a host service on port 69 (Docker's
		# policy-rc.d usually prevents it). We run in.tftpd ourselves, so stop
		# a service that our install started, and say so.
		after=$(ss -Hulpn 'sport = :69' 2>/dev/null | grep -c in.tftpd || true)
		if [ "$before" = 0 ] && [ "$after" != 0 ]; then
			note "tftpd-hpa's package started a host service on port 69; stopping it (service tftpd-hpa stop)"
			service tftpd-hpa stop >&2 || true
			INSTALL_NOTES+=("stopped the tftpd-hpa service its package had started")
		fi
	else
		note "tftpd-hpa not available: its rows are skipped"
	fi
fi
DNSMASQ=$(command -v dnsmasq || echo /usr/sbin/dnsmasq)
INTFTPD=$(command -v in.tftpd || echo /usr/sbin/in.tftpd)

# ---------------------------------------------------------------- work area
WORK=$(mktemp -d "${TMPDIR:-/tmp}/git-onesis-bench-boot.XXXXXX")
chmod 755 "$WORK" # tftpd-hpa and dnsmasq drop to an unprivileged user
NSS=onesis-bb-srv-$$
NSC=onesis-bb-cli-$$
VS=bbs$$ VC=bbc$$
SRV_IP=10.77.91.1 CLI_IP=10.77.91.2
PIDS=()

cleanup() {
	set +e
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null; done
	# Anything left in our own namespaces was started by us (e.g. tftpd-hpa's
	# per-transfer children).
	for ns in "$NSS" "$NSC"; do
		if ip netns list 2>/dev/null | grep -qw "$ns"; then
			for p in $(ip netns pids "$ns" 2>/dev/null); do kill "$p" 2>/dev/null; done
			ip netns del "$ns" 2>/dev/null
		fi
	done
	rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building bootfetch"
(cd "$REPO" && CGO_ENABLED=0 $GO build -o "$WORK/bootfetch" ./internal/bench/bootfetch)
BF=$WORK/bootfetch

say "files"
ROOT=$WORK/root
mkdir -p "$ROOT"
chmod 755 "$ROOT"
KSRC=$(ls /var/cache/git-onesis-test/linux-image-*/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -n "$KSRC" ] && [ -f "$KSRC" ]; then
	cp "$KSRC" "$ROOT/vmlinuz"
	KDESC="Debian $(basename "$KSRC")"
else
	head -c $((8 * 1024 * 1024)) /dev/urandom >"$ROOT/vmlinuz"
	KDESC="random data (no Debian kernel in /var/cache/git-onesis-test)"
fi
head -c $((4 * 1024 * 1024)) /dev/urandom >"$ROOT/initrd.img"
chmod 644 "$ROOT/vmlinuz" "$ROOT/initrd.img"
KSIZE=$(stat -c %s "$ROOT/vmlinuz")
ISIZE=$(stat -c %s "$ROOT/initrd.img")
note "kernel: $KSIZE bytes ($KDESC); initrd: $ISIZE bytes (random)"

# Every server gets its own address on the server side of the veth, so all
# of them run at once and the runs can be interleaved (for each N and block
# size: ours, dnsmasq, tftpd-hpa back to back): a load spike from another
# process on the machine then hits neighbouring rows, not one server's.
OURS_IP=$SRV_IP DNSMASQ_IP=10.77.91.3 HPA_IP=10.77.91.4
say "network namespaces $NSS (servers, $SRV_IP $DNSMASQ_IP $HPA_IP) and $NSC (clients, $CLI_IP)"
ip netns add "$NSS"
ip netns add "$NSC"
ip link add "$VS" type veth peer name "$VC"
ip link set "$VS" netns "$NSS"
ip link set "$VC" netns "$NSC"
for a in "$OURS_IP" "$DNSMASQ_IP" "$HPA_IP"; do ip -n "$NSS" addr add "$a/24" dev "$VS"; done
ip -n "$NSC" addr add "$CLI_IP/24" dev "$VC"
for ns in "$NSS" "$NSC"; do ip -n "$ns" link set lo up; done
ip -n "$NSS" link set "$VS" up
ip -n "$NSC" link set "$VC" up
MTU=$(ip -n "$NSS" -o link show "$VS" | sed -n 's/.* mtu \([0-9]*\).*/\1/p')

# ---------------------------------------------------------------- servers
start_server() { # name proto ip port cmd...
	local name=$1 proto=$2 ip=$3 port=$4 pid
	shift 4
	ip netns exec "$NSS" "$@" >"$WORK/$name.log" 2>&1 &
	pid=$!
	PIDS+=("$pid")
	local flag=-Hlun
	[ "$proto" = http ] && flag=-Hltn
	for _ in $(seq 100); do
		if ip netns exec "$NSS" ss $flag "src $ip:$port" | grep -q .; then return 0; fi
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	note "$name did not start listening on $ip:$port:"
	sed 's/^/      /' "$WORK/$name.log" >&2
	return 1
}

RESULTS=$WORK/results.jsonl
: >"$RESULTS"
SKIPPED=()
TFTP_SERVERS=() # "name ip:port" of the TFTP servers that work
HTTP_SERVERS=()
fetch() { # name proto ip:port n blksize
	ip netns exec "$NSC" "$BF" fetch -name "$1" -proto "$2" -server "$3" -n "$4" -blksize "$5" \
		-kernel-size "$KSIZE" -initrd-size "$ISIZE" -timeout "${TIMEOUT}s"
}
# warm name proto ip:port: one client, not recorded; it warms the server up
# and checks it serves both files whole. Only servers that pass are timed.
warm() {
	local line
	if line=$(fetch "$1" "$2" "$3" 1 1408) && grep -q '"failed":0' <<<"$line"; then
		if [ "$2" = http ]; then HTTP_SERVERS+=("$1 $3"); else TFTP_SERVERS+=("$1 $3"); fi
	else
		note "$1 $2: warm-up fetch failed ($line); skipping it"
		SKIPPED+=("$1 $2 (warm-up fetch failed)")
	fi
}

say "starting the servers"
if start_server ours-tftp udp "$OURS_IP" 69 "$BF" tftp-server -addr "$OURS_IP:69" -iface "$VS" \
	-kernel "$ROOT/vmlinuz" -initrd "$ROOT/initrd.img"; then
	warm git-onesis tftp "$OURS_IP:69"
else SKIPPED+=("git-onesis tftp (did not start)"); fi
if have dnsmasq && start_server dnsmasq udp "$DNSMASQ_IP" 69 "$DNSMASQ" --no-daemon --conf-file=/dev/null \
	--port=0 --no-resolv --no-hosts --log-facility=- --enable-tftp --tftp-root="$ROOT" \
	--tftp-max=1000 --listen-address="$DNSMASQ_IP" --bind-interfaces; then
	warm dnsmasq tftp "$DNSMASQ_IP:69"
else SKIPPED+=("dnsmasq (not installed or did not start)"); fi
if have in.tftpd && start_server tftpd-hpa udp "$HPA_IP" 69 "$INTFTPD" --foreground --secure \
	--address "$HPA_IP:69" "$ROOT"; then
	warm tftpd-hpa tftp "$HPA_IP:69"
else SKIPPED+=("tftpd-hpa (not installed or did not start)"); fi
if start_server ours-http http "$OURS_IP" 8080 "$BF" http-server -addr "$OURS_IP:8080" \
	-kernel "$ROOT/vmlinuz" -initrd "$ROOT/initrd.img"; then
	warm git-onesis http "$OURS_IP:8080"
else SKIPPED+=("git-onesis http (did not start)"); fi

LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
record() { # name proto ip:port n blksize
	local line
	line=$(fetch "$@") || true
	note "$1 $2 blksize=$5 n=$4: $line"
	if [ -n "$line" ]; then printf '%s\n' "$line" >>"$RESULTS"; fi
	sleep 1
}
for round in $(seq "$ROUNDS"); do
	for n in $NS_LIST; do
		for blk in $BLK_LIST; do
			for s in "${TFTP_SERVERS[@]}"; do
				say "round $round/$ROUNDS, $s: $n clients, blksize $blk"
				record ${s% *} tftp ${s#* } "$n" "$blk"
			done
		done
		for s in "${HTTP_SERVERS[@]}"; do
			say "round $round/$ROUNDS, $s: $n clients, HTTP"
			record ${s% *} http ${s#* } "$n" 0
		done
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- report
v() { "$@" 2>&1 | head -1; }
gen() {
	echo "Generated by \`make bench-boot\` (bootbench.sh) on $(date -u +%Y-%m-%d) UTC."
	echo
	echo "**Machine:** $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r)."
	echo "**Software:** $(v $GO version | sed 's/^go version //'), pin/tftp $(cd "$REPO" && $GO list -m -f '{{.Version}}' github.com/pin/tftp/v3), $(v "$DNSMASQ" --version | sed 's/  Copyright.*//'), tftpd-hpa $(v "$INTFTPD" -V | awk '{print $2}' | tr -d ,)."
	echo "**Files:** kernel $KSIZE bytes ($KDESC), initrd $ISIZE bytes (random); each client fetches the kernel, then the initrd. Link: veth, MTU $MTU. Run timeout ${TIMEOUT} s. Best of $ROUNDS rounds."
	echo "**Load average** (1, 5, 15 min; the machine may be shared): $LOAD_BEFORE before the timed runs, $LOAD_AFTER after."
	if [ ${#SKIPPED[@]} -gt 0 ]; then
		echo "**Skipped:** $(IFS=';'; echo "${SKIPPED[*]}")."
	fi
	echo
	"$BF" report <"$RESULTS"
}
BEGIN='<!-- BEGIN GENERATED: make bench-boot -->'
END='<!-- END GENERATED: make bench-boot -->'
OUTTXT=$(gen)
if [ "$OUT" = - ]; then
	printf '%s\n' "$OUTTXT"
else
	replace_section "$OUT" "$BEGIN" "$END" "$OUTTXT" "## Network boot: TFTP and HTTP under N concurrent nodes"
	say "wrote $OUT"
	printf '%s\n' "$OUTTXT"
fi
if [ ${#INSTALL_NOTES[@]} -gt 0 ]; then
	say "installed: $(IFS=';'; echo "${INSTALL_NOTES[*]}")"
fi
