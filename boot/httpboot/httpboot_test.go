package httpboot

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/internal/testkit"
)

const (
	c1 = "a111111111111111111111111111111111111111"
	c2 = "2222222222222222222222222222222222222222"
)

// fakeResolver stands in for serve's git-backed resolver (tested in
// boot/serve with real git); here only the HTTP behaviour is under test.
type fakeResolver map[string]Resolution

func (f fakeResolver) Resolve(n *inventory.Node) (Resolution, error) {
	r, ok := f[n.Name]
	if !ok {
		return Resolution{}, errors.New("secret server path /srv/x does not resolve")
	}
	return r, nil
}

// memArtifacts is an in-memory stand-in for the git-backed Artifacts
// (tested in boot/serve); it serves fixed bytes per commit.
type memArtifacts map[string][]byte

func (m memArtifacts) get(commit, what string) (*Blob, error) {
	b, ok := m[commit+"/"+what]
	if !ok {
		return nil, ErrNotFound
	}
	sum := sha256.Sum256(b)
	return &Blob{Content: nopCloser{bytes.NewReader(b)}, Size: int64(len(b)), Hash: hex.EncodeToString(sum[:]), ModTime: time.Unix(1700000000, 0)}, nil
}
func (m memArtifacts) Kernel(_ context.Context, c string) (*Blob, error) { return m.get(c, "kernel") }
func (m memArtifacts) Initrd(_ context.Context, c string) (*Blob, error) { return m.get(c, "initrd") }

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func testHandler(t *testing.T) (*Handler, *Status, map[string]string) {
	t.Helper()
	inv, err := inventory.Parse("nodes", []byte(
		"node n1 mac=52:54:00:00:00:01 ip=10.77.0.11 args=\"quiet\"\n"+
			"node n2 mac=52:54:00:00:00:02 ip=10.77.0.12 maintenance=/srv/update\n"+
			"node n3 mac=52:54:00:00:00:03 ip=10.77.0.13\n"))
	if err != nil {
		t.Fatal(err)
	}
	booted := map[string]string{}
	st := NewStatus()
	h, err := New(Config{
		BaseURL:    "http://10.77.0.1:8080",
		NFSServer:  netip.MustParseAddr("10.77.0.1"),
		NFSOptions: "port=2049,mountport=2049,vers=3,proto=tcp,nolock",
		Console:    "ttyS0",
		Inventory:  func() *inventory.Inventory { return inv },
		Resolver:   fakeResolver{"n1": {c1, "node ref testing"}, "n2": {c2, "worktree /srv/update"}},
		Artifacts:  memArtifacts{c1 + "/kernel": []byte("KERNEL-ONE-0123456789"), c1 + "/initrd": []byte("INITRD")},
		Booted:     func(node string, r Resolution) error { booted[node] = r.Commit; return nil },
		Servable:   func(c string) bool { return c == c1 || c == c2 },
		Status:     st,
	})
	if err != nil {
		t.Fatal(err)
	}
	return h, st, booted
}

func get(h http.Handler, path string, hdr ...string) *httptest.ResponseRecorder {
	return getFrom(h, "10.77.0.11", path, hdr...)
}

