package trust

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/testkit"
)

func TestMain(m *testing.M) { os.Exit(testkit.HermeticGit(m)) }

// signedRepo makes a repository whose git signs with key and trusts only
// the keys in allowed, with one signed commit (HEAD~1 after the second)
// and one unsigned commit on top. It returns the repo and both commits.
func signedRepo(t *testing.T, key string, allowed ...string) (*git.Repo, string, string) {
	t.Helper()
	dir := testkit.Repo(t, map[string]string{"a": "1"})
	testkit.SSHSigning(t, dir, key, allowed...)
	testkit.WriteFile(t, dir, "a", "2")
	testkit.Sh(t, dir, "git", "commit", "-q", "-S", "-am", "signed")
	signed := testkit.Sh(t, dir, "git", "rev-parse", "HEAD")
	testkit.WriteFile(t, dir, "a", "3")
	testkit.Sh(t, dir, "git", "commit", "-q", "-am", "unsigned")
	unsigned := testkit.Sh(t, dir, "git", "rev-parse", "HEAD")
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	return r, signed, unsigned
}

// TestVerify checks git's verdicts as Verify reports them, with real git
// and ssh-keygen: a good signature names its signer, an unsigned commit
// and a commit signed by a key outside the allowed signers are not valid
// and say why.
func TestVerify(t *testing.T) {
	key, stranger := testkit.SSHKey(t), testkit.SSHKey(t)
	r, signed, unsigned := signedRepo(t, key, key)
	for _, tc := range []struct {
		name, commit string
		valid        bool
		status       string
		reason       string
	}{
		{"signed by an allowed key", signed, true, "G", ""},
		{"unsigned", unsigned, false, "N", "not signed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sig, err := Verify(r, tc.commit)
			if err != nil {
				t.Fatal(err)
			}
			if sig.Valid != tc.valid || sig.Status != tc.status || !strings.Contains(sig.Reason, tc.reason) {
				t.Errorf("got %+v, want valid=%v status %s reason containing %q", sig, tc.valid, tc.status, tc.reason)
			}
			if tc.valid && sig.Signer != "test@example.com" {
				t.Errorf("signer %q, want the allowed-signers principal test@example.com", sig.Signer)
			}
		})
	}
	t.Run("signed by a key not allowed", func(t *testing.T) {
		testkit.Sh(t, r.Top, "git", "config", "user.signingkey", stranger)
		testkit.WriteFile(t, r.Top, "a", "4")
		testkit.Sh(t, r.Top, "git", "commit", "-q", "-S", "-am", "stranger")
		sig, err := Verify(r, testkit.Sh(t, r.Top, "git", "rev-parse", "HEAD"))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%+v", sig)
		if sig.Valid || sig.Reason == "" || sig.Status == "G" {
			t.Errorf("a stranger's signature: %+v, want invalid with a reason", sig)
		}
	})
	t.Run("not a commit", func(t *testing.T) {
		if _, err := Verify(r, strings.Repeat("0", 40)); err == nil {
			t.Error("no error for a missing commit")
		}
	})
}

// TestPolicyAllow is the boot decision, table-driven: off, on, an exempt
// node, a maintenance node.
func TestPolicyAllow(t *testing.T) {
	key := testkit.SSHKey(t)
	r, signed, unsigned := signedRepo(t, key, key)
	testkit.Sh(t, r.Top, "git", "config", KeyAllowUnsigned, "test-*")
	testkit.Sh(t, r.Top, "git", "config", "--add", KeyAllowUnsigned, "n9")
	p, err := Load(r)
	if err != nil {
		t.Fatal(err)
	}
	if p.Require {
		t.Fatal("the policy is on by default")
	}
	off := *p
	p.Require = true
	for _, tc := range []struct {
		name   string
		pol    *Policy
		node   inventory.Node
		commit string
		refuse string // "" to boot
	}{
		{"off: unsigned boots", &off, inventory.Node{Name: "n1"}, unsigned, ""},
		{"on: signed boots", p, inventory.Node{Name: "n1"}, signed, ""},
		{"on: unsigned refused", p, inventory.Node{Name: "n1"}, unsigned, "not signed"},
		{"on: exempt by glob", p, inventory.Node{Name: "test-3"}, unsigned, ""},
		{"on: exempt by name (second value)", p, inventory.Node{Name: "n9"}, unsigned, ""},
		{"on: maintenance refused", p, inventory.Node{Name: "n1", Maintenance: "/srv/wt"}, signed, "maintenance work tree"},
		{"on: exempt maintenance", p, inventory.Node{Name: "test-1", Maintenance: "/srv/wt"}, signed, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.pol.Allow(&tc.node, httpboot.Resolution{Commit: tc.commit})
			var ref *httpboot.Refusal
			switch {
			case tc.refuse == "" && err != nil:
				t.Errorf("refused: %v", err)
			case tc.refuse != "" && !errors.As(err, &ref):
				t.Errorf("got %v, want a refusal", err)
			case tc.refuse != "" && (!strings.Contains(ref.Reason, tc.refuse) || ref.Commit != tc.commit):
				t.Errorf("refusal %+v, want commit %s and a reason containing %q", ref, tc.commit, tc.refuse)
			}
		})
	}
	testkit.Sh(t, r.Top, "git", "config", "--add", KeyAllowUnsigned, "[")
	if _, err := Load(r); err == nil || !strings.Contains(err.Error(), KeyAllowUnsigned) {
		t.Errorf("a bad pattern: %v, want an error naming %s", err, KeyAllowUnsigned)
	}
}

