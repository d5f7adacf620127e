package httpboot

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Event is one thing a boot service did or refused, fed to Status from
// DHCP, TFTP, HTTP, NFS and portmap alike.
type Event struct {
	Time    time.Time
	Service string // "dhcp", "tftp", "http", "nfs", "portmap", "inventory"
	// Outcome is a short fixed word, used as a metrics label: "offer",
	// "ack", "ignored", "script", "kernel", "initrd", "mount", "denied",
	// "notfound", "error", ...
	Outcome string
	Node    string           // "" when the client is not a known node
	MAC     net.HardwareAddr // when known
	IP      netip.Addr       // client address, when known
	// Stage, when set, is the node's new boot stage: "dhcp", "script",
	// "kernel", "initrd", "mount" (NFS root mounted).
	Stage  string
	Commit string // the commit involved, when one is
	Detail string // free text for logs, never a metrics label
	// Firmware is the client's firmware as DHCP saw it ("bios",
	// "efi-x64", "efi-x64-http", "ipxe", "none", ...); DHCP events only.
	Firmware string
}

// NodeStatus is what /status reports for one node.
type NodeStatus struct {
	Name       string    `json:"name"`
	MACs       []string  `json:"macs,omitempty"`
	IP         string    `json:"ip,omitempty"`
	LastDHCP   time.Time `json:"last_dhcp,omitzero"`
	DHCP       string    `json:"dhcp,omitempty"` // outcome of the last DHCP exchange
	LastScript time.Time `json:"last_script,omitzero"`
	Commit     string    `json:"commit,omitempty"` // commit of the last script served
	From       string    `json:"from,omitempty"`   // what it was resolved from (ref, worktree)
	Stage      string    `json:"stage,omitempty"`
	Time       time.Time `json:"time,omitzero"` // of the last event
	Detail     string    `json:"detail,omitempty"`
	// Firmware is what started the node's last boot: "bios", "efi-x64"
	// (UEFI PXE), "efi-x64-http" (UEFI HTTP boot), "ipxe" (an iPXE ROM),
	// ... The iPXE that UEFI or BIOS firmware loads does not replace it.
	Firmware string `json:"firmware,omitempty"`
	// Refused is the commit the boot policy last refused the node, and
	// RefusedReason why; both cleared when the node is next handed a
	// script.
	Refused       string    `json:"refused,omitempty"`
	RefusedReason string    `json:"refused_reason,omitempty"`
	firmwareAt    time.Time // when Firmware was last set
	seeded        bool      // Firmware came from SetFirmware, not a request
}

// StageRefused is the stage (and outcome) of a boot the policy refused.
const StageRefused = "refused_policy"

// Status keeps per-node boot progress and per-service counters. It is safe
// for concurrent use; its Record method is what every service's Event hook
// calls.
type Status struct {
	mu       sync.Mutex
	nodes    map[string]*NodeStatus
	counters map[[2]string]uint64 // {service, outcome} -> count
	started  time.Time

	integrity integrityLog // integrity.go
}

// NewStatus returns an empty status.
func NewStatus() *Status {
	return &Status{nodes: map[string]*NodeStatus{}, counters: map[[2]string]uint64{}, started: time.Now()}
}

