// Package httpboot serves the HTTP side of network boot: the per-node iPXE
// script that decides which commit a node boots, the kernel and initramfs
// of a commit (content-addressed and immutable), /status and /metrics.
//
// The script is the one place where a node's ref is resolved to a commit.
// The commit is then carried in every later URL and in the kernel command
// line, so the node stays on it until it reboots, whatever its branch does.
package httpboot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/onesis/git-onesis/boot/cmdline"
	"github.com/onesis/git-onesis/boot/inventory"
)

// Resolution is the outcome of resolving what a node boots.
type Resolution struct {
	Commit string // full object name of the commit
	// From says where the commit came from, for logs and status:
	// "node ref testing", "serve --ref prod", "HEAD (main)",
	// "worktree /srv/update".
	From string
}

// Resolver decides the commit a node boots now: the node's ref, else serve
// --ref, else the branch checked out in the repository. A maintenance node
// resolves to its work tree's HEAD commit (for the kernel and initrd).
type Resolver interface {
	Resolve(n *inventory.Node) (Resolution, error)
}

// Refusal is a boot policy's reason not to hand a node a commit (see
// Config.Allow): the node is told why on its console and retries later.
type Refusal struct {
	Commit string // the commit refused
	Reason string // one line, for the console, /status and the log
}

func (e *Refusal) Error() string {
	return fmt.Sprintf("commit %.12s refused: %s", e.Commit, e.Reason)
}

// DefaultRetryAfter is how long a refused node waits before asking again.
const DefaultRetryAfter = 30 * time.Second

// Blob is one servable artifact.
type Blob struct {
	Content io.ReadSeekCloser
	Size    int64
	// Hash identifies the content (a git blob id or a sha256), used as the
	// strong ETag.
	Hash    string
	ModTime time.Time
}

// Artifacts gives the kernel and initramfs of a commit.
type Artifacts interface {
	Kernel(ctx context.Context, commit string) (*Blob, error)
	Initrd(ctx context.Context, commit string) (*Blob, error)
}

// ErrNotFound is what Artifacts return for a commit without a kernel.
var ErrNotFound = errors.New("not found")

// Config configures the handler.
type Config struct {
	// BaseURL is how nodes reach this server, e.g. "http://10.77.0.1:8080".
	BaseURL string
	// NFSServer is the NFS server address put in nfsroot=.
	NFSServer netip.Addr
	// NFSOptions are appended to the export in nfsroot=, e.g.
	// "port=2049,mountport=2049,vers=3,proto=tcp,nolock".
	NFSOptions string
	// NFSExportDir, when set, makes nfsroot= name NFSExportDir/c/<commit>
	// (a maintenance node: its work tree's path), the layout 'git onesis
	// exports' materialises for a site's kernel NFS server. "" means
	// serve's own /c/<commit> and /w/<node> exports.
	NFSExportDir string
	// NFSHost, when valid, is the NFS server named in nfsroot= instead of
	// NFSServer (the root served by another host).
	NFSHost netip.Addr
	// Console is the console= argument ("" omits it).
	Console string
	// Inventory returns the current node inventory.
	Inventory func() *inventory.Inventory
	Resolver  Resolver
	// Allow, when set, decides whether node n may boot r (a signature
	// policy): nil to boot, an *Refusal to refuse with a reason, any other
	// error when it could not decide (the node is told to retry too).
	Allow func(n *inventory.Node, r Resolution) error
	// RetryAfter is how long a refused node waits before fetching its
	// script again (0: DefaultRetryAfter).
	RetryAfter time.Duration
	Artifacts  Artifacts
	// Booted records that node was handed commit (refs/onesis/booted/NODE).
	// An error fails the script: an unrecorded commit could be gc'd under
	// the running node.
	Booted func(node string, r Resolution) error
	// Servable reports whether commit may be served under /c/: a commit
	// some node was pinned to, or what the serve refs resolve to now.
	Servable func(commit string) bool
	Status   *Status
	// SecretsDir holds per-node secrets, SecretsDir/<node>/..., served at
	// /n/<node>/secrets to that node's root only; "" disables the route.
	SecretsDir string
	// Loaders are the boot loaders served at /ipxe/<name> (name -> host
	// path), for UEFI HTTP boot: the firmware fetches iPXE from here.
	Loaders map[string]string
	Logger  *slog.Logger
}

