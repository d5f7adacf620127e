#!/usr/bin/env bash
# git-onesis benchmark: times git-onesis against plain git and the metadata
# tools it replaces, on one tree of >= 300k entries, and writes the results
# into the generated part of docs/benchmarks.md.
#
# Usage (from the repository root; `make bench` does this):
#     GIT_ONESIS=bin/git-onesis bash internal/bench/bench.sh
#
# Environment:
#     BENCH_DIR     cache and work area   (default /var/tmp/git-onesis-bench)
#     BENCH_TARGET  minimum corpus size   (default 300000 entries)
#     BENCH_RUNS    runs for cheap steps  (default 3; the best one counts)
#     BENCH_INIT_RUNS runs for init steps (default 1; each re-adds every file)
#     BENCH_COMMIT_RUNS runs for the one-file commits (default 5)
#     BENCH_OUT     markdown file to update (default docs/benchmarks.md;
#                   "-" prints the generated part only)
#     BENCH_SYNTHETIC=1  skip debootstrap, use the synthetic generator
#     BENCH_UNIQUE  1 (default): append each regular file's own path to it
#                   after copying, so no two copies share content and git
#                   cannot dedupe them (the init comparison); 0 keeps the
#                   copies identical
#     BENCH_SKIP_SLOW=1  skip upgrade start and rsync (development runs)
#
# Needs root (the corpus holds device nodes, setuid files and other owners).
# Timings are informational only; nothing here is a test assertion.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
. "$REPO/internal/bench/lib.sh"
BENCH_DIR=${BENCH_DIR:-/var/tmp/git-onesis-bench}
BENCH_TARGET=${BENCH_TARGET:-300000}
BENCH_RUNS=${BENCH_RUNS:-3}
BENCH_INIT_RUNS=${BENCH_INIT_RUNS:-1}
# The one-file commits: their difference is a target, and a best of 3
# moved it by 0.1 find walks from one run to the next on a shared machine.
BENCH_COMMIT_RUNS=${BENCH_COMMIT_RUNS:-5}
BENCH_OUT=${BENCH_OUT:-$REPO/docs/benchmarks.md}
GIT_ONESIS=${GIT_ONESIS:-$REPO/bin/git-onesis}
MIRROR=${BENCH_MIRROR:-http://deb.debian.org/debian}

say() { printf '\n### %s\n' "$*" >&2; }
note() { printf '    %s\n' "$*" >&2; }
die() { printf 'bench: fatal: %s\n' "$*" >&2; exit 128; }

[ "$(id -u)" = 0 ] || die "run as root: the corpus needs device nodes, setuid files and foreign owners"
export LC_ALL=C
umask 022

# Hermetic git: no user or system config leaks into the timings.
BENCH_HOME=$(mktemp -d "${TMPDIR:-/tmp}/git-onesis-bench-home.XXXXXX")
trap 'rm -rf "$BENCH_HOME"' EXIT
export HOME=$BENCH_HOME GIT_CONFIG_NOSYSTEM=1
unset GIT_DIR GIT_WORK_TREE GIT_INDEX_FILE XDG_CONFIG_HOME
export GIT_AUTHOR_NAME=bench GIT_AUTHOR_EMAIL=bench@example.invalid
export GIT_COMMITTER_NAME=bench GIT_COMMITTER_EMAIL=bench@example.invalid
git config --global init.defaultBranch main
git config --global advice.detachedHead false
git config --global gc.auto 0

# ---------------------------------------------------------------- tools
have() { command -v "$1" >/dev/null 2>&1; }
apt_install() {
	have apt-get || return 1
	[ -n "${APT_UPDATED:-}" ] || { apt-get update -qq >&2 || true; APT_UPDATED=1; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}
have hyperfine || apt_install hyperfine || note "hyperfine not available; using the built-in timer"
have metastore || apt_install metastore || note "metastore not available; skipping it"
have debootstrap || [ -n "${BENCH_SYNTHETIC:-}" ] || apt_install debootstrap || note "debootstrap not available"

# git-onesis itself: usable if `git onesis version` works.
OURS=0
if [ -x "$GIT_ONESIS" ]; then
	GIT_ONESIS=$(cd "$(dirname "$GIT_ONESIS")" && pwd)/$(basename "$GIT_ONESIS")
	export PATH="$(dirname "$GIT_ONESIS"):$PATH"
	if git onesis version >/dev/null 2>&1; then OURS=1; fi
fi
[ "$OURS" = 1 ] || note "git-onesis not built or not working ($GIT_ONESIS): its rows will read n/a"

# setgitperms.perl ships with git's docs on Debian; run a private copy.
SGP_SRC=/usr/share/doc/git/contrib/hooks/setgitperms.perl
SGP=
mkdir -p "$BENCH_DIR/tools"
if [ -f "$SGP_SRC" ]; then
	SGP=$BENCH_DIR/tools/setgitperms.perl
	cp "$SGP_SRC" "$SGP"
elif [ -f "$SGP_SRC.gz" ]; then
	SGP=$BENCH_DIR/tools/setgitperms.perl
	gzip -dc "$SGP_SRC.gz" >"$SGP"
else
	note "setgitperms.perl not found at $SGP_SRC; skipping it"
fi

# etckeeper's metadata store step, unpacked from the .deb (not installed:
# installing etckeeper would put /etc under git).
ETCK=$BENCH_DIR/tools/etckeeper-30store-metadata
if [ ! -f "$ETCK" ]; then
	d=$(mktemp -d)
	if (cd "$d" && apt-get download etckeeper >/dev/null 2>&1 && dpkg-deb -x etckeeper_*.deb x) &&
		[ -f "$d/x/etc/etckeeper/pre-commit.d/30store-metadata" ]; then
		cp "$d/x/etc/etckeeper/pre-commit.d/30store-metadata" "$ETCK"
		ls "$d"/etckeeper_*.deb | sed 's/.*etckeeper_\(.*\)_all.deb/\1/' >"$ETCK.version"
	else
		note "could not fetch etckeeper; skipping it"
	fi
	rm -rf "$d"
fi
[ -f "$ETCK" ] || ETCK=

# ---------------------------------------------------------------- corpus
ROOTFS=$BENCH_DIR/rootfs
SOURCE=
make_synthetic() { # DIR: one synthetic root filesystem (~7k entries)
	local r=$1 i j
	mkdir -p "$r"/{bin,sbin,etc,usr/bin,usr/lib,usr/share/doc,var/log,var/empty,tmp,proc,sys,dev,root,home/user}
	chmod 1777 "$r/tmp"; chmod 0700 "$r/root"; chmod 0555 "$r/proc" "$r/sys"
	printf 'root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000::/home/user:/bin/sh\n' >"$r/etc/passwd"
	printf 'root:x:0:\nshadow:x:42:\nuser:x:1000:\n' >"$r/etc/group"
	: >"$r/etc/shadow"; chmod 0640 "$r/etc/shadow"; chown 0:42 "$r/etc/shadow"
	chown -R 1000:1000 "$r/home/user"
	for i in $(seq 1 60); do
		mkdir -p "$r/usr/share/doc/pkg$i" "$r/usr/lib/pkg$i"
		for j in $(seq 1 40); do
			printf 'pkg %d file %d\n' "$i" "$j" >"$r/usr/share/doc/pkg$i/f$j"
			printf 'lib %d %d\n' "$i" "$j" >"$r/usr/lib/pkg$i/lib$j.so.1"
			ln -s "lib$j.so.1" "$r/usr/lib/pkg$i/lib$j.so"
		done
	done
	for i in $(seq 1 150); do printf '#!/bin/sh\n' >"$r/usr/bin/tool$i"; chmod 0755 "$r/usr/bin/tool$i"; done
	chmod 4755 "$r/usr/bin/tool1" "$r/usr/bin/tool2"; chmod 2755 "$r/usr/bin/tool3"
	ln "$r/usr/bin/tool10" "$r/usr/bin/tool10-hardlink"
	mknod -m 0666 "$r/dev/null" c 1 3; mknod -m 0666 "$r/dev/zero" c 1 5
	mknod -m 0660 "$r/dev/sda" b 8 0; mkfifo -m 0600 "$r/dev/initctl"
}
corpus_source() {
	if [ -d "$ROOTFS" ] && [ -f "$BENCH_DIR/rootfs.source" ]; then
		SOURCE=$(cat "$BENCH_DIR/rootfs.source"); return
	fi
	rm -rf "$ROOTFS" "$ROOTFS.tmp"
	if [ -z "${BENCH_SYNTHETIC:-}" ] && have debootstrap; then
		say "debootstrap --variant=minbase bookworm (cached in $ROOTFS)"
		if debootstrap --variant=minbase bookworm "$ROOTFS.tmp" "$MIRROR" >"$BENCH_DIR/debootstrap.log" 2>&1; then
			# What an image build would do: drop apt's caches.
			rm -rf "$ROOTFS.tmp"/var/cache/apt/*.bin "$ROOTFS.tmp"/var/cache/apt/archives/*.deb \
				"$ROOTFS.tmp"/var/lib/apt/lists/*_Packages "$ROOTFS.tmp"/var/lib/apt/lists/*Release*
			mv "$ROOTFS.tmp" "$ROOTFS"
			echo "debootstrap --variant=minbase bookworm" >"$BENCH_DIR/rootfs.source"
		else
			note "debootstrap failed (see $BENCH_DIR/debootstrap.log); FALLING BACK TO THE SYNTHETIC GENERATOR"
			rm -rf "$ROOTFS.tmp"
		fi
	fi
	if [ ! -d "$ROOTFS" ]; then
		say "generating a synthetic root filesystem (debootstrap unavailable or BENCH_SYNTHETIC set)"
		make_synthetic "$ROOTFS.tmp"
		mv "$ROOTFS.tmp" "$ROOTFS"
		echo "synthetic generator (debootstrap unavailable)" >"$BENCH_DIR/rootfs.source"
	fi
	SOURCE=$(cat "$BENCH_DIR/rootfs.source")
}
corpus_source
PER=$(find "$ROOTFS" | wc -l)
COPIES=$(((BENCH_TARGET + PER - 1) / PER))
TREE=$BENCH_DIR/work/tree
say "corpus: $COPIES copies of a $PER-entry root filesystem ($SOURCE)"
rm -rf "$BENCH_DIR/work"
mkdir -p "$TREE"
for i in $(seq -w 1 "$COPIES"); do cp -a "$ROOTFS" "$TREE/node$i"; done
BENCH_UNIQUE=${BENCH_UNIQUE:-1}
if [ "$BENCH_UNIQUE" = 1 ]; then
	# Unique content: each regular file gets its own path appended (as
	# root, so setuid bits stay; the kernel drops file capabilities on
	# write, and a minbase has none). Hard-linked names append to the same
	# inode, which stays one file.
	say "making every copy's content unique (BENCH_UNIQUE=1)"
	(cd "$TREE" && find . -type f -print0 | xargs -0 -n 2000 sh -c 'for f; do printf "\n%s\n" "$f" >>"$f"; done' sh)
fi
ENTRIES=$(find "$TREE" | wc -l)
SIZE=$(du -sh "$TREE" | cut -f1)
SETUID=$(find "$TREE" -type f -perm /6000 | wc -l)
DEVICES=$(find "$TREE" \( -type c -o -type b \) | wc -l)
note "$ENTRIES entries, $SIZE, $SETUID setuid/setgid files, $DEVICES device nodes"
cd "$TREE"
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------- timing
declare -A T      # key -> best seconds, or empty when the step failed
declare -A LABEL  # key -> what was run
declare -A RUNS
ORDER=()
RAW=$BENCH_DIR/work/raw
mkdir -p "$RAW"

# measure KEY RUNS LABEL PREPARE COMMAND [ignore-failure]
measure() {
	local key=$1 runs=$2 label=$3 prep=$4 cmd=$5 ignore=${6:-}
	ORDER+=("$key"); LABEL[$key]=$label; RUNS[$key]=$runs; T[$key]=
	note "timing $key: $cmd (best of $runs)"
	if have hyperfine; then
		local args=(--runs "$runs" --style basic --export-csv "$RAW/$key.csv" -n "$key")
		[ "$prep" = : ] || args+=(--prepare "$prep")
		[ -z "$ignore" ] || args+=(-i)
		if hyperfine "${args[@]}" "$cmd" >"$RAW/$key.log" 2>&1; then
			T[$key]=$(awk -F, 'NR==2 { printf "%.3f", $7 }' "$RAW/$key.csv")
		else
			note "FAILED (see $RAW/$key.log)"
		fi
		return 0
	fi
	local i s e rc best=
	for ((i = 0; i < runs; i++)); do
		sh -c "$prep" >>"$RAW/$key.log" 2>&1 || true
		s=$(date +%s%N)
		rc=0; sh -c "$cmd" >>"$RAW/$key.log" 2>&1 || rc=$?
		e=$(date +%s%N)
		if [ "$rc" != 0 ] && [ -z "$ignore" ]; then note "FAILED rc=$rc (see $RAW/$key.log)"; return 0; fi
		if [ -z "$best" ] || [ $((e - s)) -lt "$best" ]; then best=$((e - s)); fi
	done
	T[$key]=$(awk -v n="$best" 'BEGIN { printf "%.3f", n / 1e9 }')
}
skip() { ORDER+=("$1"); LABEL[$1]=$2; RUNS[$1]=0; T[$1]=; note "skipped $1: $3"; }

ONESIS_FILES='.git .gitmeta .gitignore .gitattributes .etckeeper'

# The floor: one lstat per entry, nothing written.
measure find 3 "\`find . -printf '%p %m %U %G\\n' >/dev/null\` (the floor)" \
	: "find . -printf '%p %m %U %G\n' >/dev/null"

measure git_init "$BENCH_INIT_RUNS" "\`git init && git add -A && git commit\`" \
	"rm -rf $ONESIS_FILES" "git init -q && git add -A && git commit -q -m image"

if [ "$OURS" = 1 ]; then
	measure onesis_init "$BENCH_INIT_RUNS" "\`git onesis init --commit\`" \
		"rm -rf $ONESIS_FILES" "git onesis init --commit -m image"
fi
if [ "$OURS" != 1 ] || [ -z "${T[onesis_init]}" ]; then
	# Leave a committed repository behind for the competitors.
	rm -rf $ONESIS_FILES
	git init -q && git add -A && git commit -q -m image
	OURS=0
fi

HOSTNAME_FILE=node$(seq -w 1 "$COPIES" | head -1)/etc/hostname
[ -f "$HOSTNAME_FILE" ] || HOSTNAME_FILE=$(git ls-files | head -1)
if [ "$OURS" = 1 ]; then
	measure record "$BENCH_RUNS" "\`git onesis record\` (full scan, nothing changed)" : "git onesis record"
	measure record_nocache "$BENCH_RUNS" "\`git onesis record\` with \`onesis.scanCache=false\` (every xattr read)" : \
		"git -c onesis.scanCache=false onesis record"
	measure record_1 "$BENCH_RUNS" "\`git onesis record\` after a 1-file chmod" \
		"if [ \$(stat -c %a $HOSTNAME_FILE) = 644 ]; then chmod 640 $HOSTNAME_FILE; else chmod 644 $HOSTNAME_FILE; fi" \
		"git onesis record"
	chmod 644 "$HOSTNAME_FILE"; git onesis record >/dev/null 2>&1 || true
	measure apply_noop "$BENCH_RUNS" "\`git onesis apply\` (no-op)" : "git onesis apply"
	measure status "$BENCH_RUNS" "\`git onesis status\` (clean)" : "git onesis status >/dev/null" ignore
else
	for k in record record_nocache record_1 apply_noop status; do skip "$k" "git onesis $k" "git-onesis unavailable"; done
fi
measure git_status "$BENCH_RUNS" "\`git status --porcelain\` (clean, for reference)" : "git status --porcelain >/dev/null"

# Two commits that differ in the metadata of 1,000 files (g+w, which git
# itself does not track), then switch between them.
if [ "$OURS" = 1 ]; then
	A=$(git rev-parse HEAD)
	# 1,000 regular files spread evenly over the tree (not symlinks, whose
	# mode cannot change; not .gitmeta itself).
	git ls-files -s -z | tr '\0' '\n' | awk '$1 ~ /^100/ { sub(/^[^\t]*\t/, ""); if ($0 != ".gitmeta") print }' >"$RAW/regular"
	n=$(wc -l <"$RAW/regular")
	awk -v k=$((n >= 2000 ? n / 1000 : 1)) 'NR % k == 0' "$RAW/regular" | head -1000 |
		while IFS= read -r f; do chmod g+w -- "$f"; done
	if git onesis commit -q -m "chmod g+w on 1k files" >"$RAW/commit1k.log" 2>&1; then
		B=$(git rev-parse HEAD)
		CHANGED=$(git diff "$A" "$B" -- .gitmeta | grep -c '^+\./' || true)
		note "commits $A and $B differ in $CHANGED .gitmeta lines"
		TOGGLE="if [ \$(git rev-parse HEAD) = $A ]; then t=$B; else t=$A; fi"
		measure apply_switch "$BENCH_RUNS" "\`git onesis apply\` after switching commits ($CHANGED entries differ)" \
			"$TOGGLE; git -c core.hooksPath=/dev/null checkout -q --detach \$t" "git onesis apply"
		measure onesis_checkout "$BENCH_RUNS" "\`git onesis checkout\` between the two commits (checkout + apply)" \
			: "$TOGGLE; git onesis checkout -q --detach \$t"
		measure git_checkout "$BENCH_RUNS" "\`git checkout\` between the two commits, hooks off (metadata left wrong)" \
			: "$TOGGLE; git -c core.hooksPath=/dev/null checkout -q --detach \$t"
		measure hook_checkout "$BENCH_RUNS" "\`git checkout\` between the two commits with the hooks (post-index-change and post-checkout apply)" \
			: "$TOGGLE; git checkout -q --detach \$t"
		git -c core.hooksPath=/dev/null checkout -q --detach "$A"
		git onesis apply >/dev/null 2>&1 || true
		# The same switch with 10 entries differing: what incremental apply
		# costs beyond git's checkout should shrink with the diff.
		awk -v k=$((n >= 20 ? n / 10 : 1)) 'NR % k == 1' "$RAW/regular" | head -10 |
			while IFS= read -r f; do chmod g+w -- "$f"; done
		if git onesis commit -q -m "chmod g+w on 10 files" >"$RAW/commit10.log" 2>&1; then
			C=$(git rev-parse HEAD)
			TOGGLE10="if [ \$(git rev-parse HEAD) = $A ]; then t=$C; else t=$A; fi"
			measure onesis_checkout10 "$BENCH_RUNS" "\`git onesis checkout\` between two commits that differ in 10 entries" \
				: "$TOGGLE10; git onesis checkout -q --detach \$t"
			measure git_checkout10 "$BENCH_RUNS" "\`git checkout\` between the same two commits, hooks off" \
				: "$TOGGLE10; git -c core.hooksPath=/dev/null checkout -q --detach \$t"
			git -c core.hooksPath=/dev/null checkout -q --detach "$A"
			git onesis apply >/dev/null 2>&1 || true
		else
			note "git onesis commit failed (see $RAW/commit10.log)"
			for k in onesis_checkout10 git_checkout10; do skip "$k" "git onesis $k" "commit of the 10-file change failed"; done
		fi
	else
		note "git onesis commit failed (see $RAW/commit1k.log)"
		for k in apply_switch onesis_checkout; do skip "$k" "git onesis $k" "commit of the 1k change failed"; done
	fi
else
	for k in apply_switch onesis_checkout; do skip "$k" "git onesis $k" "git-onesis unavailable"; done
fi

# A one-file commit, with the hooks (pre-commit records, post-commit
# checks) and without: what the hooks add, in find walks.
if [ "$OURS" = 1 ]; then
	git checkout -q main 2>/dev/null || git checkout -q -B main
	git onesis apply -q >/dev/null 2>&1 || true
	ONE=$HOSTNAME_FILE
	measure commit_on "$BENCH_COMMIT_RUNS" "one-file \`git commit\` (content change) with the hooks" \
		"echo \$RANDOM >>$ONE && git add $ONE" "git commit -q -m one"
	measure commit_off "$BENCH_COMMIT_RUNS" "one-file \`git commit\` (content change), hooks off" \
		"echo \$RANDOM >>$ONE && git add $ONE" "git -c core.hooksPath=/dev/null commit -q -m one"
	# git's own part of the hooks' cost: with any pre-commit hook, git
	# reads the whole index again once it has run.
	EMPTYHOOKS=$BENCH_DIR/work/empty-hooks
	mkdir -p "$EMPTYHOOKS" && printf '#!/bin/sh\nexit 0\n' >"$EMPTYHOOKS/pre-commit" && chmod +x "$EMPTYHOOKS/pre-commit"
	measure commit_empty "$BENCH_COMMIT_RUNS" "one-file \`git commit\` (content change), an empty pre-commit hook only" \
		"echo \$RANDOM >>$ONE && git add $ONE" "git -c core.hooksPath=$EMPTYHOOKS commit -q -m one"
	git onesis commit -q -m "bench commits" >/dev/null 2>&1 || true
else
	for k in commit_on commit_off commit_empty; do skip "$k" "git commit $k" "git-onesis unavailable"; done
fi

# The old recipe's upgrade step, `rsync -a image-prod image-update`, against
# `git onesis upgrade start` (branch + linked worktree + full apply).
UPW=$BENCH_DIR/work/upgrade-worktree
UPR=$BENCH_DIR/work/upgrade-rsync
if [ -n "${BENCH_SKIP_SLOW:-}" ]; then
	skip upgrade_start "git onesis upgrade start" "BENCH_SKIP_SLOW"
elif [ "$OURS" = 1 ]; then
	measure upgrade_start 1 "\`git onesis upgrade start\` (branch + worktree + apply)" \
		"git worktree remove --force --force $UPW >/dev/null 2>&1; git branch -D bench-upgrade >/dev/null 2>&1; rm -rf $UPW; git worktree prune" \
		"git onesis upgrade start -q --dir $UPW bench-upgrade"
	UPW_DISK=$(du -sh "$UPW" 2>/dev/null | cut -f1)
	git worktree remove --force --force "$UPW" >/dev/null 2>&1 || rm -rf "$UPW"
	git worktree prune; git branch -D bench-upgrade >/dev/null 2>&1 || true
else
	skip upgrade_start "git onesis upgrade start" "git-onesis unavailable"
fi
if [ -n "${BENCH_SKIP_SLOW:-}" ]; then
	skip rsync_copy "rsync -a" "BENCH_SKIP_SLOW"
else
	measure rsync_copy 1 "\`rsync -a\` of the image directory (the old recipe's copy)" \
		"rm -rf $UPR" "rsync -aHAX --numeric-ids ./ $UPR/"
	UPR_DISK=$(du -sh "$UPR" 2>/dev/null | cut -f1)
	rm -rf "$UPR"
fi

# ---------------------------------------------------------------- competitors
SAVED=$BENCH_DIR/work/gitmeta.ours
[ -f .gitmeta ] && cp -p .gitmeta "$SAVED" || true
if [ -n "$SGP" ]; then
	measure sgp_read "$BENCH_RUNS" "setgitperms.perl \`-r\` (store)" "rm -f .gitmeta" "perl $SGP -r"
	# Its own output, applied back: nothing differs, so this is its no-op apply.
	measure sgp_write "$BENCH_RUNS" "setgitperms.perl \`-w\` (apply, no-op)" : "perl $SGP -w"
	SGP_LINES=$(wc -l <.gitmeta)
	rm -f .gitmeta
else
	skip sgp_read "setgitperms.perl -r" "not found"; skip sgp_write "setgitperms.perl -w" "not found"
fi
if [ -n "$ETCK" ]; then
	measure etck_store "$BENCH_RUNS" "etckeeper \`pre-commit.d/30store-metadata\` (store)" \
		"rm -f .etckeeper" "VCS=git sh $ETCK"
	git rm -q --cached .etckeeper >/dev/null 2>&1 || true
	rm -f .etckeeper
else
	skip etck_store "etckeeper 30store-metadata" "not available"
fi
MS=$BENCH_DIR/work/metastore.data
if have metastore; then
	measure ms_save "$BENCH_RUNS" "\`metastore -s\` (store)" : "metastore -s -f $MS ."
	measure ms_compare "$BENCH_RUNS" "\`metastore -c\` (compare, clean)" : "metastore -c -f $MS . >/dev/null" ignore
else
	skip ms_save "metastore -s" "not installed"; skip ms_compare "metastore -c" "not installed"
fi
[ -f "$SAVED" ] && cp -p "$SAVED" .gitmeta || true

# ---------------------------------------------------------------- report
t() { [ -n "${T[$1]:-}" ] && printf '%s s' "${T[$1]}" || printf 'n/a'; }
ratio() { # OURS THEIRS -> "0.52×" (ours / theirs)
	local a=${T[$1]:-} b=${T[$2]:-}
	if [ -z "$a" ] || [ -z "$b" ]; then printf 'n/a'; return; fi
	awk -v a="$a" -v b="$b" 'BEGIN { if (b <= 0) { print "n/a"; exit } r = a / b
		if (r < 1) printf "%.2f× (%.1f× faster)", r, 1 / r; else printf "%.2f×", r }'
}
walks() { # ON OFF FLOOR -> (ON - OFF) / FLOOR: extra find walks
	local a=${T[$1]:-} b=${T[$2]:-} f=${T[$3]:-}
	if [ -z "$a" ] || [ -z "$b" ] || [ -z "$f" ]; then printf 'n/a'; return; fi
	awk -v a="$a" -v b="$b" -v f="$f" 'BEGIN { if (f <= 0) { print "n/a"; exit } printf "%.2f find walks (%.3f s)", (a - b) / f, a - b }'
}
target() { # VALUE-TEXT LIMIT -> "met" / "not met" from the number VALUE-TEXT starts with
	awk -v v="$1" -v l="$2" 'BEGIN { if (v !~ /^[0-9.]/) { print "n/a"; exit } if (v + 0 <= l) print "met"; else print "not met" }'
}
extra() { # OURS BASE -> seconds OURS takes beyond BASE ("n/a" if unknown)
	local a=${T[$1]:-} b=${T[$2]:-}
	if [ -z "$a" ] || [ -z "$b" ]; then printf 'n/a'; return; fi
	awk -v a="$a" -v b="$b" 'BEGIN { printf "%.3f s", a - b }'
}
v() { "$@" 2>/dev/null | head -1 || echo n/a; }
gen() {
	echo "Generated by \`make bench\` ($(basename "${BASH_SOURCE[0]}")) on $(date -u +%Y-%m-%d) UTC."
	echo
	echo "**Machine:** $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(free -g | awk '/^Mem:/ {print $2}') GiB RAM, kernel $(uname -r), $(stat -f -c %T "$TREE") filesystem."
	echo "**Software:** $(v go version | sed 's/^go version //'), $(v git --version), $( [ "$OURS" = 1 ] && v git onesis version | tr -d '\n' || echo "git-onesis n/a"), $( have hyperfine && v hyperfine --version || echo 'built-in timer'), metastore $(v metastore --version | awk '{print $NF}'), etckeeper $(cat "$BENCH_DIR/tools/etckeeper-30store-metadata.version" 2>/dev/null || echo n/a)."
	echo "**Corpus:** $ENTRIES entries ($SIZE) = $COPIES copies of a $PER-entry root filesystem from $SOURCE; $SETUID setuid/setgid files, $DEVICES device nodes; $( [ "$BENCH_UNIQUE" = 1 ] && echo "content made unique per copy (each regular file has its own path appended), so git stores every copy" || echo "copies identical (git stores their content once)")."
	echo "**Load average** (1, 5, 15 min; the machine may be shared): $LOAD_BEFORE before the timed runs, $(cut -d' ' -f1-3 /proc/loadavg) after."
	echo
	echo "| operation | runs | best time |"
	echo "|---|---:|---:|"
	local k
	for k in "${ORDER[@]}"; do
		echo "| ${LABEL[$k]} | ${RUNS[$k]} | $(t "$k") |"
	done
	echo
	echo "**Targets** (issue 20; one run, not an assertion):"
	echo
	echo "| target | measured | limit | |"
	echo "|---|---:|---:|---|"
	local r
	r=$(ratio status git_status); echo "| \`git onesis status\` vs \`git status --porcelain\` | $r | 1.3× | $(target "$r" 1.3) |"
	r=$(ratio onesis_checkout git_checkout); echo "| \`git onesis checkout\` vs \`git checkout\` hooks off (${CHANGED:-1000} entries differ) | $r | 1.3× | $(target "$r" 1.3) |"
	r=$(ratio hook_checkout git_checkout); echo "| \`git checkout\` with the hooks vs hooks off (same switch) | $r | 1.3× | $(target "$r" 1.3) |"
	r=$(walks commit_on commit_off find); echo "| one-file \`git commit\`: hooks on minus hooks off | $r | 1.1 find walks | $(target "$r" 1.1) |"
	echo "| ... of which git's own, with an empty pre-commit hook | $(walks commit_empty commit_off find) | | |"
	echo "| ... and the hooks' (hooks on minus the empty hook) | $(walks commit_on commit_empty find) | | |"
	r=$(ratio onesis_init git_init); echo "| \`git onesis init --commit\` vs \`git init && git add -A && git commit\` | $r | 1.0× | $(target "$r" 1.0) |"
	r=$(ratio record find); echo "| \`git onesis record\` vs the \`find\` floor | $r | 1.0× | $(target "$r" 1.0) |"
	echo
	echo "Ratios are git-onesis time / other time (below 1 means git-onesis is faster)."
	echo
	echo "| comparison | ratio |"
	echo "|---|---:|"
	echo "| \`git onesis init --commit\` vs \`git init && git add -A && git commit\` | $(ratio onesis_init git_init) |"
	echo "| \`git onesis record\` vs setgitperms.perl \`-r\` | $(ratio record sgp_read) |"
	echo "| \`git onesis record\` vs etckeeper store | $(ratio record etck_store) |"
	echo "| \`git onesis record\` vs \`metastore -s\` | $(ratio record ms_save) |"
	echo "| \`git onesis record\` vs the \`find\` floor | $(ratio record find) |"
	echo "| \`git onesis record\` without the scan cache vs the \`find\` floor | $(ratio record_nocache find) |"
	echo "| \`git onesis record\` without the scan cache vs setgitperms.perl \`-r\` | $(ratio record_nocache sgp_read) |"
	echo "| \`git onesis record\` without the scan cache vs \`metastore -s\` | $(ratio record_nocache ms_save) |"
	echo "| \`git onesis record\` after 1-file change vs full record | $(ratio record_1 record) |"
	echo "| \`git onesis apply\` (no-op) vs setgitperms.perl \`-w\` | $(ratio apply_noop sgp_write) |"
	echo "| \`git onesis status\` vs \`metastore -c\` | $(ratio status ms_compare) |"
	echo "| \`git onesis status\` vs \`git status --porcelain\` | $(ratio status git_status) |"
	echo "| \`git onesis checkout\` vs plain \`git checkout\` (1k entries differ) | $(ratio onesis_checkout git_checkout) |"
	echo "| \`git checkout\` with the hooks vs hooks off (1k entries differ) | $(ratio hook_checkout git_checkout) |"
	echo "| \`git onesis checkout\` vs plain \`git checkout\` (10 entries differ) | $(ratio onesis_checkout10 git_checkout10) |"
	echo "| \`git onesis upgrade start\` vs \`rsync -a\` of the image | $(ratio upgrade_start rsync_copy) |"
	echo
	echo "Metadata work a switch adds to git's own checkout (\`git onesis checkout\` minus hooks-off \`git checkout\`): $(extra onesis_checkout git_checkout) for 1k entries, $(extra onesis_checkout10 git_checkout10) for 10. What remains at 10 entries is fixed per switch: comparing both .gitmeta files line by line and both index files entry by entry, and writing the index again with its checksum, not a walk of the tree."
	echo
	echo "Disk for an upgrade tree: the linked worktree took ${UPW_DISK:-n/a} (the checked-out files; it shares the object store), the rsync copy ${UPR_DISK:-n/a} (files plus a second copy of .git)."
	echo
	echo "What each tool covers differs: setgitperms.perl records only tracked files and their parent directories (${SGP_LINES:-?} lines here; no types, devices, FIFOs, empty directories or xattrs); etckeeper records mode for files and directories plus owner where it is not the caller's, as shell commands; metastore records owner, mode, mtime and xattrs in a binary file; git-onesis records every object, including devices, FIFOs, sockets, empty directories, hard links and xattrs."
}
BEGIN='<!-- BEGIN GENERATED: make bench -->'
END='<!-- END GENERATED: make bench -->'
OUTTXT=$(gen)
if [ "$BENCH_OUT" = - ]; then
	printf '%s\n' "$OUTTXT"
else
	replace_section "$BENCH_OUT" "$BEGIN" "$END" "$OUTTXT" "# git-onesis benchmarks"
	say "wrote $BENCH_OUT"
	printf '%s\n' "$OUTTXT"
fi
