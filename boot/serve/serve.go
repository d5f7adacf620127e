package serve

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/onesis/git-onesis/boot/booted"
	"github.com/onesis/git-onesis/boot/dhcp"
	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/integrity"
	"github.com/onesis/git-onesis/boot/inventory"
	"github.com/onesis/git-onesis/boot/invref"
	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/boot/resolve"
	"github.com/onesis/git-onesis/boot/trust"
	"github.com/onesis/git-onesis/internal/git"
)

// DefaultStateDir is serve's state directory for repository r.
func DefaultStateDir(r *git.Repo) string { return filepath.Join(r.CommonDir, "onesis", "serve") }

// Server is a configured serve instance. Create it with New, then Run.
type Server struct {
	cfg    Config
	f      Factories
	log    *slog.Logger
	repo   *git.Repo
	inv    *invref.Watcher
	status *httpboot.Status
	res    *resolve.Resolver
	pins   *pins
	art    *GitArtifacts
	http   *httpboot.Handler
	nfs    NFSServer
	plan   loaderPlan   // boot files per firmware
	fw     *firmwareLog // StateDir/firmware, for node list

	ifacePrefix netip.Prefix // the server address's network on Iface

	mu       sync.Mutex
	httpAddr net.Addr
	ready    chan struct{}
}

// New validates cfg and prepares every enabled service without opening
// sockets.
func New(cfg Config, f Factories) (*Server, error) {
	if err := cfg.Validate(f); err != nil {
		return nil, err
	}
	log := cfg.Logger
	r, err := git.Discover(cfg.RepoDir)
	if err != nil {
		return nil, cfgErr("repository", "%s: %w", cfg.RepoDir, err)
	}
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir(r)
	}
	s := &Server{cfg: cfg, f: f, log: log, repo: r, status: httpboot.NewStatus(), ready: make(chan struct{})}
	s.ifacePrefix = netip.PrefixFrom(cfg.ServerIP, 24).Masked()
	if cfg.Iface != "" {
		if p, ok := ifacePrefix(cfg.Iface, cfg.ServerIP); ok {
			s.ifacePrefix = p
		}
	}
	if s.inv, err = invref.NewWatcher(r, log); err != nil {
		return nil, fmt.Errorf("loading the node inventory: %w", err)
	}
	if s.res, err = resolve.New(r, cfg.Ref); err != nil {
		return nil, cfgErr(resolve.KeyRef, "%w", err)
	}
	if s.res.Ref != "" {
		if _, err := s.res.Default(); err != nil {
			if cfg.Ref == "" {
				return nil, cfgErr(resolve.KeyRef, "%w", err)
			}
			return nil, cfgErr("--ref", "%w", err)
		}
	}
	pol, err := trust.Load(r)
	if err != nil {
		return nil, cfgErr("onesis.serve", "%w", err)
	}
	if cfg.RequireSignature {
		pol.Require = true
	}
	if err := pol.Ready(r); err != nil {
		return nil, cfgErr("--require-signature", "%w", err)
	}
	if err := pol.Pin(r); err != nil {
		return nil, err
	}
	if pol.Require {
		log.Info("serve: nodes boot signed commits only", "allow_unsigned", strings.Join(pol.AllowUnsigned, ","))
	}
	if set, err := booted.KeepHistory(r); err != nil {
		log.Warn("serve: cannot set how long the boot history is kept", "err", err)
	} else if len(set) > 0 {
		log.Info("serve: the boot history (refs/onesis/booted reflogs) is kept a year", "set", strings.Join(set, " "))
	}
	if s.pins, err = loadPins(r); err != nil {
		return nil, err
	}
	var builder InitrdBuilder
	if f.Initrd != nil && (!cfg.NoHTTP || cfg.PXELinux) {
		builder, err = f.Initrd(InitrdParams{RepoDir: cfg.RepoDir, InitPath: cfg.InitPath, Modules: cfg.Modules})
		if err != nil {
			return nil, cfgErr("--init", "%w", err)
		}
	}
	if s.art, err = NewGitArtifacts(cfg.RepoDir, cfg.StateDir, builder); err != nil {
		return nil, err
	}
	s.art.Report, s.art.SkipVerify = s.reportIntegrity, cfg.SkipVerify
	if s.plan, err = planLoaders(cfg); err != nil {
		return nil, err
	}
	if s.fw, err = loadFirmwareLog(cfg.StateDir); err != nil {
		log.Warn("serve: the recorded node firmware is unreadable; it is recorded afresh", "err", err)
		s.fw = &firmwareLog{dir: cfg.StateDir, m: map[string]NodeFirmware{}}
	}
	for node, nf := range s.fw.m {
		if s.inv.Current().ByName(node) != nil { // not nodes removed since
			s.status.SetFirmware(node, nf.Firmware, nf.Time)
		}
	}
	// The handler also renders PXELINUX configs for TFTP, so it exists
	// even with --no-http (then it just does not listen).
	{
		s.http, err = httpboot.New(httpboot.Config{
			BaseURL:    fmt.Sprintf("http://%s:%d", cfg.ServerIP, cfg.HTTPPort),
			NFSServer:  cfg.ServerIP,
			NFSOptions: cfg.NFSOptions, NFSExportDir: cfg.NFSExportDir, NFSHost: cfg.NFSHost,
			Console:    cfg.Console,
			Inventory:  s.inv.Current,
			Resolver:   s.res,
			Allow:      pol.Allow,
			RetryAfter: cfg.RetryAfter,
			Artifacts:  s.art,
			Booted:     s.booted,
			Servable:   s.servable,
			Status:     s.status,
			SecretsDir: cfg.SecretsDir,
			Loaders:    s.plan.files,
			Logger:     log,
		})
		if err != nil {
			return nil, err
		}
	}
	if !cfg.NoNFS {
		s.nfs, err = f.NFS(NFSParams{RepoDir: cfg.RepoDir, StateDir: filepath.Join(cfg.StateDir, "nfs"),
			Authorize: s.authorize, Deny: cfg.Deny, Event: s.event, Logger: log, Report: s.reportIntegrity, SkipVerify: cfg.SkipVerify})
		if err != nil {
			return nil, cfgErr("--no-nfs", "starting the NFS server: %w", err)
		}
	}
	return s, nil
}

