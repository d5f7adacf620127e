#!/usr/bin/env bash
# git-onesis demo: record a small fake OS image in git, tamper with its
# metadata, watch `git onesis status` and `diff` report each change, and
# `git onesis apply` put it back. Run by `make demo` (which builds first).
#
# Needs root: the image holds device nodes, a setuid file, files owned by
# other users and a file capability. Everything happens under a temp dir,
# which is removed at the end (set KEEP=1 to keep it).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
GIT_ONESIS=${GIT_ONESIS:-$REPO/bin/git-onesis}

if [ -t 1 ]; then B=$'\e[1m' G=$'\e[32m' R=$'\e[31m' N=$'\e[0m'; else B= G= R= N=; fi
heading() { printf '\n%s==== %s ====%s\n' "$B" "$*" "$N"; }
show() { printf '%s$ %s%s\n' "$B" "$*" "$N"; }
FAILED=0
# expect CODE CMD...: show and run CMD, check its exit status.
expect() {
	local want=$1 rc=0
	shift
	show "$*"
	"$@" || rc=$?
	if [ "$rc" = "$want" ]; then
		printf '%s(exit %s, as expected)%s\n' "$G" "$rc" "$N"
	else
		printf '%sUNEXPECTED: exit %s, wanted %s%s\n' "$R" "$rc" "$want" "$N"
		FAILED=1
	fi
}
die() { printf '%sdemo: %s%s\n' "$R" "$*" "$N" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (device nodes, chown and setcap need it); e.g. sudo make demo"
[ -x "$GIT_ONESIS" ] || die "$GIT_ONESIS not built; run 'make build' (or 'make demo')"
command -v git >/dev/null || die "git not found"
HAVE_CAPS=1
command -v setcap >/dev/null && command -v getcap >/dev/null || {
	HAVE_CAPS=0
	echo "note: setcap/getcap not found (apt-get install libcap2-bin); skipping the capability parts"
}

export PATH="$(dirname "$GIT_ONESIS"):$PATH"
export GIT_AUTHOR_NAME=demo GIT_AUTHOR_EMAIL=demo@example.invalid
export GIT_COMMITTER_NAME=demo GIT_COMMITTER_EMAIL=demo@example.invalid
export GIT_PAGER=cat PAGER=cat
umask 022

WORK=$(mktemp -d "${TMPDIR:-/tmp}/git-onesis-demo.XXXXXX")
if [ -z "${KEEP:-}" ]; then trap 'rm -rf "$WORK"' EXIT; else echo "keeping $WORK"; fi
IMG=$WORK/image

heading "1. git-onesis binary"
show "git onesis version"
git onesis version

heading "2. A small fake root filesystem in $IMG"
mkdir -p "$IMG"/{etc,dev,usr/bin,usr/sbin,var/empty,var/log,tmp,root,proc,home/alice}
ln -s usr/bin "$IMG/bin"
chmod 1777 "$IMG/tmp"
chmod 0700 "$IMG/root"
chmod 0555 "$IMG/proc"
chmod 0711 "$IMG/var/empty"                      # an empty directory: git cannot carry it
cat >"$IMG/etc/passwd" <<'EOP'
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/sh
bob:x:1001:1001:Bob:/nonexistent:/usr/sbin/nologin
EOP
cat >"$IMG/etc/group" <<'EOP'
root:x:0:
daemon:x:1:
disk:x:6:
shadow:x:42:
alice:x:1000:
bob:x:1001:
EOP
echo "node01" >"$IMG/etc/hostname"
echo 'root:*:19000:0:99999:7:::' >"$IMG/etc/shadow"
chown 0:42 "$IMG/etc/shadow"; chmod 0640 "$IMG/etc/shadow"
printf '#!/bin/sh\necho "changing password"\n' >"$IMG/usr/bin/passwd"
chmod 4755 "$IMG/usr/bin/passwd"                 # setuid root
printf '#!/bin/sh\necho PING\n' >"$IMG/usr/bin/ping"
chmod 0755 "$IMG/usr/bin/ping"
printf '#!/bin/sh\necho editing\n' >"$IMG/usr/bin/editor"
chmod 0755 "$IMG/usr/bin/editor"
ln "$IMG/usr/bin/editor" "$IMG/usr/bin/vi"       # a hard link
echo 'export PS1="$ "' >"$IMG/home/alice/.profile"
chown -R 1000:1000 "$IMG/home/alice"
mknod -m 0666 "$IMG/dev/null" c 1 3             # character device
mknod -m 0660 "$IMG/dev/sda" b 8 0              # block device
chown 0:6 "$IMG/dev/sda"
mkfifo -m 0600 "$IMG/dev/initctl"               # FIFO
[ "$HAVE_CAPS" = 0 ] || setcap cap_net_raw+ep "$IMG/usr/bin/ping"   # file capability (an xattr)
cd "$IMG"
show "ls -l usr/bin dev; ls -ld var/empty"
ls -l usr/bin dev
ls -ld var/empty
[ "$HAVE_CAPS" = 0 ] || { show "getcap usr/bin/ping"; getcap usr/bin/ping; }

heading "3. Put it in git: git onesis init --commit"
expect 0 git onesis init --commit -m "node image"
show "git log --oneline --stat"
git log --oneline --stat | cat
show "grep -E 'passwd|ping|dev/|var/empty|vi ' .gitmeta"
grep -E 'passwd|ping|dev/|var/empty|/vi ' .gitmeta || true
expect 0 git onesis status

heading "4. Tamper with the metadata (git itself sees none of this)"
show "chmod u+s usr/bin/editor";       chmod u+s usr/bin/editor
show "chown 1001:1001 etc/hostname";   chown 1001:1001 etc/hostname
if [ "$HAVE_CAPS" = 1 ]; then
	show "setcap cap_net_raw,cap_sys_admin+ep usr/bin/ping"
	setcap cap_net_raw,cap_sys_admin+ep usr/bin/ping
fi
show "rm dev/null && mknod -m 0666 dev/null c 1 5   # now it is /dev/zero"
rm dev/null && mknod -m 0666 dev/null c 1 5
show "git status --short   # plain git"
git status --short
echo "(plain git reports nothing)"

heading "5. git onesis status: every tamper, exit 1"
expect 1 git onesis status
OUT=$(git onesis status 2>&1 || true)
for p in usr/bin/editor etc/hostname dev/null; do
	grep -q "$p" <<<"$OUT" || { printf '%sstatus did not mention %s%s\n' "$R" "$p" "$N"; FAILED=1; }
done
[ "$HAVE_CAPS" = 0 ] || grep -q usr/bin/ping <<<"$OUT" || { printf '%sstatus did not mention usr/bin/ping%s\n' "$R" "$N"; FAILED=1; }

heading "6. git onesis diff: the same changes in words"
show "git onesis diff"
rc=0; OUT=$(git onesis diff 2>&1) || rc=$?
printf '%s\n(exit %s)\n' "$OUT" "$rc"
[ "$rc" -le 1 ] || { printf '%sUNEXPECTED: git onesis diff failed%s\n' "$R" "$N"; FAILED=1; }
grep -q usr/bin/editor <<<"$OUT" || { printf '%sdiff did not mention usr/bin/editor%s\n' "$R" "$N"; FAILED=1; }

heading "7. git onesis apply: restore the recorded metadata"
expect 0 git onesis apply -v
show "stat -c '%A %U:%G %t,%T %n' usr/bin/editor etc/hostname dev/null"
stat -c '%A %U:%G %t,%T %n' usr/bin/editor etc/hostname dev/null
[ "$HAVE_CAPS" = 0 ] || { show "getcap usr/bin/ping"; getcap usr/bin/ping; }

heading "8. git onesis status: clean again, exit 0"
expect 0 git onesis status

# Check the restore independently of git-onesis.
[ "$(stat -c %a usr/bin/editor)" = 755 ] || { echo "${R}usr/bin/editor still $(stat -c %a usr/bin/editor)${N}"; FAILED=1; }
[ "$(stat -c %u:%g etc/hostname)" = 0:0 ] || { echo "${R}etc/hostname still $(stat -c %u:%g etc/hostname)${N}"; FAILED=1; }
[ "$(stat -c %t,%T dev/null)" = 1,3 ] || { echo "${R}dev/null still $(stat -c %t,%T dev/null)${N}"; FAILED=1; }
if [ "$HAVE_CAPS" = 1 ]; then
	case $(getcap usr/bin/ping) in
	*cap_sys_admin*) echo "${R}usr/bin/ping still has cap_sys_admin${N}"; FAILED=1 ;;
	*cap_net_raw*) ;;
	*) echo "${R}usr/bin/ping lost cap_net_raw${N}"; FAILED=1 ;;
	esac
fi

heading "Result"
if [ "$FAILED" = 0 ]; then
	echo "${G}demo OK: every tamper was reported and undone${N}"
else
	echo "${R}demo FAILED: see the UNEXPECTED lines above${N}"
	exit 1
fi
