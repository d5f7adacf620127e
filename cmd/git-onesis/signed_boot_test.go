package main

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

// TestServeSignaturePolicy runs the real serve binary with
// onesis.serve.requireSignature on, real git and ssh-keygen: a node boots
// a signed commit; an unsigned commit on its branch is refused with the
// reason in its script, /status, node list, and nothing is pinned; a test
// node exempted by onesis.serve.allowUnsigned boots it; once the commit is
// signed (amended), the refused node's next request boots it; audit then
// shows each node's history with signers, and --check fails for the
// exempt node that runs an unsigned commit. (The same flow with real
// firmware and a kernel is in TestE2ESignedBoot.)
func TestServeSignaturePolicy(t *testing.T) {
	img := t.TempDir()
	must(t, img, "git", "init", "-q", "-b", "main")
	key := testkit.SSHKey(t)
	testkit.SSHSigning(t, img, key, key)
	writeConf(t, img, "boot/vmlinuz-6.1.0-10-amd64", "KERNEL")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-q", "-S", "-m", "signed image")
	signed := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	must(t, img, "git", "onesis", "node", "add", "n1", "--mac", "52:54:00:00:00:01", "--ip", "10.77.0.11")
	must(t, img, "git", "onesis", "node", "add", "test-2", "--mac", "52:54:00:00:00:02", "--ip", "10.77.0.12")
	must(t, img, "git", "config", "onesis.serve.requireSignature", "true")
	must(t, img, "git", "config", "onesis.serve.allowUnsigned", "test-*")

	s := startServe(t, img)
	if code, body := bootScript(t, s.base, "52:54:00:00:00:01"); code != 200 || !strings.Contains(body, "onesis.commit="+signed) {
		t.Fatalf("signed commit: %d\n%s\n%s", code, body, s.stderr.String())
	}

	writeConf(t, img, "etc/motd", "backdoor")
	must(t, img, "git", "add", "-A")
	must(t, img, "git", "commit", "-q", "--no-gpg-sign", "-m", "unsigned change")
	unsigned := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	code, body := bootScript(t, s.base, "52:54:00:00:00:01")
	if code != 200 || !strings.Contains(body, "echo git-onesis: n1 will not boot commit "+unsigned[:12]+": the commit is not signed") ||
		!strings.Contains(body, "chain --replace --autofree") || strings.Contains(body, "kernel ") {
		t.Errorf("unsigned commit: %d\n%s", code, body)
	}
	if got := strings.TrimSpace(must(t, img, "git", "rev-parse", "refs/onesis/booted/n1")); got != signed {
		t.Errorf("a refused commit was pinned: booted ref %s, want %s", got, signed)
	}
	var st struct {
		Nodes []struct {
			Name, Refused string
			RefusedReason string `json:"refused_reason"`
		} `json:"nodes"`
	}
	getJSON(t, s.base+"/status", &st)
	found := false
	for _, n := range st.Nodes {
		if n.Name == "n1" {
			found = n.Refused == unsigned && strings.Contains(n.RefusedReason, "not signed")
		}
	}
	if !found {
		t.Errorf("/status does not show n1 refused: %+v", st.Nodes)
	}
	if m := httpGet(t, s.base+"/metrics"); !strings.Contains(m, "onesis_serve_nodes_refused 1") {
		t.Errorf("/metrics:\n%s", m)
	}
	var nodes []struct{ Name, Commit, Refused string }
	if err := json.Unmarshal([]byte(must(t, img, "git", "onesis", "node", "list", "--json")), &nodes); err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if want := n.Name == "n1"; (n.Refused != "") != want || n.Commit != unsigned {
			t.Errorf("node list: %+v (refused expected: %v)", n, want)
		}
	}
	if !strings.Contains(must(t, img, "git", "onesis", "node", "list"), "REFUSED "+unsigned[:12]+": the commit is not signed") {
		t.Error("node list's table does not say n1 is refused")
	}
	// The exempt test node boots it.
	if code, body := bootScript(t, s.base, "52:54:00:00:00:02"); code != 200 || !strings.Contains(body, "onesis.commit="+unsigned) {
		t.Errorf("exempt node: %d\n%s", code, body)
	}

	// Signing the commit lets n1 boot it at its next try.
	must(t, img, "git", "commit", "-q", "--amend", "-S", "--no-edit")
	resigned := strings.TrimSpace(must(t, img, "git", "rev-parse", "HEAD"))
	if code, body := bootScript(t, s.base, "52:54:00:00:00:01"); code != 200 || !strings.Contains(body, "onesis.commit="+resigned) {
		t.Errorf("after signing: %d\n%s", code, body)
	}
	if strings.Contains(must(t, img, "git", "onesis", "node", "list", "n1"), "REFUSED") {
		t.Error("node list still shows n1 refused after signing")
	}

	var audit []struct {
		Node, Commit, From string
		Time               time.Time
		Current            bool
		Signature          struct {
			Valid          bool
			Status, Signer string
		}
	}
	if err := json.Unmarshal([]byte(must(t, img, "git", "onesis", "audit", "--json")), &audit); err != nil {
		t.Fatal(err)
	}
	type row struct {
		node, commit string
		valid        bool
		current      bool
	}
	want := []row{{"n1", signed, true, false}, {"n1", resigned, true, true}, {"test-2", unsigned, false, true}}
	if len(audit) != len(want) {
		t.Fatalf("audit: %+v, want %d entries", audit, len(want))
	}
	for i, w := range want {
		a := audit[i]
		if a.Node != w.node || a.Commit != w.commit || a.Signature.Valid != w.valid || a.Current != w.current || a.Time.IsZero() || a.From != "branch main" {
			t.Errorf("audit entry %d: %+v, want %+v", i, a, w)
		}
		if w.valid && a.Signature.Signer != "test@example.com" {
			t.Errorf("audit entry %d: signer %q", i, a.Signature.Signer)
		}
	}
	if r := onesis(t, img, "audit", "--check", "n1"); r.code != 0 {
		t.Errorf("audit --check n1: exit %d\n%s%s", r.code, r.out, r.err)
	}
	if r := onesis(t, img, "audit", "--check"); r.code != 1 || !strings.Contains(r.err, "1 node(s) run a commit without a valid signature") {
		t.Errorf("audit --check with test-2 on an unsigned commit: exit %d\n%s", r.code, r.err)
	}
	if r := onesis(t, img, "audit", "nosuch/node"); r.code != exitFatal {
		t.Errorf("audit of a bad node name: exit %d", r.code)
	}
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(httpGet(t, url)), v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