// getFrom sends the request from address from (a node's, the server's, a
// stranger's).
func getFrom(h http.Handler, from, path string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("GET", path, nil)
	req.RemoteAddr = from + ":40000"
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func TestScript(t *testing.T) {
	h, st, booted := testHandler(t)
	w := get(h, "/boot/52-54-00-00-00-01.ipxe")
	want := "#!ipxe\n" +
		"# git-onesis: node n1 boots commit " + c1 + "\n" +
		"echo git-onesis: booting n1 on commit a11111111111\n" +
		"kernel http://10.77.0.1:8080/c/" + c1 + "/kernel initrd=initrd ip=dhcp BOOTIF=01-52-54-00-00-00-01 " +
		"nfsroot=10.77.0.1:/c/" + c1 + ",port=2049,mountport=2049,vers=3,proto=tcp,nolock ro onesis.commit=" + c1 +
		" onesis.node=n1 hostname=n1 console=ttyS0 quiet\n" +
		"initrd --name initrd http://10.77.0.1:8080/c/" + c1 + "/initrd\n" +
		"boot\n"
	if w.Code != 200 || w.Body.String() != want {
		t.Errorf("script: %d\n%s\nwant:\n%s", w.Code, w.Body, want)
	}
	if strings.Contains(w.Body.String(), "autoboot") || strings.Contains(w.Body.String(), "dhcp\n") {
		t.Error("the script must not reconfigure the interface")
	}
	if booted["n1"] != c1 || st.Counter("http", "script") != 1 {
		t.Errorf("booted=%v counter=%d", booted, st.Counter("http", "script"))
	}
	// A maintenance node mounts its work tree read-write.
	w = getFrom(h, "10.77.0.12", "/boot/52:54:00:00:00:02.ipxe")
	if w.Code != 200 || !strings.Contains(w.Body.String(), "nfsroot=10.77.0.1:/w/n2,port=2049,mountport=2049,vers=3,proto=tcp,nolock rw onesis.commit="+c2) {
		t.Errorf("maintenance script: %d\n%s", w.Code, w.Body)
	}
}

func TestScriptRefusals(t *testing.T) {
	h, st, booted := testHandler(t)
	for _, tc := range []struct {
		path string
		code int
	}{
		{"/boot/52-54-00-00-00-99.ipxe", 404},                       // unknown MAC
		{"/boot/52-54-00-00-00-01.txt", 404},                        // not a script name
		{"/boot/../../etc/shadow", 404},                             // cleaned by the mux, then no route
		{"/boot/zz-54-00-00-00-01.ipxe", 404},                       // not a MAC
		{"/boot/52-54-00-00-00-02.ipxe", 403},                       // n2's script asked by n1: no pin
		{"/boot/52-54-00-00-00-03.ipxe", 503},                       // resolver fails (asked by the server)
		{"/c/" + c1 + "/vmlinuz", 404},                              // not an artifact name
		{"/c/" + strings.ToUpper(c1) + "/kernel", 404},              // not lower-case hex
		{"/c/3333333333333333333333333333333333333333/kernel", 404}, // not pinned
		{"/c/" + c2 + "/kernel", 404},                               // pinned, but no kernel
		{"/c/" + c1[:39] + "/kernel", 404},
	} {
		from := "10.77.0.11"
		if strings.Contains(tc.path, "00-03.ipxe") {
			from = "10.77.0.1" // the server itself may ask for any node
		}
		w := getFrom(h, from, tc.path)
		body := w.Body.String()
		if w.Code != tc.code || strings.Contains(body, "/srv") || len(body) > 40 {
			t.Errorf("GET %s: %d %q; want %d with a generic body", tc.path, w.Code, body, tc.code)
		}
	}
	if len(booted) != 0 {
		t.Errorf("a refused request recorded a boot: %v", booted)
	}
	if st.Counter("http", "unknown") != 1 || st.Counter("http", "error") != 2 || st.Counter("http", "refused") != 1 {
		t.Errorf("counters: unknown=%d error=%d refused=%d", st.Counter("http", "unknown"), st.Counter("http", "error"), st.Counter("http", "refused"))
	}
	// A stranger on the LAN cannot fetch (and so re-pin) any node's script;
	// loopback (an admin on the server) can.
	if w := getFrom(h, "10.77.0.200", "/boot/52-54-00-00-00-01.ipxe"); w.Code != 403 || len(booted) != 0 {
		t.Errorf("stranger: %d, booted %v", w.Code, booted)
	}
	if w := getFrom(h, "127.0.0.1", "/boot/52-54-00-00-00-01.ipxe"); w.Code != 200 || booted["n1"] != c1 {
		t.Errorf("loopback: %d, booted %v", w.Code, booted)
	}
}

func TestArtifacts(t *testing.T) {
	h, _, _ := testHandler(t)
	w := get(h, "/c/"+c1+"/kernel")
	sum := sha256.Sum256([]byte("KERNEL-ONE-0123456789"))
	etag := `"` + hex.EncodeToString(sum[:]) + `"`
	if w.Code != 200 || w.Body.String() != "KERNEL-ONE-0123456789" || w.Header().Get("ETag") != etag ||
		w.Header().Get("Content-Length") != "21" || !strings.Contains(w.Header().Get("Cache-Control"), "immutable") {
		t.Errorf("kernel: %d %q %v", w.Code, w.Body, w.Header())
	}
	if w := get(h, "/c/"+c1+"/kernel", "If-None-Match", etag); w.Code != 304 || w.Body.Len() != 0 {
		t.Errorf("If-None-Match: %d", w.Code)
	}
	if w := get(h, "/c/"+c1+"/kernel", "Range", "bytes=7-9"); w.Code != 206 || w.Body.String() != "ONE" {
		t.Errorf("Range: %d %q", w.Code, w.Body)
	}
	if w := get(h, "/c/"+c1+"/initrd"); w.Code != 200 || w.Body.String() != "INITRD" {
		t.Errorf("initrd: %d %q", w.Code, w.Body)
	}
}

func TestStatusAndMetrics(t *testing.T) {
	h, st, _ := testHandler(t)
	st.Record(Event{Service: "dhcp", Outcome: "ack", Node: "n1", MAC: net.HardwareAddr{0x52, 0x54, 0, 0, 0, 1}, Stage: "dhcp"})
	get(h, "/boot/52-54-00-00-00-01.ipxe")
	get(h, "/c/"+c1+"/kernel") // from 10.77.0.11, which is n1
	w := get(h, "/status")
	var doc statusDoc
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Nodes) != 3 {
		t.Fatalf("status lists %d nodes, want all 3: %s", len(doc.Nodes), w.Body)
	}
	n1 := doc.Nodes[0]
	if n1.Name != "n1" || n1.Commit != c1 || n1.Stage != "kernel" || n1.DHCP != "ack" || n1.LastDHCP.IsZero() ||
		n1.LastScript.IsZero() || n1.From != "node ref testing" || len(n1.MACs) != 1 {
		t.Errorf("n1 status: %+v", n1)
	}
	if doc.Nodes[2].Stage != "" {
		t.Errorf("n3 never booted: %+v", doc.Nodes[2])
	}
	m := get(h, "/metrics").Body.String()
	for _, want := range []string{
		"# TYPE onesis_serve_events_total counter\n",
		`onesis_serve_events_total{service="dhcp",outcome="ack"} 1` + "\n",
		`onesis_serve_events_total{service="http",outcome="kernel"} 1` + "\n",
		`onesis_serve_events_total{service="http",outcome="script"} 1` + "\n",
		"onesis_serve_nodes 3\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
}

// TestRealCurl drives the handler over a real listener on 127.0.0.1 with
// curl, the way a node's firmware and an admin would.
func TestRealCurl(t *testing.T) {
	testkit.NeedTool(t, "curl", "curl")
	h, _, _ := testHandler(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	base := "http://" + l.Addr().String()
	curl := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("curl", append([]string{"-sS", "--max-time", "10"}, args...)...).Output()
		if err != nil {
			t.Fatalf("curl %v: %v", args, err)
		}
		return string(out)
	}
	if s := curl(base + "/boot/52-54-00-00-00-01.ipxe"); !strings.HasPrefix(s, "#!ipxe\n") || !strings.Contains(s, "onesis.commit="+c1) {
		t.Errorf("script over curl: %q", s)
	}
	if code := curl("-o", "/dev/null", "-w", "%{http_code}", base+"/boot/52-54-00-00-00-99.ipxe"); code != "404" {
		t.Errorf("unknown MAC: %s", code)
	}
	hdr := curl("-D", "-", "-o", "/dev/null", base+"/c/"+c1+"/kernel")
	etag := ""
	for _, line := range strings.Split(hdr, "\r\n") {
		if v, ok := strings.CutPrefix(strings.ToLower(line), "etag: "); ok {
			etag = v
		}
	}
	if !strings.Contains(strings.ToLower(hdr), "content-length: 21") || etag == "" {
		t.Fatalf("kernel headers: %s", hdr)
	}
	if code := curl("-o", "/dev/null", "-w", "%{http_code}", "-H", "If-None-Match: "+etag, base+"/c/"+c1+"/kernel"); code != "304" {
		t.Errorf("conditional GET: %s", code)
	}
	if s := curl("-r", "0-5", base+"/c/"+c1+"/kernel"); s != "KERNEL" {
		t.Errorf("range: %q", s)
	}
	// curl sends the path as given with --path-as-is; the server must still refuse.
	if code := curl("--path-as-is", "-o", "/dev/null", "-w", "%{http_code}", base+"/c/"+c1+"/../../../etc/passwd"); code == "200" {
		t.Errorf("traversal answered 200")
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(curl(base+"/status")), &doc); err != nil || len(doc.Nodes) != 3 {
		t.Errorf("status over curl: %v", err)
	}
	if m := curl(base + "/metrics"); !strings.Contains(m, "onesis_serve_events_total") {
		t.Errorf("metrics over curl: %q", m)
	}
	_ = io.Discard
}

// TestCmdlineNFS: where nfsroot= points for serve's own NFS server, a
// site's kernel NFS server fed by 'git onesis exports', and another host.
func TestCmdlineNFS(t *testing.T) {
	mac, _ := net.ParseMAC("52:54:00:00:00:01")
	node := &inventory.Node{Name: "n1", IP: netip.MustParseAddr("10.77.0.11")}
	maint := &inventory.Node{Name: "m1", IP: netip.MustParseAddr("10.77.0.12"), Maintenance: "/srv/wt/m1"}
	srv := netip.MustParseAddr("10.77.0.1")
	for _, tc := range []struct {
		name string
		cfg  Config
		n    *inventory.Node
		want string
	}{
		{"embedded", Config{NFSServer: srv}, node, "nfsroot=10.77.0.1:/c/" + c1 + " ro "},
		{"embedded maintenance", Config{NFSServer: srv}, maint, "nfsroot=10.77.0.1:/w/m1 rw "},
		{"knfsd", Config{NFSServer: srv, NFSExportDir: "/srv/onesis", NFSOptions: "vers=3"}, node, "nfsroot=10.77.0.1:/srv/onesis/c/" + c1 + ",vers=3 ro "},
		{"knfsd maintenance", Config{NFSServer: srv, NFSExportDir: "/srv/onesis"}, maint, "nfsroot=10.77.0.1:/srv/wt/m1 rw "},
		{"other host", Config{NFSServer: srv, NFSHost: netip.MustParseAddr("10.77.0.2"), NFSExportDir: "/x"}, node, "nfsroot=10.77.0.2:/x/c/" + c1 + " ro "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Cmdline(tc.cfg, tc.n, mac, c1, true)
			if !strings.Contains(got, tc.want) {
				t.Errorf("Cmdline = %q, want it to contain %q", got, tc.want)
			}
		})
	}
}

