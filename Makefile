# git-onesis Makefile.
#
# On a fresh Debian 12 machine, as root (each target installs the Debian
# packages it needs with .ci/deps, from the one list in .ci/packages):
#     make demo     # build, then PXE-boot two QEMU nodes from a git branch (internal/demo/boot.sh)
#     make demo-meta  # record / tamper / status / diff / apply on a small image
#     make test     # vet, gofmt check, all tests (fuzz corpora replayed), e2e, demo-debian
#     make fuzz     # every fuzz target for FUZZTIME each: new inputs, not part of make test
#
# Everything git-related in `make test` runs hermetically: GIT_DIR,
# GIT_WORK_TREE, GIT_INDEX_FILE and friends are unset, HOME points at a fresh
# temporary directory, and the system git config is ignored. Go's own caches
# are kept (they are looked up before HOME changes), so nothing is downloaded.

GO       ?= go
GOFMT    ?= gofmt
ASCIIDOCTOR ?= asciidoctor
PREFIX   ?= /usr/local
DESTDIR  ?=
BINDIR   ?= $(PREFIX)/bin
MANDIR   ?= $(PREFIX)/share/man
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
FUZZTIME ?= 20s

BIN      := bin/git-onesis
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  ?=
# urfave/cli's Markdown and man page writers (and blackfriday under them)
# are not used: the man pages are docs/man. Leaving them out saves each
# start of git-onesis, so each hook, their package initialisation (5 ms).
TAGS     ?= urfave_cli_no_docs

# Go sources, minus anything under testdata (fuzz corpora, fixtures).
GOFILES = $(shell find . -path ./.git -prune -o -path ./bin -prune -o -name testdata -prune -o -type f -name '*.go' -print)

