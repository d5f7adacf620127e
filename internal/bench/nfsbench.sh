#!/usr/bin/env bash
# git-onesis NFS root under load: 1 and NFSBENCH_N simulated nodes each read
# a whole committed root file system through the embedded NFS server
# (boot/nfsroot, what `git onesis serve` exports), against `tar cf - . | cat`
# of the same checked-out tree run as many times at once, in one run; the
# server's peak memory is read from /proc while they run. Writes the
# results into the `make bench-nfs` part of docs/benchmarks.md.
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
#     NFSBENCH_OUT     markdown file to update (default docs/benchmarks.md;
#                      "-" prints the generated part only)
#
# Needs root (the image holds device nodes and other owners). All traffic is
# on 127.0.0.1. Timings are informational only; nothing here is a test
# assertion.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$REPO/internal/bench/lib.sh"
DIR=${NFSBENCH_DIR:-/var/tmp/git-onesis-nfsbench}
ROOTFS=${NFSBENCH_ROOTFS:-/var/tmp/git-onesis-bench/rootfs}
N=${NFSBENCH_N:-20}
ROUNDS=${NFSBENCH_ROUNDS:-2}
OUT=${NFSBENCH_OUT:-$REPO/docs/benchmarks.md}
GO=${GO:-go}
MIRROR=${BENCH_MIRROR:-http://deb.debian.org/debian}

note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench-nfs: fatal: %s\n' "$*" >&2; exit 128; }
[ "$(id -u)" = 0 ] || die "run as root: the image holds device nodes and other owners"
export LC_ALL=C

mkdir -p "$DIR"
BIN=$DIR/bin
mkdir -p "$BIN"
(cd "$REPO" && "$GO" build -o "$BIN/git-onesis" ./cmd/git-onesis && "$GO" build -o "$BIN/nfsload" ./internal/bench/nfsload) ||
	die "building git-onesis and nfsload failed"
export PATH=$BIN:$PATH
HOME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/nfsbench-home.XXXXXX")
SRV_PID=
cleanup() {
	[ -z "$SRV_PID" ] || kill "$SRV_PID" 2>/dev/null || true
	rm -rf "$HOME_DIR"
}
trap cleanup EXIT
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
	rm -rf "$IMG"
	cp -a "$ROOTFS" "$IMG"
	(cd "$IMG" && git onesis init --commit -q >/dev/null) || die "git onesis init failed"
	touch "$IMG/.git/onesis-nfsbench-done" "$IMG/.done"
fi
COMMIT=$(git -C "$IMG" rev-parse HEAD)
ENTRIES=$(grep -c '^\./' "$IMG/.gitmeta" || true)
FILES=$(git -C "$IMG" ls-files | wc -l)
SIZE=$(du -sh --exclude=.git "$IMG" | cut -f1)

# ---------------------------------------------------------------- server
STATE=$DIR/state
rm -rf "$STATE"
mkdir -p "$STATE"
nfsload server -repo "$IMG" -commit "$COMMIT" -state "$STATE" >"$DIR/server.out" 2>"$DIR/server.log" &
SRV_PID=$!
for _ in $(seq 100); do grep -q '^port ' "$DIR/server.out" 2>/dev/null && break; sleep 0.1; done
PORT=$(awk '/^port /{print $2}' "$DIR/server.out")
[ -n "$PORT" ] || die "the NFS server did not start (see $DIR/server.log)"
rss() { awk -v k="$1:" '$1 == k { printf "%.0f", $2 / 1024 }' "/proc/$SRV_PID/status"; }

note "warm-up: one client reads the commit once (the server indexes it; not counted)"
nfsload read -port "$PORT" -commit "$COMMIT" -n 1 >"$DIR/warmup.json" || die "warm-up read failed"
RSS_IDLE=$(rss VmRSS)

declare -A BEST HWM P50 P99
best() { # KEY SECONDS: keep the smaller
	if [ -z "${BEST[$1]:-}" ] || awk -v a="$2" -v b="${BEST[$1]}" 'BEGIN { exit !(a < b) }'; then BEST[$1]=$2; fi
}
nfs_run() { # CLIENTS
	local out
	out=$(nfsload read -port "$PORT" -commit "$COMMIT" -n "$1")
	echo "$out" >>"$DIR/runs.json"
	if ! echo "$out" | grep -q '"failed":0'; then die "NFS run with $1 clients had failures: $out"; fi
	local prev=${BEST[nfs$1]:-}
	best "nfs$1" "$(echo "$out" | sed 's/.*"all_done_s":\([0-9.e+-]*\).*/\1/' | xargs printf '%.2f')"
	if [ "${BEST[nfs$1]}" != "$prev" ]; then # this run is the best so far: its percentiles
		P50[$1]=$(echo "$out" | sed 's/.*"p50_s":\([0-9.e+-]*\).*/\1/' | xargs printf '%.2f')
		P99[$1]=$(echo "$out" | sed 's/.*"p99_s":\([0-9.e+-]*\).*/\1/' | xargs printf '%.2f')
	fi
	PERFILES=$(echo "$out" | sed 's/.*"files_per_client":\([0-9]*\).*/\1/')
	PERBYTES=$(echo "$out" | sed 's/.*"bytes_per_client":\([0-9]*\).*/\1/')
	# VmHWM only grows: take it after the first run of each size.
	[ -n "${HWM[$1]:-}" ] || HWM[$1]=$(rss VmHWM)
}
tar_run() { # CLIENTS
	local s e i pids=()
	s=$(date +%s%N)
	for ((i = 0; i < $1; i++)); do
		(cd "$IMG" && tar --exclude=./.git -cf - . | cat >/dev/null) &
		pids+=($!)
	done
	wait "${pids[@]}" # not the server
	e=$(date +%s%N)
	best "tar$1" "$(awk -v n=$((e - s)) 'BEGIN { printf "%.2f", n / 1e9 }')"
}
: >"$DIR/runs.json"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
tar_run 1 # warms the page cache for tar
for ((r = 1; r <= ROUNDS; r++)); do
	note "round $r: NFS 1 client, tar 1, NFS $N clients, tar $N at once"
	nfs_run 1
	tar_run 1
	nfs_run "$N"
	tar_run "$N"
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
RSS_END=$(rss VmRSS)
kill "$SRV_PID"; wait "$SRV_PID" 2>/dev/null || true; SRV_PID=

# ---------------------------------------------------------------- report
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { r = a / b; if (r < 1) printf "%.2f× (%.1f× faster)", r, 1 / r; else printf "%.2f×", r }'; }
mbps() { awk -v b="$1" -v n="$2" -v t="$3" 'BEGIN { printf "%.1f", b * n / 1e6 / t }'; }
gen() {
	echo "Generated by \`make bench-nfs\` (nfsbench.sh) on $(date -u +%Y-%m-%d) UTC."
	echo
	echo "**Machine:** $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r)."
	echo "**Image:** $ENTRIES entries, $FILES tracked files, $SIZE (a debootstrap minbase bookworm root committed with \`git onesis init\`); each client reads $PERFILES files, $PERBYTES bytes, and every symlink."
	echo "**Load average** (1, 5, 15 min): $LOAD_BEFORE before, $LOAD_AFTER after. Best of $ROUNDS rounds."
	echo
	echo "| reader | clients | all done | p50 per client | p99 per client | MB/s (all clients) | server peak RSS so far |"
	echo "|---|---:|---:|---:|---:|---:|---:|"
	echo "| git-onesis NFS (go-nfs-client) | 1 | ${BEST[nfs1]} s | ${P50[1]} s | ${P99[1]} s | $(mbps "$PERBYTES" 1 "${BEST[nfs1]}") | ${HWM[1]} MiB |"
	echo "| \`tar cf - . \\| cat\` (local) | 1 | ${BEST[tar1]} s | | | $(mbps "$PERBYTES" 1 "${BEST[tar1]}") | |"
	echo "| git-onesis NFS (go-nfs-client) | $N | ${BEST[nfs$N]} s | ${P50[$N]} s | ${P99[$N]} s | $(mbps "$PERBYTES" "$N" "${BEST[nfs$N]}") | ${HWM[$N]} MiB |"
	echo "| \`tar cf - . \\| cat\` (local), $N at once | $N | ${BEST[tar$N]} s | | | $(mbps "$PERBYTES" "$N" "${BEST[tar$N]}") | |"
	echo
	echo "| comparison | ratio |"
	echo "|---|---:|"
	echo "| NFS, 1 client vs local tar | $(ratio "${BEST[nfs1]}" "${BEST[tar1]}") |"
	echo "| NFS, $N clients vs $N local tars | $(ratio "${BEST[nfs$N]}" "${BEST[tar$N]}") |"
	echo "| NFS, $N clients vs 1 client (all done) | $(ratio "${BEST[nfs$N]}" "${BEST[nfs1]}") |"
	echo
	echo "Server memory: ${RSS_IDLE} MiB resident after indexing the commit and one read, peak ${HWM[1]} MiB after the 1-client runs, ${HWM[$N]} MiB after the $N-client runs, ${RSS_END} MiB at the end."
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