func ifacePrefix(name string, ip netip.Addr) (netip.Prefix, bool) {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return netip.Prefix{}, false
	}
	addrs, _ := ifc.Addrs()
	for _, a := range addrs {
		if pn, ok := a.(*net.IPNet); ok {
			if a, ok := netip.AddrFromSlice(pn.IP); ok && a.Unmap() == ip {
				ones, _ := pn.Mask.Size()
				return netip.PrefixFrom(ip, ones).Masked(), true
			}
		}
	}
	return netip.Prefix{}, false
}

// Status returns the live status (also served at /status).
func (s *Server) Status() *httpboot.Status { return s.status }

// Handler returns the HTTP handler.
func (s *Server) Handler() http.Handler { return s.http }

// tftpGenerate serves the PXELINUX path (--pxelinux) over TFTP:
// pxelinux.cfg/01-<mac> is rendered for a known node, from its own
// address only, and resolves and records its commit like an iPXE script;
// c/<commit>/kernel and c/<commit>/initrd are the same content-addressed
// artifacts as over HTTP, for pinned commits only.
// The kernel and initramfs are streamed from serve's cache files, never
// held in memory: a storm of PXELINUX nodes costs file handles, not RAM.
func (s *Server) tftpGenerate(name string, client net.IP) (io.ReadCloser, int64, bool) {
	cip, _ := netip.AddrFromSlice(client)
	cip = cip.Unmap()
	if m, ok := strings.CutPrefix(name, "pxelinux.cfg/01-"); ok {
		mac, err := inventory.ParseMAC(m)
		if err != nil {
			return nil, 0, false
		}
		n := s.inv.Current().ByMAC(mac)
		if n == nil || n.IP != cip {
			s.event(httpboot.Event{Service: "tftp", Outcome: "unknown", MAC: mac, IP: cip, Detail: name})
			return nil, 0, false
		}
		res, err := s.http.Boot(n, mac, cip, "tftp")
		var refused *httpboot.Refusal
		if errors.As(err, &refused) {
			b := []byte(httpboot.RefusedPXELinuxConfig(s.http.Config(), n, refused))
			return io.NopCloser(bytes.NewReader(b)), int64(len(b)), true
		}
		if err != nil {
			return nil, 0, false
		}
		b := []byte(httpboot.PXELinuxConfig(s.http.Config(), n, mac, res.Commit))
		return io.NopCloser(bytes.NewReader(b)), int64(len(b)), true
	}
	parts := strings.Split(name, "/")
	if len(parts) != 3 || parts[0] != "c" || !httpboot.IsCommitID(parts[1]) || !s.servable(parts[1]) {
		return nil, 0, false
	}
	get := s.art.Kernel
	switch parts[2] {
	case "kernel":
	case "initrd":
		get = s.art.Initrd
	default:
		return nil, 0, false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	blob, err := get(ctx, parts[1])
	if err != nil {
		s.log.Error("tftp: cannot serve "+parts[2], "commit", parts[1], "client", cip.String(), "err", err)
		return nil, 0, false
	}
	n := s.inv.Current().ByIP(cip)
	node := ""
	if n != nil {
		node = n.Name
	}
	s.status.Record(httpboot.Event{Service: "tftp", Outcome: parts[2], Node: node, IP: cip, Stage: parts[2], Commit: parts[1]})
	return blob.Content, blob.Size, true
}

// HTTPAddr waits until Run is listening and returns the HTTP address.
func (s *Server) HTTPAddr(ctx context.Context) (net.Addr, error) {
	select {
	case <-s.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.httpAddr, nil
}

// event logs ev and feeds status and metrics.
func (s *Server) event(ev httpboot.Event) {
	if ev.Node == "" && ev.MAC != nil {
		if n := s.inv.Current().ByMAC(ev.MAC); n != nil {
			ev.Node = n.Name
		}
	}
	if ev.Node == "" && ev.IP.IsValid() {
		if n := s.inv.Current().ByIP(ev.IP); n != nil {
			ev.Node = n.Name
		}
	}
	s.status.Record(ev)
	if ev.Service == "dhcp" && ev.Node != "" {
		if err := s.fw.note(ev.Node, s.status.Firmware(ev.Node), ev.Time); err != nil {
			s.log.Warn("serve: cannot record the node's firmware", "node", ev.Node, "err", err)
		}
	}
	attrs := []any{"outcome", ev.Outcome}
	if ev.Node != "" {
		attrs = append(attrs, "node", ev.Node)
	}
	if ev.MAC != nil {
		attrs = append(attrs, "mac", ev.MAC.String())
	}
	if ev.IP.IsValid() {
		attrs = append(attrs, "client", ev.IP.String())
	}
	if ev.Commit != "" {
		attrs = append(attrs, "commit", ev.Commit)
	}
	if ev.Detail != "" {
		attrs = append(attrs, "detail", ev.Detail)
	}
	s.log.Info(ev.Service, attrs...)
}

// reportIntegrity logs a served file found bad and feeds /status and
// /metrics.
func (s *Server) reportIntegrity(r integrity.Report) {
	s.status.RecordIntegrity(httpboot.IntegrityEvent{Time: r.Time, Store: r.Store, Name: r.Name, Path: r.Path,
		Problem: r.Problem, Quarantine: r.Quarantine, Repaired: r.Repaired, Error: r.RepairErr})
	s.log.Error("serve: a served file is not the object git names; it was moved aside", "store", r.Store, "name", r.Name,
		"path", r.Path, "problem", r.Problem, "quarantine", r.Quarantine, "repaired", r.Repaired, "err", r.RepairErr)
}

// booted records a script's commit, then starts materialising it for NFS.
func (s *Server) booted(node string, res httpboot.Resolution) error {
	if err := s.pins.record(node, res); err != nil {
		return err
	}
	if s.nfs != nil {
		n := s.inv.Current().ByName(node)
		if n == nil || n.Maintenance == "" {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancel()
				if err := s.nfs.Prepare(ctx, res.Commit); err != nil {
					s.log.Error("nfs: preparing the export failed", "node", node, "commit", res.Commit, "err", err)
				}
			}()
		}
	}
	return nil
}

// servable reports whether /c/<commit>/ may be served: a pinned commit, or
// what a node or the serve default resolves to right now.
func (s *Server) servable(commit string) bool {
	if s.pins.has(commit) {
		return true
	}
	if r, err := s.res.Default(); err == nil && r.Commit == commit {
		return true
	}
	seen := map[string]bool{}
	for _, n := range s.inv.Current().Nodes {
		key := n.Ref + "\x00" + n.Maintenance
		if (n.Ref == "" && n.Maintenance == "") || seen[key] {
			continue
		}
		seen[key] = true
		if r, err := s.res.Resolve(n); err == nil && r.Commit == commit {
			return true
		}
	}
	return false
}

// authorize is the NFS MOUNT policy: a known node's address may mount its
// pinned commit, read-only, or, for a maintenance node, its own work tree
// read-write. Everything else is refused.
func (s *Server) authorize(client net.IP, export string) (nfsroot.Export, bool) {
	ip, ok := netip.AddrFromSlice(client)
	if !ok {
		return nfsroot.Export{}, false
	}
	n := s.inv.Current().ByIP(ip.Unmap())
	if n == nil {
		s.event(httpboot.Event{Service: "nfs", Outcome: "denied", IP: ip.Unmap(), Detail: "mount " + export + " from an unknown address"})
		return nfsroot.Export{}, false
	}
	if n.Maintenance != "" && export == "/w/"+n.Name {
		s.event(httpboot.Event{Service: "nfs", Outcome: "mount", Node: n.Name, IP: ip.Unmap(), Stage: "mount", Detail: export + " rw"})
		return nfsroot.Export{Dir: n.Maintenance, ReadWrite: true}, true
	}
	if c, ok := strings.CutPrefix(export, "/c/"); ok && httpboot.IsCommitID(c) && c == s.pins.node(n.Name) {
		s.event(httpboot.Event{Service: "nfs", Outcome: "mount", Node: n.Name, IP: ip.Unmap(), Stage: "mount", Commit: c})
		return nfsroot.Export{Commit: c}, true
	}
	s.event(httpboot.Event{Service: "nfs", Outcome: "denied", Node: n.Name, IP: ip.Unmap(),
		Detail: "mount " + export + " is not the node's pinned export"})
	return nfsroot.Export{}, false
}

// lookup is the DHCP policy: known MACs only, with the node's static
// address and its network's mask, router and DNS.
func (s *Server) lookup(mac net.HardwareAddr) (dhcp.Lease, bool) {
	inv := s.inv.Current()
	n := inv.ByMAC(mac)
	if n == nil {
		return dhcp.Lease{}, false
	}
	ip := n.IP.As4()
	l := dhcp.Lease{IP: net.IP(ip[:]), Hostname: n.Name, LeaseTime: time.Hour}
	bits := s.ifacePrefix.Bits()
	nw := inv.NetworkFor(n.IP)
	if nw == nil && !s.ifacePrefix.Contains(n.IP) {
		// A relayed node outside our own subnet needs a network entry to
		// get a correct mask and router.
		s.log.Warn("dhcp: node is outside "+s.ifacePrefix.String()+" and no inventory network contains it; add one with 'git onesis node network'",
			"node", n.Name, "ip", n.IP.String())
	}
	if nw != nil {
		bits = nw.Prefix.Bits()
		if nw.Router.IsValid() {
			r := nw.Router.As4()
			l.Router = net.IP(r[:])
		}
		for _, d := range nw.DNS {
			a := d.As4()
			l.DNS = append(l.DNS, net.IP(a[:]))
		}
		l.Domain = nw.Domain
	}
	l.Mask = net.CIDRMask(bits, 32)
	return l, true
}

// discover records an unknown MAC.
func (s *Server) discover(mac net.HardwareAddr, info string) {
	if err := inventory.RecordDiscovered(filepath.Join(s.cfg.StateDir, "discovered"), mac, info, time.Now()); err != nil {
		s.log.Warn("dhcp: cannot record a discovered MAC", "mac", mac.String(), "err", err)
	}
}

// pruneKeep lists the commits whose NFS data must stay (resolve.Live):
// every node's last booted commit (running nodes read it; an older one of
// a node that has since booted again is nobody's root), and what the serve
// default and every node ref resolve to now (the next boots). A serve
// --ref that names nothing stops the pruning: the next boots are unknown.
func (s *Server) pruneKeep() ([]string, error) {
	live, err := s.res.Live(s.inv.Current().Nodes, s.pins.nodes())
	if err != nil && s.cfg.Ref != "" {
		return nil, err
	}
	return live.Commits(), nil
}

// prune removes what no kept commit uses from the NFS blob store and the
// kernel and initramfs cache, so neither grows with every commit ever
// served. The NFS server also keeps every commit it is serving, and the
// cache removes nothing a request is reading. Failure only costs disk.
func (s *Server) prune() {
	t0 := time.Now()
	keep, err := s.pruneKeep()
	if err != nil {
		s.log.Warn("not pruning the NFS blob store and the boot file cache", "err", err)
		return
	}
	if s.nfs != nil {
		r, err := s.nfs.Prune(keep)
		switch {
		case errors.Is(err, nfsroot.ErrStoreBusy):
			// git onesis sync is preparing commits: leave its work alone.
			s.log.Info("nfs: blob store and boot file cache not pruned: another process (git onesis sync?) has the store open")
			return
		case err != nil:
			s.log.Warn("nfs: pruning the blob store failed; it keeps what it had", "err", err)
		default:
			s.log.Info("nfs: pruned the blob store", "commits_kept", r.Commits, "files_kept", r.Kept, "bytes_kept", r.KeptBytes,
				"files_removed", r.Removed, "bytes_freed", r.Freed, "took", time.Since(t0).Round(time.Millisecond).String())
		}
	}
	n, freed, err := s.art.Prune(keep)
	if err != nil {
		s.log.Warn("pruning the boot file cache failed", "err", err)
		return
	}
	s.log.Info("pruned the boot file cache (kernels, initramfs images)", "commits_kept", len(keep), "files_removed", n, "bytes_freed", freed)
}

// listenErr names the service and address of a failed listen; the cause
// is kept (errors.Is(err, syscall.EADDRINUSE) holds) without repeating
// the address a *net.OpError would print.
func listenErr(service, flag string, addr string, err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		err = op.Err
	}
	return cfgErr(flag, "%s cannot listen on %s: %w", service, addr, err)
}