// Handler is the HTTP boot handler.
type Handler struct {
	cfg     Config
	mux     *http.ServeMux
	log     *slog.Logger
	refused sync.Map // node -> the commit last refused (logged once)
}

// New returns the handler for cfg.
func New(cfg Config) (*Handler, error) {
	if cfg.Inventory == nil || cfg.Resolver == nil || cfg.Artifacts == nil || cfg.Servable == nil {
		return nil, errors.New("httpboot: Inventory, Resolver, Artifacts and Servable are required")
	}
	if u, err := url.Parse(cfg.BaseURL); err != nil || u.Scheme != "http" || u.Host == "" || (u.Path != "" && u.Path != "/") {
		return nil, fmt.Errorf("httpboot: base URL %q is not http://HOST:PORT", cfg.BaseURL)
	}
	if cfg.Status == nil {
		cfg.Status = NewStatus()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{cfg: cfg, mux: http.NewServeMux(), log: cfg.Logger}
	h.mux.HandleFunc("GET /boot/{file}", h.script)
	h.mux.HandleFunc("GET /c/{commit}/{what}", h.artifact)
	h.mux.HandleFunc("GET /status", h.status)
	h.mux.HandleFunc("GET /metrics", h.metrics)
	h.mux.HandleFunc("GET /n/{node}/secrets", h.secrets)
	h.mux.HandleFunc("GET /ipxe/{name...}", h.loader)
	return h, nil
}

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Server", "git-onesis")
	// Unclean paths and unknown routes get the same generic answer, not
	// the mux's redirects or method hints.
	if r.URL.Path != path.Clean(r.URL.Path) {
		generic(w, http.StatusNotFound)
		return
	}
	if _, pattern := h.mux.Handler(r); pattern == "" {
		generic(w, http.StatusNotFound)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// clientIP returns the request's remote address.
func clientIP(r *http.Request) netip.Addr { return clientAddrPort(r).Addr().Unmap() }

// mayPin reports whether a request from ip may fetch node n's script (and
// so pin it): the node's own address, or the server itself.
func (h *Handler) mayPin(n *inventory.Node, ip netip.Addr) bool {
	switch {
	case !ip.IsValid():
		return false
	case n.IP.IsValid() && ip == n.IP.Unmap():
		return true
	case ip.IsLoopback():
		return true
	case h.cfg.NFSServer.IsValid() && ip == h.cfg.NFSServer.Unmap():
		return true
	}
	return false
}

// clientAddrPort returns the request's remote address and port.
func clientAddrPort(r *http.Request) netip.AddrPort {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.AddrPort{}
	}
	return ap
}

// generic writes a short body that reveals nothing about the server.
func generic(w http.ResponseWriter, code int) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	io.WriteString(w, strings.ToLower(http.StatusText(code))+"\n")
}

