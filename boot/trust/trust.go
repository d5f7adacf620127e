// Package trust decides whether a node may boot a commit: with
// onesis.serve.requireSignature on, only a commit whose signature the real
// git verifies ('git verify-commit': SSH against gpg.ssh.allowedSignersFile,
// GPG against the keyring of the user serve runs as) is handed to a node.
// Serve asks it before every boot script, 'node list' to show what would
// be refused, and 'git onesis audit' for who signed what each node booted.
// It knows nothing of the protocols: a refusal is an *httpboot.Refusal
// that the boot script and the PXELINUX configuration turn into a line on
// the node's console and a retry.
package trust

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/git"
)

// Config keys, read by serve, 'node list' and 'audit'.
const (
	// KeyRequire turns the policy on (a git boolean, default false).
	KeyRequire = "onesis.serve.requireSignature"
	// KeyAllowUnsigned names nodes (shell globs on the node name,
	// multi-valued) that may boot unsigned commits and maintenance work
	// trees while the policy is on: test nodes.
	KeyAllowUnsigned = "onesis.serve.allowUnsigned"
)

// Signature is what git says of a commit's signature.
type Signature struct {
	Commit string `json:"commit"`
	// Status is git's %G? letter: G good, U good but of unknown validity,
	// B bad, X expired signature, Y expired key, R revoked key, E cannot
	// be checked (no key for it), N no signature.
	Status string `json:"status"`
	// Signer is the signer's identity (%GS: the SSH principal from the
	// allowed-signers file, or the GPG user id); Key the key (%GK).
	Signer string `json:"signer,omitempty"`
	Key    string `json:"key,omitempty"`
	// Valid is 'git verify-commit's verdict (which also applies
	// gpg.minTrustLevel).
	Valid bool `json:"valid"`
	// Reason says in one line why the signature is not valid.
	Reason string `json:"reason,omitempty"`
}

// Verifier checks signatures with the real git and remembers verdicts for
// TTL: a boot storm of 500 nodes on one commit costs one check, and a
// change to the allowed signers (a revoked key) counts within TTL.
// Concurrent checks of one commit share one run.
type Verifier struct {
	Repo *git.Repo
	TTL  time.Duration // 0: DefaultTTL
	// Pinned are "key=value" git settings passed with -c to every check:
	// the trust settings as they were when serve started (see Pin), so a
	// later edit of the repository's config cannot swap the trusted keys.
	Pinned []string

	mu    sync.Mutex
	cache map[string]*verdict
}

// DefaultTTL is how long a verdict is reused.
const DefaultTTL = 10 * time.Second

type verdict struct {
	done chan struct{}
	at   time.Time
	sig  Signature
	err  error
}

// maxVerdicts bounds the cache (a site boots a few commits at a time).
const maxVerdicts = 4096

// Check returns commit's signature as git verifies it now (or within TTL).
// The error is for git failing, not for a bad signature.
func (v *Verifier) Check(commit string) (Signature, error) {
	ttl := v.TTL
	if ttl == 0 {
		ttl = DefaultTTL
	}
	v.mu.Lock()
	if v.cache == nil || len(v.cache) >= maxVerdicts {
		v.cache = map[string]*verdict{}
	}
	d := v.cache[commit]
	if d != nil {
		select {
		case <-d.done:
			if time.Since(d.at) > ttl || d.err != nil {
				d = nil
			}
		default: // running: share it
		}
	}
	if d == nil {
		d = &verdict{done: make(chan struct{})}
		v.cache[commit] = d
		v.mu.Unlock()
		d.sig, d.err = verify(v.Repo, v.Pinned, commit)
		d.at = time.Now()
		close(d.done)
		return d.sig, d.err
	}
	v.mu.Unlock()
	<-d.done
	return d.sig, d.err
}

// Verify checks commit's signature with 'git verify-commit' (the verdict)
// and git's %G? placeholders (who signed, and why not).
func Verify(r *git.Repo, commit string) (Signature, error) { return verify(r, nil, commit) }

