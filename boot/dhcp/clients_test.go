package dhcp

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/onesis/git-onesis/internal/testkit"
)

const (
	nsKnownMAC   = "52:54:00:12:34:56"
	nsUnknownMAC = "52:54:00:de:ad:01"
	nsRelayMAC   = "52:54:00:00:02:01"
	nsBootURL    = "http://10.77.9.1:8080/boot/${mac:hexhyp}.ipxe"
)

func nsServerConfig() helperConfig {
	return helperConfig{
		Mode: "server", Iface: "vs", ServerIP: "10.77.9.1", HTTPBootURL: nsBootURL,
		Leases: map[string]helperLease{
			nsKnownMAC: {IP: "10.77.9.50", Mask: "255.255.255.0", Router: "10.77.9.1", Hostname: "node01", Domain: "cluster.test", DNS: []string{"10.77.9.53"}},
			nsRelayMAC: {IP: "10.78.5.20", Mask: "255.255.255.0", Router: "10.78.5.1", Hostname: "far01"},
		},
	}
}

func busybox(t *testing.T) string {
	t.Helper()
	path := testkit.NeedTool(t, "busybox", "busybox-static")
	if out, _ := exec.Command(path, "--list").Output(); !strings.Contains(string(out), "udhcpc\n") {
		t.Fatalf("%s has no udhcpc applet; Debian's busybox-static has it", path)
	}
	return path
}