// TestStatusKeepsNewest: an event recorded after a newer one for the same
// node (DHCP's parallel workers can record a DISCOVER's OFFER after the
// ACK that followed it) is counted but does not roll the node back.
func TestStatusKeepsNewest(t *testing.T) {
	st := NewStatus()
	t0 := time.Now()
	st.Record(Event{Time: t0.Add(time.Millisecond), Service: "dhcp", Outcome: "ack", Node: "n1", Stage: "dhcp", Detail: "REQUEST"})
	st.Record(Event{Time: t0, Service: "dhcp", Outcome: "offer", Node: "n1", Detail: "DISCOVER"})
	var got *NodeStatus
	for _, ns := range st.Snapshot(nil) {
		if ns.Name == "n1" {
			n := ns
			got = &n
		}
	}
	if got == nil || got.DHCP != "ack" || got.Stage != "dhcp" || got.Detail != "REQUEST" {
		t.Errorf("after a late OFFER: %+v", got)
	}
	st.Record(Event{Time: t0.Add(time.Second), Service: "dhcp", Outcome: "offer", Node: "n1", Detail: "DISCOVER"})
	for _, ns := range st.Snapshot(nil) {
		if ns.Name == "n1" && ns.DHCP != "offer" {
			t.Errorf("a newer OFFER (the next boot) is not recorded: %+v", ns)
		}
	}
	if n := st.Counter("dhcp", "offer"); n != 2 {
		t.Errorf("offers counted: %d, want 2", n)
	}
}

