#!/usr/bin/env bash
# git-onesis NFS root under load: 1 and NFSBENCH_N simulated nodes each read
# a whole committed root file system through the embedded NFS server
# (boot/nfsroot, what `git onesis serve` exports) and through NFS-Ganesha
# exporting the tree `git onesis exports` materialises for the same commit,
# against `tar cf - . | cat` of the same checked-out tree run as many times
# at once, in one run; the servers' peak memory is read from /proc while
# they run. Writes the results into the `make bench-nfs` part of
# docs/benchmarks.md.
#
# Usage (from the repository root; `make bench-nfs` does this):
#     bash internal/bench/nfsbench.sh
#
# Environment:
#     NFSBENCH_DIR     cache and work area (default /var/tmp/git-onesis-nfsbench)
#     NFSBENCH_ROOTFS  the root file system to commit (default: make bench's
#                      debootstrap minbase cache, /var/tmp/git-onesis-bench/rootfs,
#                      else a new debootstrap --variant=minbase bookworm)
#     NFSBENCH_N       concurrent clients of the loaded run (default 20)
#     NFSBENCH_ROUNDS  rounds (default 2; the best run of each row counts)
#     NFSBENCH_BASE    a git revision whose embedded server gets rows of its
#                      own, read by the same clients (e.g. main before a
#                      change; default: none)
#     NFSBENCH_PROFILE directory for CPU profiles of the embedded servers
#                      over the whole run (default: none)
#     NFSBENCH_OUT     markdown file to update (default docs/benchmarks.md;
#                      "-" prints the generated part only)
#     NFSBENCH_SKIP_VERIFY=1 runs the embedded servers without verifying the
#                      stored blobs before serving them (nfsload server
#                      -skip-verify): the "before" arm for measuring what
#                      served-byte verification costs; use with
#                      NFSBENCH_OUT=- (docs/benchmarks.md, "Served-byte
#                      verification")
#
# Needs root (the image holds device nodes and other owners; a network
# namespace and a mount namespace for NFS-Ganesha). All traffic is on the
# loopback of a namespace the script creates and deletes. Timings are
# informational only; nothing here is a test assertion.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$REPO/internal/bench/lib.sh"
DIR=${NFSBENCH_DIR:-/var/tmp/git-onesis-nfsbench}
ROOTFS=${NFSBENCH_ROOTFS:-/var/tmp/git-onesis-bench/rootfs}
N=${NFSBENCH_N:-20}
ROUNDS=${NFSBENCH_ROUNDS:-2}
BASE=${NFSBENCH_BASE:-}
PROFILE=${NFSBENCH_PROFILE:-}
OUT=${NFSBENCH_OUT:-$REPO/docs/benchmarks.md}
VERIFY_ARGS=()
[ "${NFSBENCH_SKIP_VERIFY:-}" != 1 ] || VERIFY_ARGS=(-skip-verify)
GO=${GO:-go}
MIRROR=${BENCH_MIRROR:-http://deb.debian.org/debian}

note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench-nfs: fatal: %s\n' "$*" >&2; exit 128; }
[ "$(id -u)" = 0 ] || die "run as root: the image holds device nodes and other owners"
for tool in ganesha.nfsd rpcbind unshare ip tar; do
	command -v "$tool" >/dev/null || die "$tool not found; install the benchmark's packages: .ci/deps bench"
done
[ -n "$(find /usr/lib -name libfsalvfs.so 2>/dev/null | head -1)" ] ||
	die "NFS-Ganesha's VFS FSAL (libfsalvfs.so, Debian package nfs-ganesha-vfs) not found; .ci/deps bench"
export LC_ALL=C

mkdir -p "$DIR"
BIN=$DIR/bin
mkdir -p "$BIN"
(cd "$REPO" && "$GO" build -o "$BIN/git-onesis" ./cmd/git-onesis && "$GO" build -o "$BIN/nfsload" ./internal/bench/nfsload) ||
	die "building git-onesis and nfsload failed"
BASE_SHA=
if [ -n "$BASE" ]; then
	BASE_SHA=$(git -C "$REPO" rev-parse --short "$BASE^{commit}") || die "NFSBENCH_BASE=$BASE is not a commit"
	rm -rf "$DIR/base-src" && mkdir -p "$DIR/base-src"
	git -C "$REPO" archive "$BASE_SHA" | tar -x -C "$DIR/base-src"
	(cd "$DIR/base-src" && "$GO" build -o "$BIN/nfsload-base" ./internal/bench/nfsload) || die "building nfsload at $BASE failed"
fi
export PATH=$BIN:$PATH
HOME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nfsbench-home.XXXXXX")
NS=nfsbench-$$
GAN_DIR=$DIR/ganesha
SRV_PID= BASE_PID=
cleanup() {
	local p
	for p in "$SRV_PID" "$BASE_PID" $(cat "$GAN_DIR/ganesha.pid" "$GAN_DIR/rpcbind.pid" 2>/dev/null); do
		[ -z "$p" ] || kill "$p" 2>/dev/null || true
	done
	sleep 1
	ip netns del "$NS" 2>/dev/null || true
	rm -rf "$HOME_DIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
export HOME=$HOME_DIR GIT_CONFIG_NOSYSTEM=1 GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.com \
	GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.com

# ---------------------------------------------------------------- corpus
if [ ! -d "$ROOTFS/usr" ]; then
	ROOTFS=$DIR/rootfs
	if [ ! -d "$ROOTFS/usr" ]; then
		command -v debootstrap >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >&2; }
		note "debootstrap --variant=minbase bookworm into $ROOTFS"
		rm -rf "$ROOTFS.tmp"
		debootstrap --variant=minbase bookworm "$ROOTFS.tmp" "$MIRROR" >"$DIR/debootstrap.log" 2>&1 ||
			die "debootstrap failed (see $DIR/debootstrap.log)"
		mv "$ROOTFS.tmp" "$ROOTFS"
	fi
fi
IMG=$DIR/image
if [ ! -f "$IMG/.done" ]; then
	note "committing a copy of $ROOTFS with git onesis init --commit"
	rm -rf "$IMG" "$DIR/exports"
	cp -a "$ROOTFS" "$IMG"
	(cd "$IMG" && git onesis init --commit -q >/dev/null) || die "git onesis init failed"
	touch "$IMG/.git/onesis-nfsbench-done" "$IMG/.done"
fi
COMMIT=$(git -C "$IMG" rev-parse HEAD)
ENTRIES=$(grep -c '^\./' "$IMG/.gitmeta" || true)
FILES=$(git -C "$IMG" ls-files | wc -l)
SIZE=$(du -sh --exclude=.git "$IMG" | cut -f1)

# ---------------------------------------------------------------- servers
ip netns add "$NS" || die "cannot create the network namespace $NS"
ip -n "$NS" link set lo up
inns() { ip netns exec "$NS" "$@"; }

start_server() { # NAME BINARY: an embedded server in the namespace; sets LAST_PID, LAST_PORT
	local name=$1 bin=$2 prof=()
	rm -rf "$DIR/state-$name" && mkdir -p "$DIR/state-$name"
	[ -z "$PROFILE" ] || { mkdir -p "$PROFILE" && prof=(-cpuprofile "$PROFILE/$name.pprof"); }
	ip netns exec "$NS" "$bin" server -repo "$IMG" -commit "$COMMIT" -state "$DIR/state-$name" ${VERIFY_ARGS[@]+"${VERIFY_ARGS[@]}"} "${prof[@]}" >"$DIR/$name.out" 2>"$DIR/$name.log" &
	LAST_PID=$!
	for _ in $(seq 100); do grep -q '^port ' "$DIR/$name.out" 2>/dev/null && break; sleep 0.1; done
	LAST_PORT=$(awk '/^port /{print $2}' "$DIR/$name.out")
	[ -n "$LAST_PORT" ] || die "the $name NFS server did not start (see $DIR/$name.log)"
}
start_server ours "$BIN/nfsload"
SRV_PID=$LAST_PID PORT=$LAST_PORT
if [ -n "$BASE" ]; then
	start_server base "$BIN/nfsload-base"
	BASE_PID=$LAST_PID BASE_PORT=$LAST_PORT
fi

# NFS-Ganesha (VFS FSAL) exports the tree `git onesis exports` materialises
# for the same commit: the checkout with .gitmeta applied and the same
# placeholders. It exits unless it can register with a portmapper, so it
# runs with its own rpcbind, in a mount namespace with a private /run
# (rpcbind's socket), inside the network namespace.
EXPORTS=$DIR/exports
TREE=$EXPORTS/c/$COMMIT
if [ ! -d "$TREE" ]; then
	note "materialising $COMMIT with git onesis exports --prepare (for NFS-Ganesha)"
	(cd "$IMG" && git onesis exports --prepare --dir "$EXPORTS" --client 127.0.0.1 >/dev/null) || die "git onesis exports --prepare failed"
fi
[ -d "$TREE" ] || die "git onesis exports made no $TREE"
# The embedded server hides every top-level .git* name; exports leaves
# .gitignore in the tree. Both servers must serve the same files.
find "$TREE" -mindepth 1 -maxdepth 1 -name '.git*' -exec rm -rf {} +
rm -rf "$GAN_DIR" && mkdir -p "$GAN_DIR"
GAN_PORT=2049 GAN_MNT=20048
printf '%s\n' \
	"NFS_CORE_PARAM { NFS_Port = $GAN_PORT; MNT_Port = $GAN_MNT; Enable_NLM = false; Enable_RQUOTA = false; Protocols = 3; }" \
	"NFSV4 { Graceless = true; }" \
	"EXPORT {" \
	"	Export_Id = 77; Path = $TREE; Pseudo = /c/$COMMIT;" \
	"	Access_Type = RO; Squash = No_Root_Squash; Protocols = 3; Transports = TCP; SecType = sys;" \
	"	FSAL { Name = VFS; }" \
	"	CLIENT { Clients = 127.0.0.1; Access_Type = RO; }" \
	"}" >"$GAN_DIR/ganesha.conf"
printf '%s\n' \
	'set -e' \
	'mount -t tmpfs -o mode=0755 tmpfs /run' \
	'rpcbind -f -w &' \
	'echo $! >"$1/rpcbind.pid"' \
	'for _ in $(seq 50); do [ -S /run/rpcbind.sock ] && break; sleep 0.1; done' \
	'exec ganesha.nfsd -F -f "$1/ganesha.conf" -L "$1/ganesha.log" -p "$1/ganesha.pid" -N NIV_EVENT' >"$GAN_DIR/run.sh"
inns unshare -m --propagation private bash "$GAN_DIR/run.sh" "$GAN_DIR" >"$GAN_DIR/run.log" 2>&1 &
for _ in $(seq 150); do grep -q 'NFS SERVER INITIALIZED' "$GAN_DIR/ganesha.log" 2>/dev/null && break; sleep 0.2; done
grep -q 'NFS SERVER INITIALIZED' "$GAN_DIR/ganesha.log" 2>/dev/null || die "NFS-Ganesha did not start (see $GAN_DIR/ganesha.log)"
GAN_PID=$(cat "$GAN_DIR/ganesha.pid")
GAN_VERSION=$(dpkg-query -W -f '${Version}' nfs-ganesha 2>/dev/null || echo '?')

rss() { awk -v k="$2:" '$1 == k { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; } # PID KEY: MiB
read_args() { # ROW: nfsload read's arguments for that row's server and client
	case $1 in
	ours) echo "-port $PORT -commit $COMMIT -client pipelined" ;;
	sync) echo "-port $PORT -commit $COMMIT -client sync" ;;
	base) echo "-port $BASE_PORT -commit $COMMIT -client pipelined" ;;
	basesync) echo "-port $BASE_PORT -commit $COMMIT -client sync" ;;
	ganesha) echo "-port $GAN_PORT -mountport $GAN_MNT -export $TREE -client pipelined" ;;
	esac
}
row_pid() { case $1 in ours | sync) echo "$SRV_PID" ;; base | basesync) echo "$BASE_PID" ;; ganesha) echo "$GAN_PID" ;; esac; }

