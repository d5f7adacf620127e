package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestGitConventions (item 12 and issue 16): -q means quiet everywhere it
// is offered, help works as git's does, commands that need a subcommand
// say so with 129, usage errors name the full command, options may follow
// arguments and -n1 is a count, -z implies --porcelain and --json does not
// mix with it.
func TestGitConventions(t *testing.T) {
	base := t.TempDir()
	img := filepath.Join(base, "image")
	adminRepo(t, img)
	writeTree(t, img, map[string]string{"etc/motd": "v2\n"})
	must(t, img, "git", "onesis", "commit", "-qam", "motd v2")
	noMan := []string{"MANPATH=" + t.TempDir()}

	for _, tc := range []struct {
		args []string
		env  []string
		code int
		out  string // in stdout
		err  string // in stderr
	}{
		{args: nil, code: 1, out: "USAGE:"},
		{args: []string{"help", "status"}, env: noMan, code: 0, out: "git onesis status - show content changes"},
		{args: []string{"help", "upgrade", "start"}, env: noMan, code: 0, out: "git onesis upgrade start [--from REF]"},
		{args: []string{"help", "nosuch"}, code: 129, err: "not a git-onesis command"},
		{args: []string{"upgrade"}, code: 129, err: "git onesis upgrade needs a subcommand"},
		{args: []string{"node"}, code: 129, err: "git onesis node needs a subcommand"},
		{args: []string{"upgrade", "frob"}, code: 129, err: "'frob' is not a subcommand of 'git onesis upgrade'"},
		{args: []string{"upgrade", "strat"}, code: 129, err: "The most similar command is\n\tstart\n"},
		{args: []string{"stauts"}, code: 129, err: "'stauts' is not a git-onesis command. See 'git onesis --help'.\n\nThe most similar command is\n\tstatus\n"},
		{args: []string{"help", "recrod"}, code: 129, err: "The most similar command is\n\trecord\n"},
		{args: []string{"xyzzy"}, code: 129, err: "'xyzzy' is not a git-onesis command. See 'git onesis --help'.\n"},
		{args: []string{"upgrade", "start"}, code: 129, err: "See 'git onesis upgrade start --help'"},
		{args: []string{"upgrade", "start", "--bogus", "x"}, code: 129, err: "See 'git onesis upgrade start --help'"},
		{args: []string{"status", "--json", "--porcelain"}, code: 129, err: "--json cannot be used with --porcelain"},
		{args: []string{"verify", "--json", "-z"}, code: 129, err: "--json cannot be used"},
		{args: []string{"diff", "--json", "--porcelain"}, code: 129, err: "--json cannot be used"},
		{args: []string{"status", "-q"}, code: 0},
		{args: []string{"log", "HEAD", "--json", "-n1"}, code: 0, out: `"subject": "motd v2"`},
	} {
		r := runEnv(t, img, tc.env, "git", append([]string{"onesis"}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.out, tc.out) || !strings.Contains(r.err, tc.err) {
			t.Errorf("git onesis %s: exit %d (want %d)\nstdout: %.400s\nstderr: %s", strings.Join(tc.args, " "), r.code, tc.code, r.out, r.err)
		}
	}
	// log: -n1 is one commit, options after the revision count.
	var js []jsonLogCommit
	if err := json.Unmarshal([]byte(must(t, img, "git", "onesis", "log", "HEAD", "--json", "-n1")), &js); err != nil || len(js) != 1 {
		t.Errorf("log HEAD --json -n1: %v, %d commits", err, len(js))
	}
	if out := must(t, img, "git", "onesis", "log", "-n1"); strings.Count(out, "\n") < 1 || strings.Contains(out, "Import image") {
		t.Errorf("log -n1 shows more than one commit:\n%s", out)
	}

	// A dirty tree: -q is silent with exit 1; -z alone is the porcelain.
	chmod(t, filepath.Join(img, "etc/motd"), 0o600)
	for _, cmd := range []string{"status", "verify", "diff"} {
		args := []string{cmd, "-q"}
		r := onesis(t, img, args...)
		if r.code != 1 || r.out != "" {
			t.Errorf("git onesis %s -q on a dirty tree: exit %d, stdout %q; want 1 and nothing", cmd, r.code, r.out)
		}
	}
	z := onesis(t, img, "status", "-z")
	pz := onesis(t, img, "status", "--porcelain", "-z")
	if z.out != pz.out || !strings.Contains(z.out, "M mode etc/motd\x00") {
		t.Errorf("status -z = %q; want the porcelain %q", z.out, pz.out)
	}
	must(t, img, "git", "onesis", "commit", "-qm", "motd private")

	// -q silences the lifecycle commands' reports.
	for _, args := range [][]string{
		{"upgrade", "start", "-q", "u1"},
		{"upgrade", "promote", "-q", "u1"},
		{"rollback", "-q", "HEAD~1"},
		{"upgrade", "abandon", "-q", "u1"},
	} {
		if r := onesis(t, img, args...); r.code != 0 || r.out != "" {
			t.Errorf("git onesis %s: exit %d, stdout %q; want nothing\n%s", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
}

// TestGitHelpPages (item 12): 'git help onesis-upgrade' and 'git onesis
// help upgrade' open the installed git-onesis-upgrade(1), as
// 'git help onesis' opens git-onesis(1); make man renders them and the
// gitonesis-* aliases git asks man for.
func TestGitHelpPages(t *testing.T) {
	for _, tool := range []string{"asciidoctor", "man", "make"} {
		needTool(t, tool)
	}
	man := t.TempDir()
	must(t, filepath.Join("..", ".."), "make", "-s", "MANOUT="+man,
		filepath.Join(man, "man1", "git-onesis-upgrade.1"), filepath.Join(man, "man1", "gitonesis-upgrade.1"))
	env := []string{"MANPATH=" + man, "MANPAGER=cat", "PAGER=cat", "MANWIDTH=100"}
	for _, args := range [][]string{{"help", "onesis-upgrade"}, {"onesis", "help", "upgrade"}} {
		r := runEnv(t, t.TempDir(), env, "git", args...)
		if r.code != 0 || !strings.Contains(r.out, "git-onesis-upgrade - upgrade an image") {
			t.Errorf("git %s: exit %d\nstdout: %.300s\nstderr: %s", strings.Join(args, " "), r.code, r.out, r.err)
		}
	}
}

// TestNodeEditKeepsComments (item 14): a "# note" written in node edit is
// kept with its node.
func TestNodeEditKeepsComments(t *testing.T) {
	dir := t.TempDir()
	must(t, dir, "git", "init", "-q")
	must(t, dir, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11")
	must(t, dir, "git", "onesis", "node", "add", "n2", "--mac", "52:54:00:00:00:02", "--ip", "10.77.0.12")
	editor := filepath.Join(t.TempDir(), "editor")
	os.WriteFile(editor, []byte("#!/bin/sh\nsed -i 's/^node n2 /# n2: bad DIMM, ticket 4711\\nnode n2 /' \"$1\"\n"), 0o755)
	if r := runEnv(t, dir, []string{"GIT_EDITOR=" + editor}, "git", "onesis", "node", "edit"); r.code != 0 {
		t.Fatalf("node edit: exit %d\n%s", r.code, r.err)
	}
	must(t, dir, "git", "onesis", "node", "set", "n2", "--args", "quiet")
	if f := must(t, dir, "git", "show", "refs/onesis/inventory:nodes"); !strings.Contains(f, "# n2: bad DIMM, ticket 4711\nnode n2 ") {
		t.Errorf("the comment was dropped:\n%s", f)
	}
}

// TestPromoteSaysWhatMerged (item 14): a promote by merge names what was
// merged into what.
func TestPromoteSaysWhatMerged(t *testing.T) {
	img := filepath.Join(t.TempDir(), "image")
	adminRepo(t, img)
	if r := onesis(t, img, "upgrade", "start", "upd2"); r.code != 0 {
		t.Fatal(r.err)
	}
	writeTree(t, img+"-upd2", map[string]string{"etc/hostname": "upd2\n"})
	must(t, img+"-upd2", "git", "onesis", "commit", "-qam", "upd2")
	writeTree(t, img, map[string]string{"etc/motd": "prod moved\n"})
	must(t, img, "git", "onesis", "commit", "-qam", "prod")
	r := onesis(t, img, "upgrade", "promote", "upd2")
	if r.code != 0 || !strings.Contains(r.out, "upd2 merged into main:") || strings.Contains(r.out, "main merged") {
		t.Errorf("promote by merge: exit %d\n%s%s", r.code, r.out, r.err)
	}
}
