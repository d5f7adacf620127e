#!/usr/bin/env bash
# The NFS root as a booting node sees it: the `make demo-debian` image
# (debootstrap minbase + systemd) network-boots under QEMU from
# `git onesis serve`, and each node's time from onesis-init mounting the NFS
# root to the image's report service printing "ready" is taken from its
# console (internal/demo/boot.sh BOOT_BENCH=N). One node, then
# NFSBOOT_NODES at once; with NFSBOOT_BASE, the same with git-onesis built
# at that revision, alternated in the same run. QEMU is TCG here, so only
# the ratios within one run mean anything. Prints a markdown table.
#
# Usage (from the repository root, as root; `make bench-nfs-boot`):
#     NFSBOOT_BASE=main bash internal/bench/nfsbootbench.sh
#
# Environment:
#     NFSBOOT_BASE    a git revision to compare with (default: none)
#     NFSBOOT_NODES   nodes of the loaded run (default 4, at most 4)
#     NFSBOOT_ROUNDS  rounds (default 1); the best median node of each
#                     configuration counts; the order of the versions is
#                     reversed every other round, as other load comes and goes
#     NFSBOOT_SIZES   node counts to run (default "1 NFSBOOT_NODES")
#     NFSBOOT_DIR     work area (default /var/tmp/git-onesis-nfsboot)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
DIR=${NFSBOOT_DIR:-/var/tmp/git-onesis-nfsboot}
BASE=${NFSBOOT_BASE:-}
NODES=${NFSBOOT_NODES:-4}
ROUNDS=${NFSBOOT_ROUNDS:-1}
SIZES=${NFSBOOT_SIZES:-1 $NODES}
GO=${GO:-go}
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench-nfs-boot: fatal: %s\n' "$*" >&2; exit 128; }
[ "$(id -u)" = 0 ] || die "run as root (network namespaces, QEMU on taps)"
case $NODES in [1-4]) ;; *) die "NFSBOOT_NODES=$NODES: 1 to 4" ;; esac

build() { # SRC OUTDIR
	(cd "$1" && "$GO" build -trimpath -o "$2/git-onesis" ./cmd/git-onesis &&
		CGO_ENABLED=0 "$GO" build -trimpath -ldflags '-s -w' -o "$2/onesis-init" ./cmd/onesis-init)
}
mkdir -p "$DIR"
VERSIONS=(this)
build "$REPO" "$DIR/this" || die "building git-onesis failed"
LABEL_this="this tree ($(git -C "$REPO" rev-parse --short HEAD))"
if [ -n "$BASE" ]; then
	BASE_SHA=$(git -C "$REPO" rev-parse --short "$BASE^{commit}") || die "NFSBOOT_BASE=$BASE is not a commit"
	rm -rf "$DIR/base-src" && mkdir -p "$DIR/base-src"
	git -C "$REPO" archive "$BASE_SHA" | tar -x -C "$DIR/base-src"
	build "$DIR/base-src" "$DIR/base" || die "building git-onesis at $BASE failed"
	VERSIONS=(base this)
	LABEL_base="$BASE_SHA"
fi
# The demo script of this tree drives both versions.
run() { # VERSION NODES: sets RES to "median fastest slowest" seconds from root mount to ready
	local v=$1 n=$2 times=$DIR/times-$1-$2 log=$DIR/boot-$1-$2.log tmp
	: >"$times"
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/nfsboot-env.XXXXXX")
	mkdir -p "$tmp/home" "$tmp/template"
	local try ok=
	for try in 1 2; do
		: >"$times"
		if env -u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE -u GIT_CONFIG_GLOBAL -u XDG_CONFIG_HOME \
			HOME="$tmp/home" GIT_CONFIG_NOSYSTEM=1 GIT_TEMPLATE_DIR="$tmp/template" LC_ALL=C \
			IMAGE=debian BOOT_BENCH="$n" BOOT_TIMES="$times" GIT_ONESIS="$DIR/$v/git-onesis" \
			bash "$REPO/internal/demo/boot.sh" >"$log" 2>&1; then
			ok=1
			break
		fi
		# A TCG guest on a loaded host sometimes panics before it ever
		# reaches the network ("IO-APIC + timer doesn't work"): once more.
		cp "$log" "$log.failed-$try"
		note "$v with $n node(s) failed (see $log.failed-$try); running it again"
	done
	if [ -z "$ok" ]; then
		rm -rf "$tmp"
		die "$v with $n node(s) failed twice; see $log"
	fi
	rm -rf "$tmp"
	[ "$(wc -l <"$times")" = "$n" ] || die "$v with $n node(s): $(wc -l <"$times") times; see $log"
	RES=$(sort -n -k2 "$times" | awk '{ t[NR] = $2 } END { printf "%.1f %.1f %.1f", t[int((NR + 1) / 2)], t[1], t[NR] }')
}
declare -A MED MIN MAX
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
ALL=()
for ((r = 1; r <= ROUNDS; r++)); do
	order=("${VERSIONS[@]}")
	if ((r % 2 == 0)) && [ ${#VERSIONS[@]} = 2 ]; then order=("${VERSIONS[1]}" "${VERSIONS[0]}"); fi
	for n in $SIZES; do
		for v in "${order[@]}"; do
			note "round $r: $v, $n node(s)"
			run "$v" "$n"
			read -r med lo hi <<<"$RES"
			ALL+=("round $r, $v, $n node(s): median $med s")
			key=$v$n
			if [ -z "${MED[$key]:-}" ] || awk -v a="$med" -v b="${MED[$key]}" 'BEGIN { exit !(a < b) }'; then
				MED[$key]=$med MIN[$key]=$lo MAX[$key]=$hi
			fi
		done
	done
done
LOAD_AFTER=$(cut -d' ' -f1-3 /proc/loadavg)
echo "NFS root mounted to the report service's \"ready\" (\`make demo-debian\` image, QEMU TCG, 384 MiB, 1 vCPU per node), $(date -u +%Y-%m-%d); load average $LOAD_BEFORE before, $LOAD_AFTER after; best of $ROUNDS round(s)."
echo
echo "| git-onesis | nodes at once | median node | fastest | slowest |"
echo "|---|---:|---:|---:|---:|"
for n in $SIZES; do
	for v in "${VERSIONS[@]}"; do
		label=LABEL_$v
		echo "| ${!label} | $n | ${MED[$v$n]} s | ${MIN[$v$n]} s | ${MAX[$v$n]} s |"
	done
done
echo
echo "Every run, in order: $(printf '%s; ' "${ALL[@]}")"
if [ -n "$BASE" ]; then
	echo
	for n in $SIZES; do
		echo "- $n node(s): this tree takes $(awk -v a="${MED[this$n]}" -v b="${MED[base$n]}" 'BEGIN { printf "%.2f×", a / b }') the time of $BASE_SHA (median node)."
	done
fi