// TestPolicyRefusal: a node the policy refuses gets a script that prints
// the reason and fetches the script again after RetryAfter; nothing is
// pinned; /status and /metrics name the node, the commit and the reason;
// once the policy allows the commit, the node's next request boots it.
func TestPolicyRefusal(t *testing.T) {
	h, st, booted := testHandler(t)
	allow := false
	h.cfg.Allow = func(n *inventory.Node, r Resolution) error {
		if allow {
			return nil
		}
		return &Refusal{Commit: r.Commit, Reason: "the commit is not signed ${evil}"}
	}
	h.cfg.RetryAfter = 7 * time.Second
	w := get(h, "/boot/52-54-00-00-00-01.ipxe")
	body := w.Body.String()
	for _, want := range []string{
		"#!ipxe\n",
		"echo git-onesis: n1 will not boot commit " + c1[:12] + ": the commit is not signed ?{evil}\n",
		"sleep 7 || prompt --timeout 7000 git-onesis: retrying ||\n",
		"chain --replace --autofree http://10.77.0.1:8080/boot/52-54-00-00-00-01.ipxe\n",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("refusal script lacks %q:\n%s", want, body)
		}
	}
	if w.Code != 200 || strings.Contains(body, "kernel ") || len(booted) != 0 {
		t.Errorf("refused: code %d, booted %v, script:\n%s", w.Code, booted, body)
	}
	ns := st.Snapshot(nil)
	if len(ns) != 1 || ns[0].Refused != c1 || !strings.Contains(ns[0].RefusedReason, "not signed") || ns[0].Stage != StageRefused {
		t.Errorf("status after a refusal: %+v", ns)
	}
	var m strings.Builder
	st.WriteMetrics(&m, 3)
	for _, want := range []string{`onesis_serve_events_total{service="http",outcome="refused_policy"} 1`, "onesis_serve_nodes_refused 1"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("metrics lack %q:\n%s", want, m.String())
		}
	}
	cfg := PXELinuxConfig(h.cfg, h.cfg.Inventory().ByName("n1"), nil, c1)
	if strings.Contains(RefusedPXELinuxConfig(h.cfg, h.cfg.Inventory().ByName("n1"), &Refusal{Commit: c1, Reason: "x"}), "KERNEL") || !strings.Contains(cfg, "KERNEL") {
		t.Error("the refused PXELINUX configuration names a kernel")
	}
	// Signed meanwhile: the retry boots.
	allow = true
	w = get(h, "/boot/52-54-00-00-00-01.ipxe")
	if !strings.Contains(w.Body.String(), "kernel http://10.77.0.1:8080/c/"+c1+"/kernel") || booted["n1"] != c1 {
		t.Errorf("allowed: booted %v, script:\n%s", booted, w.Body.String())
	}
	if ns := st.Snapshot(nil); ns[0].Refused != "" || ns[0].Commit != c1 {
		t.Errorf("status after the boot: %+v", ns[0])
	}
	// A policy that cannot decide fails the script (the node retries as
	// for any server error), and pins nothing.
	h.cfg.Allow = func(*inventory.Node, Resolution) error { return errors.New("git failed") }
	delete(booted, "n1")
	if w := get(h, "/boot/52-54-00-00-00-01.ipxe"); w.Code != 503 || len(booted) != 0 {
		t.Errorf("undecided policy: code %d, booted %v", w.Code, booted)
	}
}