func (h *Handler) script(w http.ResponseWriter, r *http.Request) {
	file := r.PathValue("file")
	ip := clientIP(r)
	macText, ok := strings.CutSuffix(file, ".ipxe")
	mac, err := inventory.ParseMAC(macText)
	if !ok || err != nil {
		h.cfg.Status.Record(Event{Service: "http", Outcome: "badrequest", IP: ip, Detail: "bad script name"})
		generic(w, http.StatusNotFound)
		return
	}
	inv := h.cfg.Inventory()
	n := inv.ByMAC(mac)
	if n == nil {
		h.log.Info("http: boot script for an unknown MAC", "mac", mac.String(), "client", ip.String())
		h.cfg.Status.Record(Event{Service: "http", Outcome: "unknown", MAC: mac, IP: ip})
		generic(w, http.StatusNotFound)
		return
	}
	// Fetching the script pins the node to a commit, so only the node
	// itself (its inventory address) or the server (loopback, or its own
	// address, for an admin's curl) may do it: a stranger on the LAN must
	// not move a running node's pin.
	if !h.mayPin(n, ip) {
		h.log.Warn("http: boot script refused: not from the node's address", "node", n.Name, "mac", mac.String(), "client", ip.String(), "node_ip", n.IP.String())
		h.cfg.Status.Record(Event{Service: "http", Outcome: "refused", Node: n.Name, MAC: mac, IP: ip, Detail: "script requested from " + ip.String() + ", not the node's address " + n.IP.String()})
		generic(w, http.StatusForbidden)
		return
	}
	res, err := h.Boot(n, mac, ip, "http")
	var refused *Refusal
	if errors.As(err, &refused) {
		body := RefusedScript(h.cfg, n, mac, refused)
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		io.WriteString(w, body)
		return
	}
	if err != nil {
		generic(w, http.StatusServiceUnavailable)
		return
	}
	body := Script(h.cfg, n, mac, res.Commit)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	io.WriteString(w, body)
}

// Cmdline returns the kernel command line of node n booting commit, per
// the contract with onesis-init that package cmdline keeps (cmdline.Build).
// The export is /c/<commit> (read-only) or /w/<name> for a maintenance
// node (read-write); with NFSExportDir, the knfsd paths. withInitrd=false
// leaves out initrd=initrd, for loaders that add their own (PXELINUX).
func Cmdline(cfg Config, n *inventory.Node, mac net.HardwareAddr, commit string, withInitrd bool) string {
	b := cmdline.Boot{Initrd: withInitrd, MAC: mac, Export: "/c/" + commit, NFSOptions: cfg.NFSOptions,
		ReadWrite: n.Maintenance != "", Commit: commit, Node: n.Name, Console: cfg.Console, Extra: n.Args}
	if n.Maintenance != "" {
		b.Export = "/w/" + n.Name
	}
	if cfg.NFSExportDir != "" {
		b.Export = path.Join(cfg.NFSExportDir, "c", commit)
		if n.Maintenance != "" {
			b.Export = n.Maintenance
		}
	}
	host := cfg.NFSServer
	if cfg.NFSHost.IsValid() {
		host = cfg.NFSHost
	}
	b.NFSServer = host.String()
	if cfg.SecretsDir != "" {
		b.Secrets = strings.TrimSuffix(cfg.BaseURL, "/") + "/n/" + n.Name + "/secrets"
	}
	return cmdline.Build(b)
}

// Script renders the iPXE script for node n booting commit (see Cmdline).
// The script runs no autoboot or ifconf: the interface iPXE fetched the
// script over is already configured, so there is no second DHCP and no
// IPv6 autoconfiguration wait.
func Script(cfg Config, n *inventory.Node, mac net.HardwareAddr, commit string) string {
	base := strings.TrimSuffix(cfg.BaseURL, "/") + "/c/" + commit
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	fmt.Fprintf(&b, "# git-onesis: node %s boots commit %s\n", n.Name, commit)
	fmt.Fprintf(&b, "echo git-onesis: booting %s on commit %.12s\n", n.Name, commit)
	fmt.Fprintf(&b, "kernel %s/kernel %s\n", base, Cmdline(cfg, n, mac, commit, true))
	fmt.Fprintf(&b, "initrd --name initrd %s/initrd\n", base)
	b.WriteString("boot\n")
	return b.String()
}

// retryAfter is cfg's RetryAfter, or its default.
func retryAfter(cfg Config) time.Duration {
	if cfg.RetryAfter > 0 {
		return cfg.RetryAfter
	}
	return DefaultRetryAfter
}