// TestPinnedTrust: once serve pinned the trust settings, pointing the
// repository's config at an allowed-signers file that trusts an intruder's
// key does not make the intruder's commit bootable; a check without the
// pin (what the repository says now) would accept it.
func TestPinnedTrust(t *testing.T) {
	key, intruder := testkit.SSHKey(t), testkit.SSHKey(t)
	r, _, _ := signedRepo(t, key, key)
	p, err := Load(r)
	if err != nil {
		t.Fatal(err)
	}
	p.Require = true
	if err := p.Ready(r); err != nil {
		t.Fatal(err)
	}
	if err := p.Pin(r); err != nil {
		t.Fatal(err)
	}
	// The intruder commits with their own key and trusts it in the config.
	testkit.Sh(t, r.Top, "git", "config", "user.signingkey", intruder)
	testkit.Sh(t, r.Top, "git", "config", "gpg.ssh.allowedSignersFile", testkit.AllowedSigners(t, "test@example.com", intruder))
	testkit.WriteFile(t, r.Top, "a", "evil")
	testkit.Sh(t, r.Top, "git", "commit", "-q", "-S", "-am", "backdoor")
	evil := testkit.Sh(t, r.Top, "git", "rev-parse", "HEAD")
	if sig, err := Verify(r, evil); err != nil || !sig.Valid {
		t.Fatalf("unpinned, the edited config trusts the intruder: %+v %v (the test is broken otherwise)", sig, err)
	}
	err = p.Allow(&inventory.Node{Name: "n1"}, httpboot.Resolution{Commit: evil})
	var ref *httpboot.Refusal
	if !errors.As(err, &ref) {
		t.Fatalf("the intruder's commit: %v, want a refusal under the pinned trust", err)
	}
}

// TestVerifierShares: concurrent checks of one commit share one run, and
// the verdict is reused within TTL.
func TestVerifierShares(t *testing.T) {
	key := testkit.SSHKey(t)
	r, signed, _ := signedRepo(t, key, key)
	v := &Verifier{Repo: r}
	var wg sync.WaitGroup
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if sig, err := v.Check(signed); err != nil || !sig.Valid {
				t.Errorf("%+v %v", sig, err)
			}
		}()
	}
	wg.Wait()
	if len(v.cache) != 1 {
		t.Errorf("%d verdicts cached, want 1", len(v.cache))
	}
}

// TestReady: the policy on without any key to verify with is refused at
// serve's start.
func TestReady(t *testing.T) {
	dir := testkit.Repo(t, map[string]string{"a": "1"})
	r, err := git.Discover(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &Policy{Require: true, Verifier: &Verifier{Repo: r}}
	t.Setenv("PATH", t.TempDir()+":"+os.Getenv("PATH")) // gpg may be installed
	testkit.Sh(t, dir, "git", "config", "gpg.program", "/nonexistent/gpg")
	if err := p.Ready(r); err == nil || !strings.Contains(err.Error(), "allowedSignersFile") {
		t.Errorf("no key: %v, want advice naming gpg.ssh.allowedSignersFile", err)
	}
	testkit.Sh(t, dir, "git", "config", "gpg.ssh.allowedSignersFile", "/nonexistent/allowed_signers")
	if err := p.Ready(r); err == nil || !strings.Contains(err.Error(), "cannot be read") {
		t.Errorf("a missing allowed-signers file: %v, want an error", err)
	}
	testkit.Sh(t, dir, "git", "config", "gpg.ssh.allowedSignersFile", testkit.AllowedSigners(t, "ops@example.com"))
	if err := p.Ready(r); err != nil {
		t.Errorf("with an allowed-signers file: %v", err)
	}
}