// Run starts every enabled service and blocks until ctx is done or a
// service fails; then it closes them all and returns. A failure names the
// service and its port.
func (s *Server) Run(ctx context.Context) error {
	cfg := s.cfg
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g := &group{ctx: ctx, errc: make(chan error, 8)}
	defer g.close()

	// Open every socket first, so a busy port fails before anything runs.
	socks, err := s.listen(g)
	if err != nil {
		return err
	}
	if !cfg.NoPrune {
		// Before any service runs, so the first boots find it done.
		s.prune()
	}
	if err := s.startDHCP(g); err != nil {
		return err
	}
	if err := s.startTFTP(g); err != nil {
		return err
	}
	if cfg.AnnounceRA {
		ra, err := newRAResponder(cfg.Iface, s.log)
		if err != nil {
			return cfgErr("--no-ra", "IPv6 router advertisements on %s: %w", cfg.Iface, err)
		}
		g.onClose(ra.Close)
		g.start("ra", ra.Serve)
	}
	hs := s.startStreams(g, socks)
	g.start("inventory", func() error { s.inv.Run(ctx, cfg.Poll); return nil })
	if !cfg.NoPrune {
		g.start("prune", func() error {
			t := time.NewTicker(cfg.PruneEvery)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					s.prune()
				}
			}
		})
	}
	if cfg.verifyRate > 0 {
		stores := s.art.VerifyStores()
		if v, ok := s.nfs.(interface{ VerifyStore() integrity.Walkable }); ok {
			stores = append(stores, v.VerifyStore())
		}
		bg := &integrity.Background{Rate: cfg.verifyRate, Stores: stores, Log: s.log}
		g.start("verify", func() error { bg.Run(ctx); return nil })
	}
	close(s.ready)
	s.log.Info("serve: ready", "addr", cfg.ServerIP.String(), "iface", cfg.Iface, "http", !cfg.NoHTTP, "dhcp", !cfg.NoDHCP,
		"tftp", !cfg.NoTFTP, "nfs", !cfg.NoNFS, "portmap", !cfg.NoPortmap, "verify_rate", cfg.verifyRate, "nodes", len(s.inv.Current().Nodes),
		"default", s.describeDefault())

	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("serve: shutting down")
	case runErr = <-g.errc:
		s.log.Error("serve: a service failed; shutting down", "err", runErr)
	}
	cancel()
	if hs != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		hs.Shutdown(sctx)
		scancel()
	}
	g.close()
	if !g.wait(10 * time.Second) {
		s.log.Warn("serve: some services did not stop within 10 s")
	}
	return runErr
}