// consoleText makes s safe to print from an iPXE script or a PXELINUX
// configuration: one line of printable ASCII without the characters
// either expands (iPXE's ${...}, a quote).
func consoleText(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e || c == '$' || c == '"' || c == '\\' {
			b[i] = '?'
		}
	}
	if len(b) > 300 {
		b = append(b[:297], "..."...)
	}
	return string(b)
}

// RefusedScript is the iPXE script of a node refused by the boot policy:
// it prints why on the console, waits RetryAfter and fetches its script
// again, so a commit made bootable meanwhile (signed) boots without anyone
// touching the node.
func RefusedScript(cfg Config, n *inventory.Node, mac net.HardwareAddr, r *Refusal) string {
	secs := int(retryAfter(cfg).Round(time.Second) / time.Second)
	var b strings.Builder
	b.WriteString("#!ipxe\n")
	fmt.Fprintf(&b, "# git-onesis: node %s refused commit %s\n", n.Name, r.Commit)
	fmt.Fprintf(&b, "echo git-onesis: %s will not boot commit %.12s: %s\n", n.Name, r.Commit, consoleText(r.Reason))
	fmt.Fprintf(&b, "echo git-onesis: asking again in %d s\n", secs)
	fmt.Fprintf(&b, "sleep %d || prompt --timeout %d git-onesis: retrying ||\n", secs, secs*1000)
	fmt.Fprintf(&b, "chain --replace --autofree %s/boot/%s.ipxe\n", strings.TrimSuffix(cfg.BaseURL, "/"), macName(mac))
	return b.String()
}

// macName is a MAC as boot script names carry it (aa-bb-cc-dd-ee-ff).
func macName(mac net.HardwareAddr) string {
	return strings.ReplaceAll(mac.String(), ":", "-")
}

// RefusedPXELinuxConfig is pxelinux.cfg/01-<mac> for a refused node: it
// says why and, after RetryAfter, hands the machine back to its firmware
// (LOCALBOOT -1), which tries its boot devices again: the network boot
// asks once more.
func RefusedPXELinuxConfig(cfg Config, n *inventory.Node, r *Refusal) string {
	tenths := int(retryAfter(cfg) / (100 * time.Millisecond))
	var b strings.Builder
	fmt.Fprintf(&b, "# git-onesis: node %s refused commit %s\n", n.Name, r.Commit)
	fmt.Fprintf(&b, "SAY git-onesis: %s will not boot commit %.12s: %s\n", n.Name, r.Commit, consoleText(r.Reason))
	fmt.Fprintf(&b, "SAY git-onesis: asking again in %d s\n", tenths/10)
	b.WriteString("DEFAULT retry\nPROMPT 1\n")
	fmt.Fprintf(&b, "TIMEOUT %d\nTOTALTIMEOUT %d\n", tenths, tenths)
	b.WriteString("LABEL retry\n  LOCALBOOT -1\n")
	return b.String()
}

// PXELinuxConfig renders pxelinux.cfg/01-<mac> for node n booting commit:
// the kernel and initramfs come over TFTP as c/<commit>/kernel and
// c/<commit>/initrd (relative to the TFTP root).
func PXELinuxConfig(cfg Config, n *inventory.Node, mac net.HardwareAddr, commit string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# git-onesis: node %s boots commit %s\n", n.Name, commit)
	b.WriteString("DEFAULT onesis\nPROMPT 0\nTIMEOUT 0\n")
	b.WriteString("LABEL onesis\n")
	fmt.Fprintf(&b, "  KERNEL c/%s/kernel\n", commit)
	fmt.Fprintf(&b, "  INITRD c/%s/initrd\n", commit)
	fmt.Fprintf(&b, "  APPEND %s\n", Cmdline(cfg, n, mac, commit, false))
	return b.String()
}

