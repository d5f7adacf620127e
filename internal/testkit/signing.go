package testkit

import (
	"os"
	"path/filepath"
	"testing"
)

// SSHKey makes an ed25519 key pair for signing commits (ssh-keygen, from
// openssh-client) and returns the private key's path; its public key is
// beside it with .pub.
func SSHKey(t testing.TB) string {
	t.Helper()
	NeedTool(t, "ssh-keygen", "openssh-client")
	key := filepath.Join(t.TempDir(), "key")
	Sh(t, ".", "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "admin@example.com", "-f", key)
	return key
}

// AllowedSigners writes an allowed-signers file trusting the keys given
// (private key paths; their .pub is read) as principal, and returns its
// path.
func AllowedSigners(t testing.TB, principal string, keys ...string) string {
	t.Helper()
	var signers []byte
	for _, k := range keys {
		pub, err := os.ReadFile(k + ".pub")
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, principal+" "+string(pub)...)
	}
	file := filepath.Join(t.TempDir(), "allowed")
	if err := os.WriteFile(file, signers, 0o644); err != nil {
		t.Fatal(err)
	}
	return file
}

// SSHSigning makes git in dir sign with key (as test@example.com) and
// trust only the keys allowed.
func SSHSigning(t testing.TB, dir, key string, allowed ...string) {
	t.Helper()
	file := AllowedSigners(t, "test@example.com", allowed...)
	for _, kv := range [][2]string{{"gpg.format", "ssh"}, {"user.signingkey", key}, {"gpg.ssh.allowedSignersFile", file}, {"user.email", "test@example.com"}} {
		Sh(t, dir, "git", "config", kv[0], kv[1])
	}
}