// group runs the services of one Run: each in its goroutine, the first
// failure on errc, and what must be closed closed in reverse order.
type group struct {
	ctx     context.Context
	closers []func() error
	errc    chan error
	wg      sync.WaitGroup
}

// onClose registers closers, run in reverse order by close.
func (g *group) onClose(f ...func() error) { g.closers = append(g.closers, f...) }

// start runs run in a goroutine; an error before ctx is done fails Run.
func (g *group) start(name string, run func() error) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		if err := run(); err != nil && g.ctx.Err() == nil {
			g.errc <- fmt.Errorf("%s: %w", name, err)
		}
	}()
}

// close runs the closers, newest first, once.
func (g *group) close() {
	for i := len(g.closers) - 1; i >= 0; i-- {
		g.closers[i]()
	}
	g.closers = nil
}

// wait waits up to d for every started service to return.
func (g *group) wait(d time.Duration) bool {
	done := make(chan struct{})
	go func() { g.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		return false
	}
}

// sockets are the listeners Run opens before starting anything; nil for
// a service that is off.
type sockets struct {
	http, nfs, pmTCP net.Listener
	pmUDP            net.PacketConn
}

// listen opens the HTTP, NFS and portmap sockets.
func (s *Server) listen(g *group) (sockets, error) {
	cfg := s.cfg
	ip := cfg.ServerIP.String()
	var so sockets
	var err error
	if !cfg.NoHTTP {
		a := net.JoinHostPort(ip, fmt.Sprint(cfg.HTTPPort))
		if so.http, err = net.Listen("tcp4", a); err != nil {
			return so, listenErr("HTTP", "--http-port", a, err)
		}
		g.onClose(so.http.Close)
	}
	if !cfg.NoNFS {
		a := net.JoinHostPort(ip, fmt.Sprint(cfg.NFSPort))
		if so.nfs, err = net.Listen("tcp4", a); err != nil {
			return so, listenErr("NFS", "--nfs-port", a, err)
		}
		g.onClose(so.nfs.Close, s.nfs.Close)
	}
	if !cfg.NoPortmap {
		a := net.JoinHostPort(ip, fmt.Sprint(cfg.PortmapPort))
		if so.pmUDP, err = net.ListenPacket("udp4", a); err != nil {
			return so, listenErr("portmap (udp)", "--portmap-port", a, err)
		}
		g.onClose(so.pmUDP.Close)
		if so.pmTCP, err = net.Listen("tcp4", a); err != nil {
			return so, listenErr("portmap (tcp)", "--portmap-port", a, err)
		}
		g.onClose(so.pmTCP.Close)
	}
	return so, nil
}