// udhcpc runs busybox udhcpc in the client namespace with a script that
// writes the environment of each event to DIR/<event>.env. It returns
// the variables of the "bound" event (nil if none) and udhcpc's output.
func udhcpc(t *testing.T, bb string, p *pair, extra ...string) (map[string]string, string) {
	t.Helper()
	dir := t.TempDir()
	script := filepath.Join(dir, "script")
	if err := os.WriteFile(script, []byte("#!/bin/sh\nenv > \"$UDHCPC_OUT/$1.env\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"netns", "exec", p.cli, bb, "udhcpc", "-f", "-q", "-n", "-i", "vc", "-s", script, "-t", "3", "-T", "1"}, extra...)
	cmd := exec.CommandContext(ctx, "ip", args...)
	cmd.Env = append(os.Environ(), "UDHCPC_OUT="+dir)
	out, _ := cmd.CombinedOutput()
	f, err := os.Open(filepath.Join(dir, "bound.env"))
	if err != nil {
		return nil, string(out)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			env[k] = v
		}
	}
	return env, string(out)
}

func setMAC(t *testing.T, p *pair, mac string) {
	t.Helper()
	mustRun(t, "ip", "-n", p.cli, "link", "set", "dev", "vc", "address", mac)
}

// TestUdhcpc: busybox udhcpc gets an offer and an ack with the node's
// settings and the right boot file per firmware, and nothing for an
// unknown MAC. Needs root; about 10 s (the unknown-MAC case waits for
// udhcpc's 3 discovers).
func TestUdhcpc(t *testing.T) {
	needRoot(t)
	bb := busybox(t)
	p := setupPair(t)
	h := startHelper(t, p.srv, nsServerConfig())

	common := map[string]string{
		"ip": "10.77.9.50", "subnet": "255.255.255.0", "mask": "24", "router": "10.77.9.1",
		"hostname": "node01", "domain": "cluster.test", "dns": "10.77.9.53", "serverid": "10.77.9.1",
		"siaddr": "10.77.9.1", "lease": "43200",
	}
	tests := []struct {
		name     string
		args     []string
		want     map[string]string
		absent   []string
		firmware string
	}{
		{name: "OS client", want: map[string]string{}, absent: []string{"boot_file", "bootfile", "tftp"}, firmware: "none"},
		{name: "BIOS PXE",
			args:     []string{"-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "93:0000"},
			want:     map[string]string{"boot_file": "undionly.kpxe", "bootfile": "undionly.kpxe", "tftp": "10.77.9.1"},
			firmware: "bios"},
		{name: "UEFI x64",
			args:     []string{"-V", "PXEClient:Arch:00007:UNDI:003016", "-x", "93:0007"},
			want:     map[string]string{"boot_file": "snponly.efi", "bootfile": "snponly.efi", "tftp": "10.77.9.1"},
			firmware: "efi-x64"},
		{name: "UEFI x64 by option 93 alone",
			args:     []string{"-x", "93:0009"},
			want:     map[string]string{"boot_file": "snponly.efi", "tftp": "10.77.9.1"},
			absent:   []string{"vendorclass"},
			firmware: "efi-x64"},
		{name: "iPXE user class",
			args:     []string{"-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "93:0000", "-x", "0x4d:69505845"},
			want:     map[string]string{"boot_file": nsBootURL, "bootfile": nsBootURL},
			absent:   []string{"tftp"},
			firmware: "ipxe"},
	}
	setMAC(t, p, nsKnownMAC)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := len(h.eventsFor(nsKnownMAC))
			env, out := udhcpc(t, bb, p, tc.args...)
			if env == nil {
				t.Fatalf("udhcpc got no lease:\n%s", out)
			}
			for k, v := range common {
				if env[k] != v {
					t.Errorf("%s=%q, want %q", k, env[k], v)
				}
			}
			for k, v := range tc.want {
				if env[k] != v {
					t.Errorf("%s=%q, want %q", k, env[k], v)
				}
			}
			for _, k := range tc.absent {
				if v, ok := env[k]; ok {
					t.Errorf("%s=%q, want it absent", k, v)
				}
			}
			// The server saw this firmware and answered DISCOVER and REQUEST.
			// The helper's event lines may lag behind udhcpc's exit.
			h.waitEvent(nsKnownMAC, func(Event) bool { return len(h.eventsFor(nsKnownMAC)) >= before+2 }, 5*time.Second)
			evs := h.eventsFor(nsKnownMAC)[before:]
			var offer, ack bool
			for _, e := range evs {
				if e.Firmware != tc.firmware {
					t.Errorf("server classified the client as %q, want %q", e.Firmware, tc.firmware)
				}
				offer = offer || e.Message == "DISCOVER" && e.Reply == "OFFER" && e.Answered
				ack = ack || e.Message == "REQUEST" && e.Reply == "ACK" && e.Answered
			}
			if !offer || !ack {
				t.Errorf("server events %+v: want an answered DISCOVER->OFFER and REQUEST->ACK", evs)
			}
		})
	}

	t.Run("unknown MAC gets nothing", func(t *testing.T) {
		setMAC(t, p, nsUnknownMAC)
		env, out := udhcpc(t, bb, p, "-V", "PXEClient:Arch:00000:UNDI:002001", "-x", "93:0000")
		if env != nil {
			t.Fatalf("udhcpc got a lease for an unknown MAC: %v\n%s", env, out)
		}
		e, ok := h.waitEvent(nsUnknownMAC, func(e Event) bool { return e.Message == "DISCOVER" }, 5*time.Second)
		if !ok {
			t.Fatalf("server logged no event for the unknown MAC")
		}
		if e.Answered || !strings.Contains(e.Reason, "unknown MAC") {
			t.Errorf("event %+v: want ignored as unknown", e)
		}
	})
}