note "warm-up: one client reads the commit from each server once (index, blob store, page cache; not counted)"
for row in ours ganesha ${BASE:+base}; do
	# shellcheck disable=SC2046
	inns nfsload read $(read_args "$row") -n 1 >"$DIR/warmup-$row.json" || die "warm-up read from $row failed"
	grep -q '"failed":0' "$DIR/warmup-$row.json" || die "warm-up read from $row failed: $(cat "$DIR/warmup-$row.json")"
done
RSS_IDLE=$(rss "$SRV_PID" VmRSS)

declare -A BEST HWM P50 P99 RPCS
best() { # KEY SECONDS: keep the smaller
	if [ -z "${BEST[$1]:-}" ] || awk -v a="$2" -v b="${BEST[$1]}" 'BEGIN { exit !(a < b) }'; then BEST[$1]=$2; fi
}
field() { echo "$1" | sed "s/.*\"$2\":\([0-9.e+-]*\).*/\1/"; } # JSON NAME
PERFILES= PERBYTES=
nfs_run() { # ROW CLIENTS
	local out key=$1$2 files bytes prev
	# shellcheck disable=SC2046
	out=$(inns nfsload read $(read_args "$1") -n "$2")
	echo "$1 $out" >>"$DIR/runs.json"
	echo "$out" | grep -q '"failed":0' || die "$1 run with $2 clients had failures: $out"
	files=$(field "$out" files_per_client) bytes=$(field "$out" bytes_per_client)
	[ -n "$PERFILES" ] || PERFILES=$files PERBYTES=$bytes
	[ "$files" = "$PERFILES" ] && [ "$bytes" = "$PERBYTES" ] ||
		die "$1 read $files files, $bytes bytes per client; the first run read $PERFILES, $PERBYTES"
	prev=${BEST[$key]:-}
	best "$key" "$(field "$out" all_done_s | xargs printf '%.2f')"
	if [ "${BEST[$key]}" != "$prev" ]; then # this run is the best so far: its percentiles
		P50[$key]=$(field "$out" p50_s | xargs printf '%.2f')
		P99[$key]=$(field "$out" p99_s | xargs printf '%.2f')
	fi
	RPCS[$key]=$(field "$out" rpcs_per_client)
	# VmHWM only grows: take it after the first run of each size.
	[ -n "${HWM[$key]:-}" ] || HWM[$key]=$(rss "$(row_pid "$1")" VmHWM)
}
tar_run() { # CLIENTS
	local s e i pids=()
	s=$(date +%s%N)
	for ((i = 0; i < $1; i++)); do
		(cd "$IMG" && tar --exclude=./.git -cf - . | cat >/dev/null) &
		pids+=($!)
	done
	wait "${pids[@]}" # not the servers
	e=$(date +%s%N)
	best "tar$1" "$(awk -v n=$((e - s)) 'BEGIN { printf "%.2f", n / 1e9 }')"
}
: >"$DIR/runs.json"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
tar_run 1 # warms the page cache for tar
for ((r = 1; r <= ROUNDS; r++)); do
	note "round $r: git-onesis, tar, NFS-Ganesha${BASE:+, $BASE_SHA}, go-nfs-client (both); 1 and $N clients each"
	nfs_run ours 1
	tar_run 1
	nfs_run ours "$N"
	tar_run "$N"
	nfs_run ganesha 1
	nfs_run ganesha "$N"
	if [ -n "$BASE" ]; then
		nfs_run base 1
		nfs_run base "$N"
	fi
	nfs_run sync 1
	nfs_run sync "$N"
	if [ -n "$BASE" ]; then
		nfs_run basesync 1
		nfs_run basesync "$N"
	fi
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
RSS_END=$(rss "$SRV_PID" VmRSS)
GAN_HWM=$(rss "$GAN_PID" VmHWM)
for p in "$SRV_PID" "$BASE_PID"; do [ -z "$p" ] || { kill "$p"; wait "$p" 2>/dev/null || true; }; done # writes the profiles
SRV_PID= BASE_PID=

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r < 1) printf "%.2f× (%.1f× faster)", r, 1 / r; else printf "%.2f×", r }'; }
mbps() { awk -v b="$1" -v n="$2" -v t="$3" 'BEGIN { printf "%.1f", b * n / 1e6 / t }'; }
label() {
	case $1 in
	ours) echo "git-onesis NFS (pipelined client)" ;;
	sync) echo "git-onesis NFS (go-nfs-client, synchronous)" ;;
	ganesha) echo "NFS-Ganesha $GAN_VERSION, VFS (pipelined client)" ;;
	base) echo "git-onesis NFS at $BASE_SHA (pipelined client)" ;;
	basesync) echo "git-onesis NFS at $BASE_SHA (go-nfs-client, synchronous)" ;;
	esac
}
nfs_row() { # ROW CLIENTS
	local k=$1$2 rpcs=${RPCS[$1$2]}
	[ "$rpcs" != 0 ] || rpcs="(not counted)"
	echo "| $(label "$1") | $2 | ${BEST[$k]} s | ${P50[$k]} s | ${P99[$k]} s | $(mbps "$PERBYTES" "$2" "${BEST[$k]}") | $rpcs | ${HWM[$k]} MiB |"
}
tar_row() { # CLIENTS
	local at=
	[ "$1" = 1 ] || at=", $1 at once"
	echo "| \`tar cf - . \\| cat\` (local)$at | $1 | ${BEST[tar$1]} s | | | $(mbps "$PERBYTES" "$1" "${BEST[tar$1]}") | | |"
}
gen() {
	echo "Generated by \`make bench-nfs\` (nfsbench.sh) on $(date -u +%Y-%m-%d) UTC."
	echo
	echo "**Machine:** $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r)."
	echo "**Image:** $ENTRIES entries, $FILES tracked files, $SIZE (a debootstrap minbase bookworm root committed with \`git onesis init\`); each client reads $PERFILES files, $PERBYTES bytes, and every symlink."
	echo "**Load average** (1, 5, 15 min): $LOAD_BEFORE before, $LOAD_AFTER after. Best of $ROUNDS rounds."
	echo "**First read** (warm-up, not in the table: the blob store inflated from git and every blob verified before it is served): $(field "$(cat "$DIR/warmup-ours.json")" all_done_s | xargs printf '%.2f') s.${VERIFY_ARGS[*]:+ Served-byte verification OFF (NFSBENCH_SKIP_VERIFY=1).}"
	echo
	echo "| reader | clients | all done | p50 per client | p99 per client | MB/s (all clients) | RPCs per client | server peak RSS so far |"
	echo "|---|---:|---:|---:|---:|---:|---:|---:|"
	nfs_row ours 1
	tar_row 1
	nfs_row ours "$N"
	tar_row "$N"
	nfs_row ganesha 1
	nfs_row ganesha "$N"
	if [ -n "$BASE" ]; then
		nfs_row base 1
		nfs_row base "$N"
	fi
	nfs_row sync 1
	nfs_row sync "$N"
	if [ -n "$BASE" ]; then
		nfs_row basesync 1
		nfs_row basesync "$N"
	fi
	echo
	echo "| comparison | ratio |"
	echo "|---|---:|"
	echo "| NFS, 1 pipelined client vs local tar | $(ratio "${BEST[ours1]}" "${BEST[tar1]}") |"
	echo "| NFS, $N pipelined clients vs $N local tars | $(ratio "${BEST[ours$N]}" "${BEST[tar$N]}") |"
	echo "| NFS, aggregate rate of $N pipelined clients vs 1 | $(awk -v n="$N" -v a="${BEST[ours1]}" -v b="${BEST[ours$N]}" 'BEGIN { printf "%.2f×", n * a / b }') |"
	echo "| git-onesis vs NFS-Ganesha, 1 client (time) | $(ratio "${BEST[ours1]}" "${BEST[ganesha1]}") |"
	echo "| git-onesis vs NFS-Ganesha, $N clients (time) | $(ratio "${BEST[ours$N]}" "${BEST[ganesha$N]}") |"
	if [ -n "$BASE" ]; then
		echo "| git-onesis vs its $BASE_SHA, 1 client (time) | $(ratio "${BEST[ours1]}" "${BEST[base1]}") |"
		echo "| git-onesis vs its $BASE_SHA, $N clients (time) | $(ratio "${BEST[ours$N]}" "${BEST[base$N]}") |"
	fi
	echo "| pipelined vs go-nfs-client, 1 client (time) | $(ratio "${BEST[ours1]}" "${BEST[sync1]}") |"
	echo "| pipelined vs go-nfs-client, $N clients (time) | $(ratio "${BEST[ours$N]}" "${BEST[sync$N]}") |"
	if [ -n "$BASE" ]; then
		echo "| git-onesis vs its $BASE_SHA, 1 go-nfs-client (time) | $(ratio "${BEST[sync1]}" "${BEST[basesync1]}") |"
		echo "| git-onesis vs its $BASE_SHA, $N go-nfs-clients (time) | $(ratio "${BEST[sync$N]}" "${BEST[basesync$N]}") |"
	fi
	echo
	echo "Server memory: git-onesis ${RSS_IDLE} MiB resident after indexing the commit and one read; peak ${HWM[ours1]} MiB after 1 client, ${HWM[ours$N]} MiB after $N, ${HWM[sync$N]} MiB after the go-nfs-client runs; ${RSS_END} MiB at the end. NFS-Ganesha: peak ${GAN_HWM} MiB."
}
BEGIN='<!-- BEGIN GENERATED: make bench-nfs -->'
END='<!-- END GENERATED: make bench-nfs -->'
OUTTXT=$(gen)
if [ "$OUT" = - ]; then
	printf '%s\n' "$OUTTXT"
	exit 0
fi
replace_section "$OUT" "$BEGIN" "$END" "$OUTTXT"
note "wrote the bench-nfs part of $OUT"