// startDHCP starts the DHCP server unless it is off.
func (s *Server) startDHCP(g *group) error {
	cfg := s.cfg
	if cfg.NoDHCP {
		return nil
	}
	ip := cfg.ServerIP.String()
	var disc func(net.HardwareAddr, string)
	if cfg.Discover {
		disc = s.discover
	}
	url, loaders := "", ""
	if !cfg.NoHTTP {
		url = fmt.Sprintf("http://%s:%d/boot/${mac:hexhyp}.ipxe", ip, cfg.HTTPPort)
		loaders = fmt.Sprintf("http://%s:%d%s", ip, cfg.HTTPPort, httpboot.LoaderPath)
	}
	for _, w := range s.plan.warnings {
		s.log.Warn("dhcp: " + w)
	}
	d, err := s.f.DHCP(DHCPParams{Iface: cfg.Iface, ServerIP: net.ParseIP(ip), Lookup: s.lookup,
		HTTPBootURL: url, IPXEBaseURL: loaders, BootFiles: s.plan.bootFiles, PXELinux: cfg.PXELinux, Proxy: cfg.ProxyDHCP,
		Discover: disc, Event: s.event, Logger: s.log})
	if err != nil {
		return cfgErr("--iface", "DHCP cannot start on %s ports 67 and 4011: %w", cfg.Iface, err)
	}
	g.onClose(d.Close)
	g.start("dhcp", d.Serve)
	return nil
}

