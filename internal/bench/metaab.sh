#!/usr/bin/env bash
# git-onesis metadata benchmark, this tree against another revision: the
# everyday commands (record, status, apply, git onesis checkout, a hooked
# plain git checkout, a hooked git add and git commit) timed on the corpus
# `make bench` leaves behind, with this tree's binary and with the binary
# built at METAAB_BASE, interleaved command by command (the order flips
# every round), so a loaded machine slows both alike. Reports the median
# wall-clock time and the median CPU time (user + system, git's children
# included) of each, and their ratios. Plain git and find rows are the
# floor.
#
# Usage (from the repository root; `make bench` must have built the corpus):
#     METAAB_BASE=REV bash internal/bench/metaab.sh
#
# Environment:
#     METAAB_BASE   the revision to compare against (required)
#     METAAB_ROUNDS rounds (default 3)
#     BENCH_DIR     where make bench keeps its corpus (default
#                   /var/tmp/git-onesis-bench); its work/tree is copied
#                   once to work/metaab and used there
#
# Needs root (the corpus holds device nodes and other owners). Timings are
# informational only; nothing here is a test assertion. Prints a markdown
# table on stdout; the raw samples go to work/metaab.csv.
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BASE=${METAAB_BASE:?set METAAB_BASE to the revision to compare against}
ROUNDS=${METAAB_ROUNDS:-3}
BENCH_DIR=${BENCH_DIR:-/var/tmp/git-onesis-bench}
GO=${GO:-go}
die() { printf 'metaab: fatal: %s\n' "$*" >&2; exit 128; }
[ "$(id -u)" = 0 ] || die "run as root: the corpus holds device nodes and other owners"
[ -d "$BENCH_DIR/work/tree/.git" ] || die "no corpus in $BENCH_DIR/work/tree: run 'make bench' first"

# Go's caches stay where they are when HOME moves below.
export GOCACHE=${GOCACHE:-$("$GO" env GOCACHE)} GOMODCACHE=${GOMODCACHE:-$("$GO" env GOMODCACHE)}
export GOPATH=${GOPATH:-$("$GO" env GOPATH)} GOFLAGS=${GOFLAGS:-$("$GO" env GOFLAGS)}
W=$(mktemp -d "${TMPDIR:-/tmp}/metaab.XXXXXX")
trap 'rm -rf "$W"' EXIT
export LC_ALL=C HOME=$W/home GIT_CONFIG_NOSYSTEM=1
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE XDG_CONFIG_HOME GIT_TRACE
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
mkdir -p "$HOME"
git config --global init.defaultBranch main
git config --global advice.detachedHead false
git config --global gc.auto 0

# The two binaries, and a hooks directory for each (installed by that
# binary, so each version's own hooks run).
BASE_SHA=$(git -C "$REPO" rev-parse --short "$BASE^{commit}") || die "METAAB_BASE=$BASE is not a commit"
mkdir -p "$W/bin/new" "$W/bin/old" "$W/src"
(cd "$REPO" && "$GO" build -o "$W/bin/new/git-onesis" ./cmd/git-onesis) || die "building this tree failed"
git -C "$REPO" archive "$BASE_SHA" | tar -x -C "$W/src"
(cd "$W/src" && "$GO" build -o "$W/bin/old/git-onesis" ./cmd/git-onesis) || die "building $BASE_SHA failed"
for v in old new; do
	git init -q "$W/hk-$v"
	(cd "$W/hk-$v" && PATH=$W/bin/$v:$PATH git onesis install --no-apply >/dev/null 2>&1) ||
		die "git onesis install ($v) failed"
done

TREE=$BENCH_DIR/work/metaab
if [ ! -d "$TREE/.git" ]; then
	echo "metaab: copying the corpus to $TREE (once)" >&2
	cp -a "$BENCH_DIR/work/tree" "$TREE.tmp" && mv "$TREE.tmp" "$TREE" || die "copying the corpus failed"
fi
cd "$TREE" || die "no $TREE"
rm -f .git/index.lock
# The corpus's commits: its base and the two that bench.sh made from it.
B=$(git log -g --format='%H %s' HEAD | awk '/chmod g\+w on 1k files/ {print $1; exit}')
C=$(git log -g --format='%H %s' HEAD | awk '/chmod g\+w on 10 files/ {print $1; exit}')
[ -n "$B" ] && [ -n "$C" ] || die "the corpus lacks bench.sh's commits; run 'make bench' again"
A=$(git rev-parse "$B^")
F=$(ls -d node*/etc/hostname 2>/dev/null | head -1)
[ -n "$F" ] || die "the corpus has no node*/etc/hostname"
PATH0=$PATH
OFF="-c core.hooksPath=/dev/null"
CSV=$BENCH_DIR/work/metaab.csv
echo "round,key,variant,seconds,cpu,load1" >"$CSV"