// TestRelay: a relayed DISCOVER (giaddr set, sent from port 67 by a Go
// relay agent in the client namespace) is answered to giaddr:67 with the
// node's own subnet, not the server's; garbage sent first gets no answer
// and does not stop the server. Needs root; about 7 s.
func TestRelay(t *testing.T) {
	needRoot(t)
	p := setupPair(t)
	mustRun(t, "ip", "-n", p.cli, "addr", "add", "10.77.9.2/24", "dev", "vc")
	mustRun(t, "ip", "-n", p.cli, "addr", "add", "10.78.5.1/24", "dev", "vc")
	mustRun(t, "ip", "-n", p.srv, "route", "add", "10.78.5.0/24", "via", "10.77.9.2")
	startHelper(t, p.srv, nsServerConfig())

	relay := func(mac, giaddr string, garbage bool) string {
		b, _ := json.Marshal(helperConfig{Mode: "relay", MAC: mac, RelayIP: giaddr, ServerTo: "10.77.9.1", Garbage: garbage})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, "ip", "netns", "exec", p.cli, os.Args[0], "-test.run=^TestHelperProcess$")
		cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("relay helper: %v\n%s", err, out)
		}
		return string(out)
	}
	// Garbage first: no answer, and the server keeps serving.
	out := relay(nsRelayMAC, "10.78.5.1", true)
	if strings.Contains(out, "GARBAGE-ANSWERED") {
		t.Errorf("the server answered garbage: %s", out)
	}
	_, js, ok := strings.Cut(out, "REPLY ")
	if !ok {
		t.Fatalf("relay got no reply: %s", out)
	}
	var r relayResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(js)), &r); err != nil {
		t.Fatal(err)
	}
	want := relayResult{Type: "OFFER", YourIP: "10.78.5.20", Mask: "255.255.255.0", Router: "10.78.5.1",
		ServerIP: "10.77.9.1", Gateway: "10.78.5.1", File: "undionly.kpxe", Hostname: "far01"}
	if r != want {
		t.Errorf("relayed reply %+v, want %+v", r, want)
	}
	// A MAC whose subnet is not the relay's gets nothing.
	if out := relay(nsKnownMAC, "10.78.5.1", false); !strings.Contains(out, "NOREPLY") {
		t.Errorf("relay from the wrong subnet got an answer: %s", out)
	}
}

// TestPerfdhcp: kea's perfdhcp, with all its simulated exchanges using one
// known MAC (-R 1 -b mac=...), gets offers and acks. perfdhcp acts as a
// relay (giaddr = its address), so this exercises the relay path too.
// Needs root and kea's perfdhcp (Debian: kea-admin); about 4 s.
func TestPerfdhcp(t *testing.T) {
	needRoot(t)
	perf := testkit.NeedTool(t, "perfdhcp", "kea-admin")
	p := setupPair(t)
	mustRun(t, "ip", "-n", p.cli, "addr", "add", "10.77.9.2/24", "dev", "vc")
	h := startHelper(t, p.srv, nsServerConfig())

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", p.cli, perf, "-4", "-l", "vc", "-R", "1",
		"-b", "mac="+nsKnownMAC, "-n", "20", "-r", "50", "-p", "3", "10.77.9.1")
	outb, _ := cmd.CombinedOutput() // exit status 3 only means some drops
	out := string(outb)
	if ctx.Err() != nil {
		t.Fatalf("perfdhcp did not finish: %s", out)
	}
	// perfdhcp prints per exchange ("DISCOVER-OFFER", "REQUEST-ACK")
	// "sent packets: N" and "received packets: M".
	recv := regexp.MustCompile(`received packets: (\d+)`).FindAllStringSubmatch(out, -1)
	if len(recv) < 2 {
		t.Fatalf("cannot read perfdhcp's statistics:\n%s", out)
	}
	offers, _ := strconv.Atoi(recv[0][1])
	acks, _ := strconv.Atoi(recv[1][1])
	if offers == 0 || acks == 0 {
		t.Errorf("perfdhcp received %d offers and %d acks, want some of each:\n%s", offers, acks, out)
	}
	h.waitEvent(nsKnownMAC, func(Event) bool { return len(h.eventsFor(nsKnownMAC)) >= offers+acks }, 5*time.Second)
	var answered int
	for _, e := range h.eventsFor(nsKnownMAC) {
		if e.Answered {
			answered++
			if e.Relay != "10.77.9.2" {
				t.Errorf("event %+v: perfdhcp's requests should be seen as relayed by 10.77.9.2", e)
			}
		}
	}
	if answered < offers+acks {
		t.Errorf("server answered %d requests, perfdhcp received %d", answered, offers+acks)
	}
	t.Logf("perfdhcp: %d offers, %d acks received", offers, acks)
}