MAN_SRC  := $(wildcard docs/man/*.adoc)
# A page's section is in its title line: "= git-onesis-config(5)".
MAN1_SRC := $(shell grep -l '^= .*(1)$$' $(MAN_SRC) /dev/null 2>/dev/null)
MAN5_SRC := $(shell grep -l '^= .*(5)$$' $(MAN_SRC) /dev/null 2>/dev/null)
MANOUT   ?= bin/man
MAN1     := $(patsubst docs/man/%.adoc,$(MANOUT)/man1/%.1,$(MAN1_SRC))
MAN5     := $(patsubst docs/man/%.adoc,$(MANOUT)/man5/%.5,$(MAN5_SRC))
# 'git help onesis-upgrade' asks man for gitonesis-upgrade (git puts "git"
# before a name that is not a git command): one .so alias per subpage.
MANALIAS := $(patsubst $(MANOUT)/man1/git-onesis-%,$(MANOUT)/man1/gitonesis-%,$(filter $(MANOUT)/man1/git-onesis-%,$(MAN1))) \
	$(patsubst $(MANOUT)/man5/git-onesis-%,$(MANOUT)/man5/gitonesis-%,$(filter $(MANOUT)/man5/git-onesis-%,$(MAN5)))

# The hermetic environment for tests. $$tmp is set by the recipe.
HERMETIC_ENV = env \
	-u GIT_DIR -u GIT_WORK_TREE -u GIT_INDEX_FILE -u GIT_OBJECT_DIRECTORY \
	-u GIT_ALTERNATE_OBJECT_DIRECTORIES -u GIT_COMMON_DIR -u GIT_NAMESPACE \
	-u GIT_CEILING_DIRECTORIES -u GIT_CONFIG -u GIT_CONFIG_GLOBAL \
	-u GIT_CONFIG_PARAMETERS -u GIT_CONFIG_COUNT -u GIT_EXEC_PATH \
	-u GIT_TRACE -u GIT_PAGER -u GIT_EDITOR -u XDG_CONFIG_HOME \
	-u GIT_AUTHOR_NAME -u GIT_AUTHOR_EMAIL -u GIT_AUTHOR_DATE \
	-u GIT_COMMITTER_NAME -u GIT_COMMITTER_EMAIL -u GIT_COMMITTER_DATE \
	HOME="$$tmp/home" \
	GIT_CONFIG_NOSYSTEM=1 \
	GIT_TEMPLATE_DIR="$$tmp/template" \
	GOCACHE="$$($(GO) env GOCACHE)" \
	GOMODCACHE="$$($(GO) env GOMODCACHE)" \
	GOPATH="$$($(GO) env GOPATH)" \
	GOFLAGS="$$($(GO) env GOFLAGS)" \
	LC_ALL=C

.PHONY: all build test e2e vet fmt-check lint fuzz demo demo-debian demo-meta bench bench-scale bench-boot bench-storm bench-nfs bench-nfs-boot bench-verify bench-meta man install uninstall clean

all: build

build:
	$(GO) build -trimpath -tags '$(TAGS)' -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/git-onesis
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '-s -w' -o bin/onesis-init ./cmd/onesis-init

vet:
	$(GO) vet ./...

# Fails (and lists the files) when anything is not gofmt-clean.
fmt-check:
	@out=$$($(GOFMT) -l $(GOFILES)); \
	if [ -n "$$out" ]; then \
		echo "gofmt: these files need formatting (run: gofmt -w <file>):" >&2; \
		echo "$$out" >&2; exit 1; \
	fi; echo "gofmt: ok"

lint: fmt-check vet

# make test: root, because it installs packages (.ci/deps) and boots QEMU
# nodes in network namespaces. Three phases, each timed: unit (vet, gofmt,
# go test, which replays every fuzz corpus), e2e and demo-debian.
test:
	@if [ "$$(id -u)" != 0 ]; then echo "make test: run as root: it installs the Debian packages in .ci/packages and boots QEMU nodes in network namespaces (sudo make test; 'go test ./...' alone runs the unit tests a user can)" >&2; exit 1; fi
	@bash .ci/deps test
	@set -e; tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/git-onesis-test.XXXXXX"); \
	trap 'rm -rf "$$tmp"' EXIT; mkdir -p "$$tmp/home" "$$tmp/template"; \
	t0=$$(date +%s); phase=unit; times=""; \
	took() { times="$$times  $$phase $$(( $$(date +%s) - t0 ))s"; t0=$$(date +%s); }; \
	trap 'rc=$$?; rm -rf "$$tmp"; if [ $$rc != 0 ]; then took; echo "== make test: FAILED in phase $$phase (times:$$times)"; fi' EXIT; \
	echo "== hermetic test environment: HOME=$$tmp/home GIT_CONFIG_NOSYSTEM=1"; \
	echo "== go vet ./..."; \
	$(HERMETIC_ENV) $(GO) vet ./...; \
	echo "== gofmt check"; \
	$(HERMETIC_ENV) $(MAKE) --no-print-directory fmt-check; \
	echo "== go test -count=1 -p 1 ./... (one package at a time: the QEMU and netns tests share 2 cores; fuzz corpora are replayed, not extended: make fuzz)"; \
	$(HERMETIC_ENV) $(GO) test -count=1 -p 1 -timeout 40m ./...; \
	took; phase=e2e; \
	echo "== make e2e: the whole boot chain in QEMU"; \
	$(MAKE) --no-print-directory e2e; \
	took; phase=demo-debian; \
	echo "== make demo-debian: a debootstrap image with systemd boots on the NFS root"; \
	$(MAKE) --no-print-directory demo-debian; \
	took; phase=; \
	total=0; for x in $$times; do case $$x in *s) total=$$(( total + $${x%s} ));; esac; done; \
	echo "== make test: phase times:$$times  total $${total}s"; \
	echo "== make test: all passed"

# Open-ended fuzzing, every fuzz target for FUZZTIME each (not part of make
# test, which only replays the corpora). A finding is written to the
# package's testdata/fuzz; commit it with the fix.
fuzz:
	@set -e; tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/git-onesis-fuzz.XXXXXX"); \
	trap 'rm -rf "$$tmp"' EXIT; mkdir -p "$$tmp/home" "$$tmp/template"; \
	for f in $$(grep -l '^func Fuzz' $$(find . -path ./.git -prune -o -name '*_test.go' -print) | sort); do \
		pkg=./$$(dirname "$${f#./}"); \
		for name in $$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$$f"); do \
			echo "== fuzz $$pkg $$name for $(FUZZTIME)"; \
			$(HERMETIC_ENV) $(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZTIME) "$$pkg"; \
		done; \
	done

# The main job. Needs root (network namespaces, taps, QEMU); installs the
# packages it needs (.ci/deps demo). Downloads the Debian kernel .deb once into
# /var/cache/git-onesis-test (unpacked, never installed).
demo:
	@bash .ci/deps demo
	@$(MAKE) --no-print-directory build
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/git-onesis-demo-env.XXXXXX"); \
	trap 'rm -rf "$$tmp"' EXIT; mkdir -p "$$tmp/home" "$$tmp/template"; \
	$(HERMETIC_ENV) GIT_ONESIS="$(CURDIR)/$(BIN)" bash internal/demo/boot.sh

# The same chain as assertions, plus an unknown MAC, TFTP traversal and a
# serve restart under a running node. Part of `make test`.
e2e:
	@bash .ci/deps test
	@$(MAKE) --no-print-directory build
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/git-onesis-e2e-env.XXXXXX"); \
	trap 'rm -rf "$$tmp"' EXIT; mkdir -p "$$tmp/home" "$$tmp/template"; \
	$(HERMETIC_ENV) E2E=1 GIT_ONESIS="$(CURDIR)/$(BIN)" bash internal/demo/boot.sh

# The same chain with a Debian image (debootstrap minbase + systemd, cached
# in /var/cache/git-onesis-test) instead of busybox: systemd is PID 1 on the
# NFS root. Part of `make test`.
demo-debian:
	@bash .ci/deps test
	@$(MAKE) --no-print-directory build
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/git-onesis-demo-env.XXXXXX"); \
	trap 'rm -rf "$$tmp"' EXIT; mkdir -p "$$tmp/home" "$$tmp/template"; \
	$(HERMETIC_ENV) IMAGE=debian GIT_ONESIS="$(CURDIR)/$(BIN)" bash internal/demo/boot.sh

# Metadata only: record, tamper, status, diff, apply on a small image.
demo-meta:
	@bash .ci/deps demo
	@$(MAKE) --no-print-directory build
	@tmp=$$(mktemp -d "$${TMPDIR:-/tmp}/git-onesis-demo-env.XXXXXX"); \
	trap 'rm -rf "$$tmp"' EXIT; mkdir -p "$$tmp/home" "$$tmp/template"; \
	$(HERMETIC_ENV) GIT_ONESIS="$(CURDIR)/$(BIN)" bash internal/demo/demo.sh

# Slow (minutes): builds a >=300k-entry corpus under /var/tmp/git-onesis-bench
# and rewrites the generated part of docs/benchmarks.md; then the scale curve
# (bench-scale).
bench:
	@bash .ci/deps bench
	@$(MAKE) --no-print-directory build
	GIT_ONESIS="$(CURDIR)/$(BIN)" bash internal/bench/bench.sh
	GO="$(GO)" GIT_ONESIS="$(CURDIR)/$(BIN)" bash internal/bench/scalebench.sh

# A few minutes, no root: the node inventory commands, class, node import
# and serve's reload at 1k, 10k and 50k nodes, with the ratio between sizes
# (part of bench); rewrites its part of docs/benchmarks.md.
bench-scale: build
	GO="$(GO)" GIT_ONESIS="$(CURDIR)/$(BIN)" bash internal/bench/scalebench.sh

# About 25 minutes, root: N simulated nodes (10, 50, 100) fetch a kernel and an
# initrd at once over TFTP (ours, dnsmasq's, tftpd-hpa's) and over our HTTP,
# inside network namespaces the script creates, best of 3 rounds; rewrites
# its part of docs/benchmarks.md.
bench-boot:
	@bash .ci/deps bench
	GO="$(GO)" bash internal/bench/bootbench.sh
	GO="$(GO)" bash internal/bench/stormbench.sh

# About 10 minutes, root: the boot storm alone (part of bench-boot): 50, 200
# and 500 simulated nodes boot the whole PXE chain at once from git-onesis
# (iPXE over HTTP, PXELINUX over TFTP), dnsmasq and dnsmasq + tftpd-hpa;
# perfdhcp against git-onesis and kea-dhcp4.
bench-storm:
	@bash .ci/deps bench
	GO="$(GO)" bash internal/bench/stormbench.sh

# A few minutes, root: 1 and 20 simulated nodes read a whole debootstrap
# minbase root through the embedded NFS server (a pipelined, kernel-like
# client and go-nfs-client) and through NFS-Ganesha exporting the same
# commit's tree, against local tar of the same tree; reports the servers'
# peak RSS; rewrites its part of docs/benchmarks.md. NFSBENCH_BASE=REV adds
# rows for the embedded server at REV.
bench-nfs:
	@bash .ci/deps bench
	GO="$(GO)" bash internal/bench/nfsbench.sh

# Minutes, root, after make bench-nfs (its image): what served-byte
# verification costs the NFS root, verifying and not, alternated (first
# read, first read after a restart, warm); rewrites its part of
# docs/benchmarks.md. STORM_SKIP_VERIFY=1 and NFSBENCH_SKIP_VERIFY=1 give
# the other benchmarks' "not verifying" arm.
bench-verify:
	GO="$(GO)" bash internal/bench/verifybench.sh

# 15-30 minutes, root: the demo-debian image boots 1, then 4 QEMU nodes at
# once; each node's time from mounting the NFS root to the report service,
# for this tree and NFSBOOT_BASE=REV alternately. Prints a table.
bench-nfs-boot:
	@bash .ci/deps test
	GO="$(GO)" bash internal/bench/nfsbootbench.sh

# Minutes, root, after make bench: the everyday metadata commands (record,
# status, apply, checkouts hooked and not, add, commit) with this tree's
# binary and with BASE's, interleaved on make bench's corpus; prints a table
# of medians (wall and CPU) and their ratios. make bench-meta BASE=REV
bench-meta:
	@bash .ci/deps bench
	@test -n "$(BASE)" || { echo "make bench-meta: say which revision to compare against: make bench-meta BASE=REV" >&2; exit 129; }
	GO="$(GO)" METAAB_BASE="$(BASE)" bash internal/bench/metaab.sh

man: $(MAN1) $(MAN5) $(MANALIAS)

$(MANOUT)/man1/%.1: docs/man/%.adoc
	@mkdir -p $(@D)
	$(ASCIIDOCTOR) -b manpage -a mansource=git-onesis -a manversion=$(VERSION) -a manmanual='git-onesis Manual' -D $(@D) -o $(@F) $<

$(MANOUT)/man5/%.5: docs/man/%.adoc
	@mkdir -p $(@D)
	$(ASCIIDOCTOR) -b manpage -a mansource=git-onesis -a manversion=$(VERSION) -a manmanual='git-onesis Manual' -D $(@D) -o $(@F) $<

$(MANOUT)/man1/gitonesis-%: $(MANOUT)/man1/git-onesis-%
	printf '.so man1/%s\n' '$(<F)' > $@

$(MANOUT)/man5/gitonesis-%: $(MANOUT)/man5/git-onesis-%
	printf '.so man5/%s\n' '$(<F)' > $@

install: build man
	install -d $(DESTDIR)$(BINDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(BASHCOMPDIR)
	install -m 0755 $(BIN) $(DESTDIR)$(BINDIR)/git-onesis
	install -D -m 0755 bin/onesis-init $(DESTDIR)$(PREFIX)/lib/git-onesis/onesis-init
	install -m 0644 $(MAN1) $(filter %.1,$(MANALIAS)) $(DESTDIR)$(MANDIR)/man1/
	install -m 0644 $(MAN5) $(filter %.5,$(MANALIAS)) $(DESTDIR)$(MANDIR)/man5/
	$(BIN) completion bash > bin/git-onesis.bash
	install -m 0644 bin/git-onesis.bash $(DESTDIR)$(BASHCOMPDIR)/git-onesis
	-@[ -n "$(DESTDIR)" ] || ! command -v mandb >/dev/null 2>&1 || mandb -q 2>/dev/null || true

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/git-onesis $(DESTDIR)$(BASHCOMPDIR)/git-onesis
	rm -f $(DESTDIR)$(PREFIX)/lib/git-onesis/onesis-init
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man1/,$(notdir $(MAN1) $(filter %.1,$(MANALIAS))))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(MAN5) $(filter %.5,$(MANALIAS))))

clean:
	rm -rf bin