# t KEY VARIANT CMD...: one timed run.
t() {
	local k=$1 v=$2 s e cpu
	shift 2
	s=$(date +%s%N)
	cpu=$({ TIMEFORMAT='%U %S'; time "$@" >/dev/null 2>>"$W/err"; } 2>&1 | tail -1)
	e=$(date +%s%N)
	echo "$r,$k,$v,$(awk -v n=$((e - s)) 'BEGIN{printf "%.3f", n/1e9}'),$(echo "$cpu" | awk '{printf "%.3f", $1 + $2}'),$(cut -d' ' -f1 /proc/loadavg)" >>"$CSV"
}
use() { PATH=$W/bin/$1:$PATH0; HK="-c core.hooksPath=$W/hk-$1/.git/hooks"; }
reset_tree() {
	git $OFF checkout -q -f --detach "$A"
	PATH=$W/bin/new:$PATH0 git onesis apply >/dev/null 2>&1
}
reset_tree
load0=$(cut -d' ' -f1-3 /proc/loadavg)
for ((r = 1; r <= ROUNDS; r++)); do
	echo "metaab: round $r of $ROUNDS" >&2
	if ((r % 2)); then order="old new"; else order="new old"; fi
	t find floor sh -c "find . -printf '%p %m %U %G\n' >/dev/null"
	t git_status floor git status --porcelain
	for v in $order; do use "$v"; t record "$v" git onesis record; done
	for v in $order; do use "$v"; t status "$v" git onesis status; done
	for v in $order; do use "$v"; t apply "$v" git onesis apply; done
	t git_checkout floor git $OFF checkout -q --detach "$B"
	t git_checkout floor git $OFF checkout -q --detach "$A"
	reset_tree
	for v in $order; do
		use "$v"
		t onesis_checkout "$v" git $HK onesis checkout -q --detach "$B"
		t onesis_checkout "$v" git $HK onesis checkout -q --detach "$A"
	done
	for v in $order; do
		use "$v"
		t hooked_checkout "$v" git $HK checkout -q --detach "$B"
		t hooked_checkout "$v" git $HK checkout -q --detach "$A"
	done
	for v in $order; do
		use "$v"
		t hooked_checkout10 "$v" git $HK checkout -q --detach "$C"
		t hooked_checkout10 "$v" git $HK checkout -q --detach "$A"
	done
	reset_tree
	echo x >>"$F"
	t add floor git $OFF add "$F"
	for v in $order; do use "$v"; echo x >>"$F"; t add "$v" git $HK add "$F"; done
	echo x >>"$F"
	t commit floor sh -c "git $OFF add $F && git $OFF commit -q -m one"
	for v in $order; do use "$v"; echo x >>"$F"; t commit "$v" sh -c "git $HK add $F && git $HK commit -q -m one"; done
	reset_tree
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# The table: medians per row, then new/old.
awk -F, -v base="$BASE_SHA" -v here="$(git -C "$REPO" rev-parse --short HEAD)" -v rounds="$ROUNDS" \
	-v load0="$load0" -v load1="$load1" -v entries="$(git ls-files | wc -l)" '
function median(list,   n, a, i, j, x) {
	n = split(list, a, " ")
	for (i = 2; i <= n; i++) { x = a[i]; for (j = i - 1; j >= 1 && a[j] > x; j--) a[j+1] = a[j]; a[j+1] = x }
	return n % 2 ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2
}
NR > 1 { w[$2","$3] = w[$2","$3] " " $4; c[$2","$3] = c[$2","$3] " " $5 }
END {
	split("record|git onesis record (nothing changed);status|git onesis status (clean);apply|git onesis apply (no-op);onesis_checkout|git onesis checkout, 1k entries differ;hooked_checkout|hooked git checkout, 1k entries differ;hooked_checkout10|hooked git checkout, 10 entries differ;add|hooked git add of one file;commit|hooked git add + commit of one file", rows, ";")
	printf "Corpus: %d tracked paths. %d rounds, interleaved; medians. Load average %s at the start, %s at the end.\n\n", entries, rounds, load0, load1
	printf "| operation | wall %s | wall %s | ratio | CPU %s | CPU %s | ratio |\n|---|---:|---:|---:|---:|---:|---:|\n", base, here, base, here
	for (i = 1; i in rows; i++) {
		split(rows[i], kv, "|"); k = kv[1]
		if (!((k",old") in w)) continue
		wo = median(w[k",old"]); wn = median(w[k",new"]); co = median(c[k",old"]); cn = median(c[k",new"])
		printf "| %s | %.2f s | %.2f s | %.2f× | %.2f s | %.2f s | %.2f× |\n", kv[2], wo, wn, wn/wo, co, cn, cn/co
	}
	split("find|find . -printf (the floor);git_status|git status --porcelain;git_checkout|git checkout, hooks off, 1k entries differ;add|git add, hooks off;commit|git add + commit, hooks off", fl, ";")
	for (i = 1; i in fl; i++) {
		split(fl[i], kv, "|"); k = kv[1]
		if ((k",floor") in w) printf "| %s | | %.2f s | | | %.2f s | |\n", kv[2], median(w[k",floor"]), median(c[k",floor"])
	}
}' "$CSV"