// startTFTP starts the TFTP server unless it is off.
func (s *Server) startTFTP(g *group) error {
	cfg := s.cfg
	if cfg.NoTFTP {
		return nil
	}
	a := net.JoinHostPort(cfg.ServerIP.String(), fmt.Sprint(cfg.TFTPPort))
	var gen func(string, net.IP) (io.ReadCloser, int64, bool)
	if cfg.PXELinux {
		gen = s.tftpGenerate
	}
	t, err := s.f.TFTP(TFTPParams{Addr: a, Iface: cfg.Iface, IPXEDir: cfg.IPXEDir, PXELinux: cfg.PXELinux, Files: s.plan.files,
		Generate: gen, Event: s.event, Logger: s.log, MaxTransfers: cfg.TFTPMax})
	if err != nil {
		return cfgErr("--tftp-port", "TFTP cannot start on %s: %w", a, err)
	}
	g.onClose(t.Close)
	g.start("tftp", t.Serve)
	return nil
}

// startStreams starts NFS, portmap and HTTP on the sockets listen opened
// and returns the HTTP server (nil when HTTP is off), for a graceful
// shutdown.
func (s *Server) startStreams(g *group, so sockets) *http.Server {
	if so.nfs != nil {
		g.start("nfs", func() error { return s.nfs.Serve(so.nfs) })
	}
	if so.pmUDP != nil {
		g.start("portmap", func() error {
			return s.f.Portmap(g.ctx, so.pmUDP, so.pmTCP, s.cfg.NFSPort, s.cfg.NFSPort, s.log)
		})
	}
	if so.http == nil {
		return nil
	}
	hs := &http.Server{Handler: s.http, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(s.log.Handler(), slog.LevelWarn)}
	g.start("http", func() error {
		if err := hs.Serve(so.http); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	s.mu.Lock()
	s.httpAddr = so.http.Addr()
	s.mu.Unlock()
	return hs
}

func (s *Server) describeDefault() string {
	r, err := s.res.Default()
	if err != nil {
		return "error: " + err.Error()
	}
	return fmt.Sprintf("%s %.12s", r.From, r.Commit)
}
