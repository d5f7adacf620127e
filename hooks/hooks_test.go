package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/onesis/git-onesis/boot/sysimage"
	"github.com/onesis/git-onesis/internal/image"
	"github.com/onesis/git-onesis/internal/testkit"
)

// TestMain makes every git run hermetic: no user or system config, no
// templates, no repository inherited from the environment.
func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

// run runs name with args in dir and returns stdout, stderr and the exit
// status.
func run(t *testing.T, dir string, env []string, stdin string, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("%s %q: %v", name, args, err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

// runGit runs git in dir and fails the test on error.
func runGit(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, errOut, code := run(t, dir, nil, "", "git", args...)
	if code != 0 {
		t.Fatalf("git %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

func newRepo(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "repo")
	runGit(t, ".", "init", "-q", "-b", "main", dir)
	return dir
}

func writeFile(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

const foreign = "#!/bin/sh\necho mine\n"

func TestBody(t *testing.T) {
	for _, name := range Names {
		b := Body(name)
		if !strings.HasPrefix(b, "#!/bin/sh\n") || !strings.HasSuffix(b, "\n") {
			t.Errorf("Body(%s) lacks the shebang or trailing newline:\n%s", name, b)
		}
		if want := "exec git-onesis " + name + ` "$@"` + "\n"; !strings.HasSuffix(b, want) {
			t.Errorf("Body(%s) does not end with %q", name, want)
		}
		want := 5
		if l := doneLine(name, version); l != "" {
			want++
			if !strings.Contains(b, "\n"+l+"\n"+enabledCheck+"\n") {
				t.Errorf("Body(%s) lacks the done check before the opt-in check:\n%s", name, b)
			}
		}
		if hasNestedCheck[name] {
			want++
			if !strings.HasPrefix(b, "#!/bin/sh\n# git-onesis hook ("+version+")") || strings.Split(b, "\n")[2] != nestedCheck {
				t.Errorf("Body(%s) does not start with the nested check:\n%s", name, b)
			}
		}
		if n := strings.Count(b, "\n"); n != want {
			t.Errorf("Body(%s) has %d lines; want %d", name, n, want)
		}
		for i, text := range append([]string{b}, OutdatedBodies[name]...) {
			if _, errOut, code := run(t, ".", nil, "", "sh", "-n", "-c", text); code != 0 {
				t.Errorf("body %d of %s is not valid sh: %s", i, name, errOut)
			}
		}
	}
}

func TestInspect(t *testing.T) {
	big := "#!/bin/sh\n" + strings.Repeat("# padding\n", 500) + Body("pre-commit")
	for _, tt := range []struct {
		name    string
		content *string
		want    State
	}{
		{"missing", nil, Missing},
		{"current", ptr(Body("pre-commit")), Current},
		{"current with CRLF and no final newline", ptr(strings.TrimSuffix(strings.ReplaceAll(Body("pre-commit"), "\n", "\r\n"), "\r\n")), Current},
		{"outdated", ptr(OutdatedBodies["pre-commit"][0]), Outdated},
		{"v1, as installed", ptr(v1PreCommit), Outdated},
		{"another hook's body", ptr(Body("post-commit")), Foreign},
		{"foreign", ptr(foreign), Foreign},
		{"too big", &big, Foreign},
		{"empty", ptr(""), Empty},
		{"blank", ptr(" \n\n\t\n"), Empty},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.content != nil {
				writeFile(t, filepath.Join(dir, "pre-commit"), *tt.content, 0o755)
			}
			if got, err := Inspect(dir, "pre-commit"); err != nil || got != tt.want {
				t.Errorf("Inspect() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "pre-commit"), 0o755)
	if _, err := Inspect(dir, "pre-commit"); err == nil {
		t.Error("Inspect(directory) succeeded; want error")
	}
}

func ptr(s string) *string { return &s }

// v1PreCommit is the pre-commit hook v1 installed, byte for byte: the
// upgrade to the current body must recognise it.
const v1PreCommit = `#!/bin/sh
# git-onesis hook (v1); ` + "`git onesis install`" + ` manages this file.
test "$(git config --type=bool onesis.enabled 2>/dev/null)" = true || exit 0
command -v git-onesis >/dev/null 2>&1 || { printf >&2 '%s\n' "git-onesis: pre-commit hook: 'git-onesis' was not found on your PATH; refusing to commit without recording metadata in .gitmeta. Install git-onesis on your PATH, or stop using it in this repository with 'git config onesis.enabled false' or by deleting $0."; exit 1; }
exec git onesis pre-commit "$@"
`

// actions returns name → action.
func actions(res []Result) map[string]string {
	m := map[string]string{}
	for _, r := range res {
		m[r.Name] = r.Action
	}
	return m
}

func all(action string) map[string]string {
	m := map[string]string{}
	for _, n := range Names {
		m[n] = action
	}
	return m
}

func TestInstall(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "hooks")

	res, err := Install(dir, false)
	if err != nil || !reflect.DeepEqual(actions(res), all(ActionInstalled)) {
		t.Fatalf("Install(fresh) = %v, %v; want all installed", actions(res), err)
	}
	for _, n := range Names {
		p := filepath.Join(dir, n)
		fi, err := os.Stat(p)
		if err != nil || fi.Mode()&0o100 == 0 {
			t.Errorf("%s not executable: %v %v", n, fi.Mode(), err)
		}
		if got := readFile(t, p); got != Body(n) {
			t.Errorf("%s = %q; want Body", n, got)
		}
	}

	res, err = Install(dir, false)
	if err != nil || !reflect.DeepEqual(actions(res), all(ActionUnchanged)) {
		t.Errorf("Install(again) = %v, %v; want all unchanged", actions(res), err)
	}

	writeFile(t, filepath.Join(dir, "post-merge"), OutdatedBodies["post-merge"][0], 0o755)
	writeFile(t, filepath.Join(dir, "post-commit"), "", 0o644)
	writeFile(t, filepath.Join(dir, "pre-commit"), foreign, 0o755)
	os.Remove(filepath.Join(dir, "post-rewrite"))
	res, err = Install(dir, false)
	// All or nothing: the foreign pre-commit stops every write.
	want := all(ActionNotWritten)
	want["pre-commit"] = ActionRefused
	if !reflect.DeepEqual(actions(res), want) {
		t.Errorf("Install(mixed) actions = %v; want %v", actions(res), want)
	}
	var exists *ExistsError
	if !errors.As(err, &exists) || exists.Path != filepath.Join(dir, "pre-commit") {
		t.Fatalf("Install(mixed) error = %v; want *ExistsError for pre-commit", err)
	}
	for _, s := range []string{
		"hook already exists: " + filepath.Join(dir, "pre-commit") + "\n\n\t#!/bin/sh\n\techo mine\n",
		"git onesis install --manual", "git onesis install --force",
	} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("Install(mixed) error lacks %q:\n%v", s, err)
		}
	}
	if got := readFile(t, filepath.Join(dir, "pre-commit")); got != foreign {
		t.Errorf("refused hook was changed to %q", got)
	}
	if got := readFile(t, filepath.Join(dir, "post-merge")); got != OutdatedBodies["post-merge"][0] {
		t.Errorf("post-merge was upgraded although the install was refused: %q", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "post-rewrite")); err == nil {
		t.Errorf("post-rewrite was written although the install was refused")
	}

	res, err = Install(dir, true)
	want = all(ActionUnchanged)
	want["pre-commit"], want["post-merge"] = ActionUpgraded, ActionUpgraded
	want["post-commit"], want["post-rewrite"] = ActionInstalled, ActionInstalled
	if err != nil || !reflect.DeepEqual(actions(res), want) {
		t.Errorf("Install(force) = %v, %v; want %v", actions(res), err, want)
	}
	if got := readFile(t, filepath.Join(dir, "pre-commit")); got != Body("pre-commit") {
		t.Errorf("forced pre-commit = %q; want Body", got)
	}
}

func TestUninstall(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pre-commit"), Body("pre-commit"), 0o755)
	writeFile(t, filepath.Join(dir, "post-commit"), OutdatedBodies["post-commit"][0], 0o755)
	writeFile(t, filepath.Join(dir, "post-checkout"), "\n", 0o755)
	writeFile(t, filepath.Join(dir, "post-merge"), foreign, 0o755)
	res, err := Uninstall(dir)
	want := map[string]string{
		"pre-commit": ActionRemoved, "post-commit": ActionRemoved,
		"post-checkout": ActionRemoved, "post-merge": ActionLeft,
	}
	if err != nil || !reflect.DeepEqual(actions(res), want) {
		t.Errorf("Uninstall() = %v, %v; want %v", actions(res), err, want)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 || entries[0].Name() != "post-merge" || readFile(t, filepath.Join(dir, "post-merge")) != foreign {
		t.Errorf("after Uninstall dir holds %v; want only the foreign post-merge", entries)
	}
}

// fakeBin returns a directory holding a git-onesis that appends its argv,
// one argument per line, and its stdin to log, then exits with $FAKE_EXIT.
func fakeBin(t *testing.T) (bin, log string) {
	t.Helper()
	bin = t.TempDir()
	log = filepath.Join(t.TempDir(), "calls")
	writeFile(t, filepath.Join(bin, "git-onesis"), "#!/bin/sh\n"+
		"{ echo \"argv:\"; for a; do echo \"$a\"; done; echo \"stdin:\"; cat; } >>"+log+"\n"+
		"exit ${FAKE_EXIT:-0}\n", 0o755)
	return bin, log
}

// basePath is a PATH holding git and sh but no git-onesis.
func basePath(t *testing.T) string {
	t.Helper()
	gitPath, err := exec.LookPath("git")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Dir(gitPath) + ":/usr/bin:/bin"
	for _, d := range filepath.SplitList(path) {
		if _, err := os.Stat(filepath.Join(d, "git-onesis")); err == nil {
			t.Skipf("a real git-onesis is installed in %s", d)
		}
	}
	return path
}

func TestTrampoline(t *testing.T) {
	bin, log := fakeBin(t)
	base := basePath(t)
	withBin := []string{"PATH=" + bin + ":" + base}
	noBin := []string{"PATH=" + base}
	args := map[string][]string{
		"pre-commit": nil, "post-commit": nil, "post-merge": {"0"},
		"post-checkout": {"0000000000000000000000000000000000000000", "abc", "1"},
		"post-rewrite":  {"amend"},
	}
	for _, name := range Names {
		t.Run(name, func(t *testing.T) {
			repo := newRepo(t)
			hooksDir := filepath.Join(repo, ".git", "hooks")
			if _, err := Install(hooksDir, false); err != nil {
				t.Fatal(err)
			}
			hook := filepath.Join(hooksDir, name)
			os.Remove(log)

			// Not opted in: silent no-op, binary or not.
			for _, env := range [][]string{withBin, noBin} {
				out, errOut, code := run(t, repo, env, "x\n", hook, args[name]...)
				if code != 0 || out != "" || errOut != "" {
					t.Errorf("not enabled: exit %d, stdout %q, stderr %q; want 0 and silence", code, out, errOut)
				}
			}
			if _, err := os.Stat(log); err == nil {
				t.Errorf("not enabled, yet git-onesis ran: %q", readFile(t, log))
			}

			runGit(t, repo, "config", "onesis.enabled", "yes")
			out, errOut, code := run(t, repo, append(withBin, "FAKE_EXIT=3"), "old new\n", hook, args[name]...)
			if code != 3 || out != "" || errOut != "" {
				t.Errorf("enabled: exit %d, stdout %q, stderr %q; want exit 3 passed through, silence", code, out, errOut)
			}
			want := "argv:\n" + name + "\n"
			for _, a := range args[name] {
				want += a + "\n"
			}
			want += "stdin:\nold new\n"
			if got := readFile(t, log); got != want {
				t.Errorf("git-onesis got %q; want %q", got, want)
			}

			// Enabled but the binary is missing.
			out, errOut, code = run(t, repo, noBin, "", hook, args[name]...)
			wantCode := 0
			if name == "pre-commit" {
				wantCode = 1
			}
			if code != wantCode || out != "" {
				t.Errorf("missing binary: exit %d, stdout %q; want exit %d", code, out, wantCode)
			}
			for _, s := range []string{name + " hook", "'git-onesis' was not found on your PATH", "onesis.enabled false", hook} {
				if !strings.Contains(errOut, s) {
					t.Errorf("missing-binary message %q lacks %q", errOut, s)
				}
			}
		})
	}
}

func TestManual(t *testing.T) {
	dir := "/srv/hooks"
	m := Manual(dir)
	for _, name := range Names {
		if !strings.Contains(m, "Add the following to '"+dir+"/"+name+"':\n\n\t") {
			t.Errorf("Manual lacks the heading for %s:\n%s", name, m)
		}
	}

	// The pasted lines must work inside someone else's hook without
	// cutting it short.
	bin, log := fakeBin(t)
	repo := newRepo(t)
	runGit(t, repo, "config", "onesis.enabled", "true")
	hook := filepath.Join(t.TempDir(), "pre-commit")
	writeFile(t, hook, "#!/bin/sh\n"+snippet("pre-commit")+"echo after\n", 0o755)
	env := []string{"PATH=" + bin + ":" + basePath(t)}
	out, _, code := run(t, repo, env, "", hook)
	if code != 0 || out != "after\n" || readFile(t, log) != "argv:\npre-commit\nstdin:\n" {
		t.Errorf("merged hook: exit %d, stdout %q, log %q", code, out, readFile(t, log))
	}
	_, _, code = run(t, repo, append(env, "FAKE_EXIT=2"), "", hook)
	if code != 1 {
		t.Errorf("merged pre-commit with failing git-onesis exited %d; want 1", code)
	}
}

// TestGlobalHooksPath installs the hooks for every repository through a
// global core.hooksPath and drives real git commands.
func TestGlobalHooksPath(t *testing.T) {
	bin, log := fakeBin(t)
	base := basePath(t)
	hooksDir := filepath.Join(t.TempDir(), "global-hooks")
	if _, err := Install(hooksDir, false); err != nil {
		t.Fatal(err)
	}
	runGit(t, ".", "config", "--global", "core.hooksPath", hooksDir)
	defer runGit(t, ".", "config", "--global", "--unset", "core.hooksPath")

	repo := newRepo(t)
	os.WriteFile(filepath.Join(repo, "f"), []byte("f"), 0o644)
	runGit(t, repo, "add", "f")
	env := []string{"PATH=" + bin + ":" + base}
	out, errOut, code := run(t, repo, env, "", "git", "commit", "-q", "-m", "one")
	if code != 0 || out != "" || errOut != "" {
		t.Errorf("commit in a repo that did not opt in: exit %d, stdout %q, stderr %q; want 0 and silence", code, out, errOut)
	}
	if _, err := os.Stat(log); err == nil {
		t.Errorf("git-onesis ran in a repo that did not opt in: %q", readFile(t, log))
	}

	runGit(t, repo, "config", "onesis.enabled", "true")
	for _, args := range [][]string{
		{"commit", "-q", "--allow-empty", "-m", "two"},
		{"checkout", "-q", "-b", "side"},
	} {
		if out, errOut, code := run(t, repo, env, "", "git", args...); code != 0 {
			t.Fatalf("git %q: exit %d\n%s%s", args, code, out, errOut)
		}
	}
	head := strings.TrimSpace(runGit(t, repo, "rev-parse", "HEAD"))
	want := "argv:\npre-commit\nstdin:\n" + "argv:\npost-commit\nstdin:\n" +
		"argv:\npost-index-change\n1\n0\nstdin:\n" + "argv:\npost-checkout\n" + head + "\n" + head + "\n1\nstdin:\n"
	if got := readFile(t, log); got != want {
		t.Errorf("opted-in repo: git-onesis calls\n%q\nwant\n%q", got, want)
	}

	// Enabled but missing: the commit is refused, checkout still works.
	out, errOut, code = run(t, repo, []string{"PATH=" + base}, "", "git", "commit", "-q", "--allow-empty", "-m", "three")
	if code == 0 || !strings.Contains(errOut, "refusing to commit") {
		t.Errorf("commit without git-onesis: exit %d, stderr %q; want refusal", code, errOut)
	}
	out, errOut, code = run(t, repo, []string{"PATH=" + base}, "", "git", "checkout", "-q", "main")
	if code != 0 || !strings.Contains(errOut, "post-checkout hook") {
		t.Errorf("checkout without git-onesis: exit %d, stdout %q, stderr %q; want 0 with a warning", code, out, errOut)
	}
}

// TestCheckSysimage: the pre-commit check parses the staged sysimage.conf
// with its staged INCLUDEs, refusing an INCLUDE fan-out (4^15 parses, which
// once hung every node's boot) and a syntax error, naming file and line.
func TestCheckSysimage(t *testing.T) {
	dir := t.TempDir()
	if _, errOut, code := run(t, dir, nil, "", "git", "init", "-q"); code != 0 {
		t.Fatal(errOut)
	}
	im, err := image.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkSysimage(im); err != nil {
		t.Fatalf("an image without etc/sysimage.conf: %v", err)
	}
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, errOut, code := run(t, dir, nil, "", "git", "add", name); code != 0 {
			t.Fatal(errOut)
		}
	}
	write("etc/sysimage.conf", "NODECLASS_RANGE n[1-4] compute\nINCLUDE /etc/sysimage.d/a\n")
	write("etc/sysimage.d/a", "RAMDIR /var/run\n")
	if err := checkSysimage(im); err != nil {
		t.Fatalf("a good configuration: %v", err)
	}
	for i := 0; i < 14; i++ { // with sysimage.conf, 16 files: 4^15 parses
		write(fmt.Sprintf("etc/sysimage.d/f%d", i), strings.Repeat(fmt.Sprintf("INCLUDE /etc/sysimage.d/f%d\n", i+1), 4))
	}
	write("etc/sysimage.d/f14", "PROPERTY leaf\n")
	write("etc/sysimage.conf", strings.Repeat("INCLUDE /etc/sysimage.d/f0\n", 4))
	err = checkSysimage(im)
	if !errors.Is(err, sysimage.ErrTooLarge) || !strings.Contains(err.Error(), "/etc/sysimage.d/f") {
		t.Errorf("an INCLUDE fan-out: %v; want the include limit at a file and line", err)
	}
	// The work tree may be fixed; what is staged is what is checked.
	os.WriteFile(filepath.Join(dir, "etc/sysimage.conf"), []byte("RAMDIR /var/run\n"), 0o644)
	if err := checkSysimage(im); err == nil {
		t.Errorf("the staged fan-out passed because the work tree is fixed")
	}
	write("etc/sysimage.conf", "RAMDIR /var/run\nBOGUS x\n")
	if err := checkSysimage(im); err == nil || !strings.Contains(err.Error(), "/etc/sysimage.conf:2") {
		t.Errorf("an unknown directive: %v; want /etc/sysimage.conf:2", err)
	}
}