// withPinned prefixes args with -c for each pinned setting.
func withPinned(pinned []string, args ...string) []string {
	out := make([]string, 0, 2*len(pinned)+len(args))
	for _, kv := range pinned {
		out = append(out, "-c", kv)
	}
	return append(out, args...)
}

func verify(r *git.Repo, pinned []string, commit string) (Signature, error) {
	out, err := r.Run(withPinned(pinned, "show", "-s", "--no-show-signature", "--format=%H%x00%G?%x00%GS%x00%GK", commit, "--")...)
	if err != nil {
		return Signature{}, fmt.Errorf("checking the signature of %s: %w", commit, err)
	}
	f := strings.SplitN(strings.TrimSuffix(string(out), "\n"), "\x00", 4)
	if len(f) != 4 {
		return Signature{}, fmt.Errorf("checking the signature of %s: git printed %q", commit, out)
	}
	sig := Signature{Commit: f[0], Status: f[1], Signer: f[2], Key: f[3]}
	if sig.Status == "N" {
		sig.Reason = "the commit is not signed"
		return sig, nil
	}
	cmd := r.Cmd(withPinned(pinned, "verify-commit", sig.Commit)...)
	msg, err := cmd.CombinedOutput()
	var exit interface{ ExitCode() int }
	switch {
	case err == nil:
		sig.Valid = true
		return sig, nil
	case !errors.As(err, &exit):
		return Signature{}, fmt.Errorf("checking the signature of %s: git verify-commit: %w", commit, err)
	}
	sig.Reason = reason(sig, string(msg))
	return sig, nil
}

// reason explains an invalid signature in one line, from git's status
// letter and, where that says little, git's own message.
func reason(s Signature, gitMsg string) string {
	who := ""
	if s.Signer != "" {
		who = " by " + s.Signer
	} else if s.Key != "" {
		who = " with key " + s.Key
	}
	switch s.Status {
	case "B":
		return "bad signature" + who + ": the commit is not what was signed"
	case "U":
		return "signed" + who + ", a key the site does not trust (not in gpg.ssh.allowedSignersFile, or of unknown validity in the GnuPG keyring)"
	case "X":
		return "the signature" + who + " has expired"
	case "Y":
		return "signed" + who + " with an expired key"
	case "R":
		return "signed" + who + " with a revoked key"
	case "G":
		return "signed" + who + ", but the key's trust is below gpg.minTrustLevel"
	}
	// E: git could not check it. Its own first line says why (no
	// gpg.ssh.allowedSignersFile, a key not in it, no GnuPG key).
	line := firstLine(gitMsg)
	if line == "" {
		return "the signature cannot be checked: no trusted key for it"
	}
	return "the signature cannot be checked: " + line
}

// firstLine returns the first informative line of git's (or ssh-keygen's,
// or gpg's) message.
func firstLine(s string) string {
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		l = strings.TrimPrefix(l, "error: ")
		if l != "" && !strings.HasPrefix(l, "gpg: Signature made") {
			return l
		}
	}
	return ""
}

// Policy is the boot policy: Require on, every node but those matching
// AllowUnsigned boots only commits with a valid signature, and no
// maintenance work tree (uncommitted, so unsigned, content).
type Policy struct {
	Require       bool
	AllowUnsigned []string // node name globs (path.Match)
	Verifier      *Verifier
}