// Record counts ev and, for a known node, updates its status.
func (s *Status) Record(ev Event) {
	if ev.Time.IsZero() {
		ev.Time = time.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counters[[2]string{label(ev.Service), label(ev.Outcome)}]++
	if ev.Node == "" {
		return
	}
	ns := s.nodes[ev.Node]
	if ns == nil {
		ns = &NodeStatus{Name: ev.Node}
		s.nodes[ev.Node] = ns
	}
	if ev.Time.Before(ns.Time) {
		// Recorded late (DHCP's workers answer in parallel: a DISCOVER's
		// OFFER can be recorded after the ACK of the REQUEST that
		// followed it). The node's view keeps the newest event; the
		// counters above still count this one.
		return
	}
	if ev.Service == "dhcp" {
		ns.LastDHCP, ns.DHCP = ev.Time, ev.Outcome
		ns.noteFirmware(ev.Firmware, ev.Time)
	}
	if ev.Stage == "script" {
		ns.LastScript = ev.Time
		ns.Refused, ns.RefusedReason = "", ""
	}
	if ev.Stage == StageRefused {
		ns.Refused, ns.RefusedReason = ev.Commit, ev.Detail
	}
	if ev.Stage == "script" && ev.Commit != "" {
		ns.Commit = ev.Commit
		ns.From = ev.Detail
	}
	if ev.Stage != "" {
		ns.Stage = ev.Stage
	}
	if ev.IP.IsValid() {
		ns.IP = ev.IP.String()
	}
	ns.Time = ev.Time
	if ev.Stage != "script" {
		ns.Detail = ev.Detail
	}
}

// noteFirmware updates what started the node's boot from a DHCP request's
// firmware. Any PXE or UEFI firmware starts a boot. An iPXE request is the
// iPXE such firmware loaded, unless no firmware was seen yet or the node
// fetched a script since (then a new boot began with an iPXE ROM). The
// kernel's own DHCP ("none") says nothing about the firmware.
func (ns *NodeStatus) noteFirmware(fw string, at time.Time) {
	switch fw {
	case "", "none":
		return
	case "ipxe":
		if ns.Firmware != "" && !ns.seeded && !ns.LastScript.After(ns.firmwareAt) {
			return
		}
	}
	ns.Firmware, ns.firmwareAt, ns.seeded = fw, at, false
}

// Firmware returns what started node's last boot ("" = not seen).
func (s *Status) Firmware(node string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ns := s.nodes[node]; ns != nil {
		return ns.Firmware
	}
	return ""
}

// SetFirmware seeds node's firmware, e.g. from what a previous serve
// recorded, until the node's next boot says otherwise.
func (s *Status) SetFirmware(node, fw string, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ns := s.nodes[node]
	if ns == nil {
		ns = &NodeStatus{Name: node}
		s.nodes[node] = ns
	}
	if ns.Firmware == "" {
		ns.Firmware, ns.firmwareAt, ns.seeded = fw, at, true
	}
}

// label keeps metrics labels to a safe alphabet.
func label(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

// Snapshot returns the status of every node, sorted by name. known lists
// the inventory's nodes, so nodes that never booted appear too (nil: only
// nodes with events).
func (s *Status) Snapshot(known []NodeStatus) []NodeStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]NodeStatus{}
	for _, k := range known {
		out[k.Name] = k
	}
	for name, ns := range s.nodes {
		c := *ns
		if k, ok := out[name]; ok {
			c.MACs = k.MACs
			if c.IP == "" {
				c.IP = k.IP
			}
		}
		out[name] = c
	}
	list := make([]NodeStatus, 0, len(out))
	for _, v := range out {
		list = append(list, v)
	}
	slices.SortFunc(list, func(a, b NodeStatus) int { return strings.Compare(a.Name, b.Name) })
	return list
}

// Counter returns the count for service and outcome (tests, /status).
func (s *Status) Counter(service, outcome string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.counters[[2]string{label(service), label(outcome)}]
}

// WriteMetrics writes the Prometheus text exposition format (version
// 0.0.4): a counter per service and outcome, the number of known nodes,
// and the process uptime.
func (s *Status) WriteMetrics(w io.Writer, knownNodes int) error {
	s.mu.Lock()
	keys := make([][2]string, 0, len(s.counters))
	for k := range s.counters {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i][0] < keys[j][0] || keys[i][0] == keys[j][0] && keys[i][1] < keys[j][1]
	})
	var b strings.Builder
	b.WriteString("# HELP onesis_serve_events_total Boot service events by service and outcome.\n")
	b.WriteString("# TYPE onesis_serve_events_total counter\n")
	for _, k := range keys {
		fmt.Fprintf(&b, "onesis_serve_events_total{service=%q,outcome=%q} %d\n", k[0], k[1], s.counters[k])
	}
	booting, refused := 0, 0
	for _, ns := range s.nodes {
		if ns.Stage != "" {
			booting++
		}
		if ns.Refused != "" {
			refused++
		}
	}
	s.mu.Unlock()
	b.WriteString("# HELP onesis_serve_nodes Nodes in the inventory.\n# TYPE onesis_serve_nodes gauge\n")
	fmt.Fprintf(&b, "onesis_serve_nodes %d\n", knownNodes)
	b.WriteString("# HELP onesis_serve_nodes_seen Nodes seen by any service since serve started.\n# TYPE onesis_serve_nodes_seen gauge\n")
	fmt.Fprintf(&b, "onesis_serve_nodes_seen %d\n", booting)
	b.WriteString("# HELP onesis_serve_nodes_refused Nodes whose last boot the signature policy refused.\n# TYPE onesis_serve_nodes_refused gauge\n")
	fmt.Fprintf(&b, "onesis_serve_nodes_refused %d\n", refused)
	b.WriteString("# HELP onesis_serve_uptime_seconds Seconds since serve started.\n# TYPE onesis_serve_uptime_seconds gauge\n")
	fmt.Fprintf(&b, "onesis_serve_uptime_seconds %.0f\n", time.Since(s.started).Seconds())
	s.writeIntegrityMetrics(&b)
	_, err := io.WriteString(w, b.String())
	return err
}
