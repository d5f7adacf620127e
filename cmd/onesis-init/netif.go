package main

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// nic is a network interface as sysfs shows it.
type nic struct {
	Name    string
	MAC     net.HardwareAddr
	Carrier bool
}

// listNICs reads /sys/class/net: every interface but loopback, sorted.
func listNICs() []nic {
	ents, _ := os.ReadDir("/sys/class/net")
	var out []nic
	for _, e := range ents {
		n := e.Name()
		if n == "lo" {
			continue
		}
		dir := filepath.Join("/sys/class/net", n)
		if t, _ := os.ReadFile(filepath.Join(dir, "type")); strings.TrimSpace(string(t)) != "1" {
			continue // not Ethernet (ARPHRD_ETHER)
		}
		b, _ := os.ReadFile(filepath.Join(dir, "address"))
		mac, _ := net.ParseMAC(strings.TrimSpace(string(b)))
		c, _ := os.ReadFile(filepath.Join(dir, "carrier"))
		out = append(out, nic{Name: n, MAC: mac, Carrier: strings.TrimSpace(string(c)) == "1"})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// pickNIC chooses the boot interface: the one with BOOTIF's MAC, else
// the first with carrier, else the first. It returns why it chose it.
func pickNIC(nics []nic, bootif net.HardwareAddr) (nic, string, error) {
	if len(nics) == 0 {
		return nic{}, "", errors.New("no Ethernet interface appeared (is the NIC's driver in the initramfs? add it with 'git onesis initramfs -m DRIVER')")
	}
	if bootif != nil {
		for _, n := range nics {
			if strings.EqualFold(n.MAC.String(), bootif.String()) {
				return n, "BOOTIF " + bootif.String(), nil
			}
		}
		var seen []string
		for _, n := range nics {
			seen = append(seen, n.Name+"="+n.MAC.String())
		}
		return nic{}, "", fmt.Errorf("no interface has the BOOTIF address %s (found %s)", bootif, strings.Join(seen, ", "))
	}
	for _, n := range nics {
		if n.Carrier {
			return n, "first interface with carrier", nil
		}
	}
	return nics[0], "first interface (none has carrier yet)", nil
}

// waitNIC waits up to d for the boot interface to appear (drivers probe
// asynchronously), then for carrier on some interface when BOOTIF is not
// given, bringing each link up so carrier can be seen.
func waitNIC(bootif net.HardwareAddr, d time.Duration) (nic, string, error) {
	deadline := time.Now().Add(d)
	for {
		nics := listNICs()
		for _, n := range nics {
			linkUp(n.Name)
		}
		n, why, err := pickNIC(nics, bootif)
		if err == nil && (bootif != nil || n.Carrier) {
			return n, why, nil
		}
		if time.Now().After(deadline) {
			return n, why, err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func ioctlSock() (int, error) {
	return unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
}

// linkUp sets IFF_UP on the interface.
func linkUp(name string) error {
	fd, err := ioctlSock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("reading the flags of %s: %w", name, err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("bringing %s up: %w", name, err)
	}
	return nil
}

// setAddr gives the interface its IPv4 address and netmask (the kernel
// adds the subnet route).
func setAddr(name string, ip net.IP, mask net.IPMask) error {
	fd, err := ioctlSock()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return err
	}
	if err := ifr.SetInet4Addr(ip.To4()); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFADDR, ifr); err != nil {
		return fmt.Errorf("setting address %s on %s: %w", ip, name, err)
	}
	ifr, _ = unix.NewIfreq(name)
	if err := ifr.SetInet4Addr(net.IP(mask).To4()); err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFNETMASK, ifr); err != nil {
		return fmt.Errorf("setting netmask %s on %s: %w", net.IP(mask), name, err)
	}
	return linkUp(name)
}

// addDefaultRoute adds "default via gw dev name" with one rtnetlink
// RTM_NEWROUTE message.
func addDefaultRoute(name string, gw net.IP) error {
	ifc, err := net.InterfaceByName(name)
	if err != nil {
		return err
	}
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	attr := func(typ uint16, data []byte) []byte {
		b := make([]byte, 4, 8)
		binary.NativeEndian.PutUint16(b[0:], uint16(4+len(data)))
		binary.NativeEndian.PutUint16(b[2:], typ)
		b = append(b, data...)
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	oif := make([]byte, 4)
	binary.NativeEndian.PutUint32(oif, uint32(ifc.Index))
	rtm := []byte{unix.AF_INET, 0, 0, 0, unix.RT_TABLE_MAIN, unix.RTPROT_BOOT, unix.RT_SCOPE_UNIVERSE, unix.RTN_UNICAST, 0, 0, 0, 0}
	body := append(rtm, attr(unix.RTA_GATEWAY, gw.To4())...)
	body = append(body, attr(unix.RTA_OIF, oif)...)
	msg := make([]byte, unix.SizeofNlMsghdr, unix.SizeofNlMsghdr+len(body))
	binary.NativeEndian.PutUint32(msg[0:], uint32(unix.SizeofNlMsghdr+len(body)))
	binary.NativeEndian.PutUint16(msg[4:], unix.RTM_NEWROUTE)
	binary.NativeEndian.PutUint16(msg[6:], unix.NLM_F_REQUEST|unix.NLM_F_ACK|unix.NLM_F_CREATE|unix.NLM_F_REPLACE)
	binary.NativeEndian.PutUint32(msg[8:], 1)
	msg = append(msg, body...)
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("adding the default route via %s: %w", gw, err)
	}
	tv := unix.Timeval{Sec: 2}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	buf := make([]byte, 4096)
	n, _, err := unix.Recvfrom(fd, buf, 0)
	if err != nil {
		return fmt.Errorf("adding the default route via %s: no answer from the kernel: %w", gw, err)
	}
	if n >= unix.SizeofNlMsghdr+4 && binary.NativeEndian.Uint16(buf[4:]) == unix.NLMSG_ERROR {
		if e := int32(binary.NativeEndian.Uint32(buf[unix.SizeofNlMsghdr:])); e != 0 {
			return fmt.Errorf("adding the default route via %s: %w", gw, unix.Errno(-e))
		}
	}
	return nil
}

// nextNIC picks the interface for DHCP attempt i (0-based) when no BOOTIF
// says which: round-robin over the interfaces with carrier, or over all
// when none has carrier.
func nextNIC(nics []nic, i int) (nic, bool) {
	var cands []nic
	for _, n := range nics {
		if n.Carrier {
			cands = append(cands, n)
		}
	}
	if len(cands) == 0 {
		cands = nics
	}
	if len(cands) == 0 {
		return nic{}, false
	}
	return cands[i%len(cands)], true
}

// writeNetConf records the boot interface's configuration in
// /run/net-<dev>.conf, in the format klibc ipconfig (and so Debian's
// initramfs-tools) writes, for the image's scripts that look for it. /run
// moves into the new root.
func writeNetConf(dir, dev string, l *lease, host string) error {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", "") + "'" }
	str := func(ip net.IP) string {
		if ip == nil {
			return "0.0.0.0"
		}
		return ip.String()
	}
	var b strings.Builder
	fmt.Fprintf(&b, "DEVICE=%s\nPROTO=%s\nIPV4ADDR=%s\nIPV4BROADCAST=%s\nIPV4NETMASK=%s\nIPV4GATEWAY=%s\n",
		q(dev), q(l.Proto), q(str(l.IP)), q(str(broadcast(l.IP, l.Mask))), q(str(net.IP(l.Mask))), q(str(l.Router)))
	fmt.Fprintf(&b, "HOSTNAME=%s\nDNSDOMAIN=''\nROOTSERVER=%s\nROOTPATH=%s\n", q(host), q(str(l.Server)), q(l.RootPath))
	return os.WriteFile(filepath.Join(dir, "net-"+dev+".conf"), []byte(b.String()), 0o644)
}

func broadcast(ip net.IP, mask net.IPMask) net.IP {
	ip4 := ip.To4()
	if ip4 == nil || len(mask) != 4 {
		return nil
	}
	out := make(net.IP, 4)
	for i := range out {
		out[i] = ip4[i] | ^mask[i]
	}
	return out
}