// Boot resolves what node n boots and records it (booted ref, status), as
// a script request does; the PXELINUX path over TFTP calls it too.
func (h *Handler) Boot(n *inventory.Node, mac net.HardwareAddr, ip netip.Addr, service string) (Resolution, error) {
	res, err := h.cfg.Resolver.Resolve(n)
	if err != nil {
		h.log.Error(service+": cannot resolve what the node boots", "node", n.Name, "err", err)
		h.cfg.Status.Record(Event{Service: service, Outcome: "error", Node: n.Name, MAC: mac, IP: ip, Detail: err.Error()})
		return Resolution{}, err
	}
	if h.cfg.Allow != nil {
		if err := h.cfg.Allow(n, res); err != nil {
			var refused *Refusal
			if errors.As(err, &refused) {
				// Warn once per node and commit: a refused node asks again
				// every RetryAfter.
				level := slog.LevelWarn
				if prev, ok := h.refused.Swap(n.Name, res.Commit); ok && prev == res.Commit {
					level = slog.LevelDebug
				}
				h.log.Log(context.Background(), level, service+": boot refused by policy", "node", n.Name, "mac", mac.String(), "commit", res.Commit, "from", res.From, "reason", refused.Reason)
				h.cfg.Status.Record(Event{Service: service, Outcome: StageRefused, Node: n.Name, MAC: mac, IP: ip, Stage: StageRefused, Commit: res.Commit, Detail: refused.Reason})
				return res, err
			}
			h.log.Error(service+": cannot check the boot policy", "node", n.Name, "commit", res.Commit, "err", err)
			h.cfg.Status.Record(Event{Service: service, Outcome: "error", Node: n.Name, MAC: mac, IP: ip, Commit: res.Commit, Detail: err.Error()})
			return Resolution{}, err
		}
	}
	if h.cfg.Booted != nil {
		if err := h.cfg.Booted(n.Name, res); err != nil {
			h.log.Error(service+": cannot record the booted commit", "node", n.Name, "commit", res.Commit, "err", err)
			h.cfg.Status.Record(Event{Service: service, Outcome: "error", Node: n.Name, MAC: mac, IP: ip, Detail: err.Error()})
			return Resolution{}, err
		}
	}
	h.refused.Delete(n.Name)
	h.log.Info(service+": boot script", "node", n.Name, "mac", mac.String(), "client", ip.String(), "commit", res.Commit, "from", res.From)
	h.cfg.Status.Record(Event{Service: service, Outcome: "script", Node: n.Name, MAC: mac, IP: ip, Stage: "script", Commit: res.Commit, Detail: res.From})
	return res, nil
}

// Config returns the handler's configuration.
func (h *Handler) Config() Config { return h.cfg }