// Load reads the policy from r's git config (KeyRequire, KeyAllowUnsigned).
func Load(r *git.Repo) (*Policy, error) {
	req, err := r.ConfigBool(KeyRequire, false)
	if err != nil {
		return nil, err
	}
	p := &Policy{Require: req, Verifier: &Verifier{Repo: r}}
	out, err := r.Run("config", "--get-all", KeyAllowUnsigned)
	if err == nil {
		for _, l := range strings.Split(string(out), "\n") {
			for _, g := range strings.FieldsFunc(l, func(c rune) bool { return c == ',' || c == ' ' || c == '\t' }) {
				p.AllowUnsigned = append(p.AllowUnsigned, g)
			}
		}
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *Policy) check() error {
	for _, g := range p.AllowUnsigned {
		if _, err := path.Match(g, ""); err != nil {
			return fmt.Errorf("git config %s: %q is not a valid node-name pattern: %w", KeyAllowUnsigned, g, err)
		}
	}
	return nil
}

// Exempt reports whether node may boot unsigned commits.
func (p *Policy) Exempt(node string) bool {
	for _, g := range p.AllowUnsigned {
		if ok, _ := path.Match(g, node); ok {
			return true
		}
	}
	return false
}

// Allow decides whether n may boot r: nil, an *httpboot.Refusal saying
// why not, or an error when the signature could not be checked at all.
// It has httpboot.Config.Allow's signature.
func (p *Policy) Allow(n *inventory.Node, r httpboot.Resolution) error {
	if p == nil || !p.Require || p.Exempt(n.Name) {
		return nil
	}
	if n.Maintenance != "" {
		return &httpboot.Refusal{Commit: r.Commit, Reason: "a maintenance work tree is not a signed commit (" + KeyRequire + " is on; " + KeyAllowUnsigned + " exempts test nodes)"}
	}
	sig, err := p.Verifier.Check(r.Commit)
	if err != nil {
		return err
	}
	if !sig.Valid {
		return &httpboot.Refusal{Commit: r.Commit, Reason: sig.Reason}
	}
	return nil
}

// trustKeys are the settings that decide which signatures git accepts,
// with the value pinned when one is unset: no SSH key is trusted, the
// stock programs are run.
var trustKeys = []struct{ key, unset string }{
	{"gpg.ssh.allowedSignersFile", "/dev/null"},
	{"gpg.ssh.revocationFile", ""},
	{"gpg.ssh.program", "ssh-keygen"},
	{"gpg.x509.program", "gpgsm"},
	{"gpg.minTrustLevel", ""},
}

// Pin fixes the trust settings (allowed signers, revocations, the
// verifying programs, gpg.minTrustLevel) at their values now, for every
// later check: serve calls it at start, so changing what serve trusts
// takes a restart, not just write access to the repository's config.
func (p *Policy) Pin(r *git.Repo) error {
	var pinned []string
	for _, k := range trustKeys {
		v, ok, err := r.Config(k.key)
		if err != nil {
			return err
		}
		switch {
		case ok:
			pinned = append(pinned, k.key+"="+v)
		case k.unset != "":
			pinned = append(pinned, k.key+"="+k.unset)
		}
	}
	// OpenPGP: gpg.openpgp.program, else gpg.program, else gpg.
	prog, _, err := r.Config("gpg.openpgp.program")
	if err == nil && prog == "" {
		prog, _, err = r.Config("gpg.program")
	}
	if err != nil {
		return err
	}
	if prog == "" {
		prog = "gpg"
	}
	p.Verifier.Pinned = append(pinned, "gpg.openpgp.program="+prog)
	return nil
}

// Ready checks at serve's start that git has something to verify with
// when the policy is on: an SSH allowed-signers file that can be read, or
// a GnuPG program. Without either every boot would be refused.
func (p *Policy) Ready(r *git.Repo) error {
	if p == nil || !p.Require {
		return nil
	}
	out, err := r.Run("config", "--type=path", "--get", "gpg.ssh.allowedSignersFile")
	if file := strings.TrimSpace(string(out)); err == nil && file != "" {
		if _, err := os.Stat(file); err != nil {
			return fmt.Errorf("%s is on, but gpg.ssh.allowedSignersFile cannot be read: %w", KeyRequire, err)
		}
		return nil
	}
	prog, _, _ := r.Config("gpg.openpgp.program")
	if prog == "" {
		prog, _, _ = r.Config("gpg.program")
	}
	if prog == "" {
		prog = "gpg"
	}
	if _, err := exec.LookPath(prog); err == nil {
		return nil
	}
	return fmt.Errorf("%s is on, but git has no key to verify signatures with: set gpg.ssh.allowedSignersFile (SSH signatures) or install GnuPG with the site's keys", KeyRequire)
}