// IsCommitID reports whether s is a full lower-case object name (40 hex
// digits for SHA-1 repositories, 64 for SHA-256).
func IsCommitID(s string) bool {
	if len(s) != 40 && len(s) != 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func (h *Handler) artifact(w http.ResponseWriter, r *http.Request) {
	commit, what := r.PathValue("commit"), r.PathValue("what")
	ip := clientIP(r)
	node := ""
	if n := h.cfg.Inventory().ByIP(ip); n != nil {
		node = n.Name
	}
	if !IsCommitID(commit) || (what != "kernel" && what != "initrd") || !h.cfg.Servable(commit) {
		h.cfg.Status.Record(Event{Service: "http", Outcome: "notfound", Node: node, IP: ip, Detail: r.URL.Path})
		generic(w, http.StatusNotFound)
		return
	}
	get := h.cfg.Artifacts.Kernel
	if what == "initrd" {
		get = h.cfg.Artifacts.Initrd
	}
	blob, err := get(r.Context(), commit)
	if err != nil {
		code := http.StatusServiceUnavailable
		if errors.Is(err, ErrNotFound) {
			code = http.StatusNotFound
		}
		h.log.Error("http: cannot serve "+what, "commit", commit, "client", ip.String(), "err", err)
		h.cfg.Status.Record(Event{Service: "http", Outcome: "error", Node: node, IP: ip, Commit: commit, Detail: what + ": " + err.Error()})
		generic(w, code)
		return
	}
	defer blob.Content.Close()
	w.Header().Set("ETag", strconv.Quote(blob.Hash))
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	w.Header().Set("Content-Type", "application/octet-stream")
	outcome := what
	if match := r.Header.Get("If-None-Match"); match != "" && etagMatch(match, blob.Hash) {
		outcome = what + "_notmodified"
	}
	h.cfg.Status.Record(Event{Service: "http", Outcome: outcome, Node: node, IP: ip, Stage: what, Commit: commit})
	h.log.Info("http: "+what, "node", node, "client", ip.String(), "commit", commit, "size", blob.Size, "range", r.Header.Get("Range"), "outcome", outcome)
	http.ServeContent(w, r, "", blob.ModTime, blob.Content)
}

// LoaderPath is the URL path under which Loaders are served.
const LoaderPath = "/ipxe/"

// loader serves a boot loader (iPXE) to UEFI HTTP boot firmware. These are
// the same public binaries TFTP hands to anyone, so any client may fetch
// them; only the configured names exist.
func (h *Handler) loader(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	ip := clientIP(r)
	node := ""
	if n := h.cfg.Inventory().ByIP(ip); n != nil {
		node = n.Name
	}
	p, ok := h.cfg.Loaders[name]
	if !ok {
		h.cfg.Status.Record(Event{Service: "http", Outcome: "notfound", Node: node, IP: ip, Detail: r.URL.Path})
		generic(w, http.StatusNotFound)
		return
	}
	f, err := os.Open(p)
	if err != nil {
		h.log.Error("http: cannot serve a boot loader", "name", name, "client", ip.String(), "err", err)
		h.cfg.Status.Record(Event{Service: "http", Outcome: "error", Node: node, IP: ip, Detail: name + ": " + err.Error()})
		generic(w, http.StatusServiceUnavailable)
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		generic(w, http.StatusServiceUnavailable)
		return
	}
	// EDK2's HTTP boot takes application/efi as an EFI image whatever the
	// URL's extension (HttpBootCheckImageType).
	ctype := "application/octet-stream"
	if strings.HasSuffix(name, ".efi") {
		ctype = "application/efi"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Cache-Control", "no-cache")
	h.cfg.Status.Record(Event{Service: "http", Outcome: "loader", Node: node, IP: ip, Stage: "http " + name, Detail: r.Method + " " + name})
	h.log.Info("http: boot loader", "node", node, "client", ip.String(), "name", name, "method", r.Method, "size", fi.Size(), "range", r.Header.Get("Range"))
	http.ServeContent(w, r, "", fi.ModTime(), f)
}

func etagMatch(header, hash string) bool {
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == strconv.Quote(hash) {
			return true
		}
	}
	return false
}

// statusDoc is the /status document.
type statusDoc struct {
	Time            time.Time    `json:"time"`
	InventoryCommit string       `json:"inventory_commit,omitempty"`
	Nodes           []NodeStatus `json:"nodes"`
	// Integrity lists the newest served files found bad (integrity.go).
	Integrity []IntegrityEvent `json:"integrity,omitempty"`
}

func (h *Handler) knownNodes() ([]NodeStatus, *inventory.Inventory) {
	inv := h.cfg.Inventory()
	known := make([]NodeStatus, 0, len(inv.Nodes))
	for _, n := range inv.Nodes {
		ns := NodeStatus{Name: n.Name, IP: n.IP.String()}
		for _, m := range n.MACs {
			ns.MACs = append(ns.MACs, m.String())
		}
		known = append(known, ns)
	}
	return known, inv
}

func (h *Handler) status(w http.ResponseWriter, r *http.Request) {
	known, inv := h.knownNodes()
	doc := statusDoc{Time: time.Now().UTC(), InventoryCommit: inv.Commit, Nodes: h.cfg.Status.Snapshot(known), Integrity: h.cfg.Status.Integrity()}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(doc)
}

func (h *Handler) metrics(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	h.cfg.Status.WriteMetrics(w, len(h.cfg.Inventory().Nodes))
}
