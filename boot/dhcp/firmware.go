package dhcp

import (
	"bytes"
	"strconv"
	"strings"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/iana"
)

// Firmware is what kind of network boot client sent a request, as far as it
// matters for choosing the boot file and the shape of the reply.
type Firmware int

// The firmware kinds we tell apart. FirmwareNone is a client that asked for
// no boot file at all (an OS's own DHCP client, e.g. udhcpc in the initramfs).
// The PXE kinds load their boot file over TFTP; the HTTP kinds are UEFI
// HTTP boot (vendor class "HTTPClient"), which takes a full http:// URL.
const (
	FirmwareNone      Firmware = iota // no option 93, no PXEClient/HTTPClient vendor class
	FirmwareBIOS                      // option 93 = 0: legacy BIOS PXE ROM
	FirmwareEFI32                     // option 93 = 6: UEFI IA32 PXE
	FirmwareEFI64                     // option 93 = 7 or 9: UEFI x64 PXE
	FirmwareARM64                     // option 93 = 11: UEFI arm64 PXE
	FirmwareEFI64HTTP                 // option 93 = 16 (or 17): UEFI x64 HTTP boot
	FirmwareARM64HTTP                 // option 93 = 19: UEFI arm64 HTTP boot
	FirmwareIPXE                      // option 77 user class "iPXE": an iPXE that is already running
	FirmwareUnknown                   // some other option 93 value (e.g. 15, IA32 HTTP boot)
)

// firmwareNames are the names logs, /status, `node list` and serve
// --boot-file use.
var firmwareNames = map[Firmware]string{
	FirmwareNone:      "none",
	FirmwareBIOS:      "bios",
	FirmwareEFI32:     "efi-ia32",
	FirmwareEFI64:     "efi-x64",
	FirmwareARM64:     "efi-arm64",
	FirmwareEFI64HTTP: "efi-x64-http",
	FirmwareARM64HTTP: "efi-arm64-http",
	FirmwareIPXE:      "ipxe",
	FirmwareUnknown:   "unknown",
}

// String names the firmware the way logs and /status show it.
func (f Firmware) String() string {
	if n, ok := firmwareNames[f]; ok {
		return n
	}
	return "unknown"
}

// MarshalText makes JSON show the name ("bios") rather than a number.
func (f Firmware) MarshalText() ([]byte, error) { return []byte(f.String()), nil }

// ParseFirmware turns a name String returns back into a Firmware.
func ParseFirmware(name string) (Firmware, bool) {
	for f, n := range firmwareNames {
		if n == name {
			return f, true
		}
	}
	return 0, false
}

// HTTPBoot reports whether the firmware is UEFI HTTP boot: its boot file
// is a URL, and its replies carry option 60 "HTTPClient".
func (f Firmware) HTTPBoot() bool { return f == FirmwareEFI64HTTP || f == FirmwareARM64HTTP }

// PXE reports whether the firmware is a PXE ROM or UEFI PXE base code,
// which loads its boot file over TFTP.
func (f Firmware) PXE() bool {
	return f == FirmwareBIOS || f == FirmwareEFI32 || f == FirmwareEFI64 || f == FirmwareARM64
}

// UEFIPXE reports whether the firmware is a UEFI PXE base code (EDK2 and
// the vendor stacks derived from it).
func (f Firmware) UEFIPXE() bool {
	return f == FirmwareEFI32 || f == FirmwareEFI64 || f == FirmwareARM64
}

// ClientInfo is what a request says about the client, for logs and for
// Config.Discover.
type ClientInfo struct {
	MAC         string   `json:"mac"`                    // aa:bb:cc:dd:ee:ff
	Message     string   `json:"message"`                // DISCOVER, REQUEST, ...
	Firmware    Firmware `json:"firmware"`               // the boot firmware we recognised
	Arch        []uint16 `json:"arch,omitempty"`         // option 93 values as sent
	VendorClass string   `json:"vendor_class,omitempty"` // option 60
	UserClass   []string `json:"user_class,omitempty"`   // option 77
	Hostname    string   `json:"hostname,omitempty"`     // option 12 the client sent, if any
	Relay       string   `json:"relay,omitempty"`        // giaddr when relayed, else ""
}

// isIPXE reports whether the request comes from a running iPXE: user class
// (option 77) "iPXE", sent by iPXE as a plain string rather than RFC 3004.
func isIPXE(req *dhcpv4.DHCPv4) bool {
	raw := req.Options.Get(dhcpv4.OptionUserClassInformation)
	if raw == nil {
		return false
	}
	if bytes.Equal(raw, []byte("iPXE")) {
		return true
	}
	for _, uc := range req.UserClass() {
		if uc == "iPXE" {
			return true
		}
	}
	return false
}

// Vendor class (option 60) prefixes of network boot firmware.
const (
	pxeClient  = "PXEClient"  // PXE ROMs, UEFI PXE, iPXE
	httpClient = "HTTPClient" // UEFI HTTP boot (UEFI 2.5+ section 24.7)
)

// archs returns the option 93 values; when option 93 is absent it falls back
// to the arch in a "PXEClient:Arch:NNNNN:..." or "HTTPClient:Arch:NNNNN:..."
// vendor class (option 60).
func archs(req *dhcpv4.DHCPv4) []uint16 {
	var out []uint16
	for _, a := range req.ClientArch() {
		out = append(out, uint16(a))
	}
	if len(out) > 0 {
		return out
	}
	vc := req.ClassIdentifier()
	for _, prefix := range []string{pxeClient + ":Arch:", httpClient + ":Arch:"} {
		if strings.HasPrefix(vc, prefix) && len(vc) >= len(prefix)+5 {
			if n, err := strconv.ParseUint(vc[len(prefix):len(prefix)+5], 10, 16); err == nil {
				out = append(out, uint16(n))
			}
		}
	}
	return out
}

// firmwareOf classifies a request. iPXE wins over the architecture: an iPXE
// started from undionly.kpxe still says arch 0, and must not get
// undionly.kpxe again (that would loop); one started by UEFI HTTP boot
// says arch 7 and "PXEClient", not 16.
func firmwareOf(req *dhcpv4.DHCPv4) Firmware {
	if isIPXE(req) {
		return FirmwareIPXE
	}
	as := archs(req)
	if len(as) == 0 {
		if strings.HasPrefix(req.ClassIdentifier(), pxeClient) {
			return FirmwareBIOS // a PXE ROM that did not say its arch is a BIOS one
		}
		if strings.HasPrefix(req.ClassIdentifier(), httpClient) {
			return FirmwareUnknown // HTTP boot without an arch: which binary?
		}
		return FirmwareNone
	}
	switch iana.Arch(as[0]) {
	case iana.INTEL_X86PC:
		return FirmwareBIOS
	case iana.EFI_IA32:
		return FirmwareEFI32
	case iana.EFI_BC, iana.EFI_X86_64:
		return FirmwareEFI64
	case iana.EFI_ARM64:
		return FirmwareARM64
	case iana.EFI_X86_64_HTTP, iana.EFI_BC_HTTP:
		return FirmwareEFI64HTTP
	case iana.EFI_ARM64_HTTP:
		return FirmwareARM64HTTP
	default:
		return FirmwareUnknown
	}
}

func clientInfo(req *dhcpv4.DHCPv4) ClientInfo {
	ci := ClientInfo{
		MAC:         req.ClientHWAddr.String(),
		Message:     msgName(req.MessageType()),
		Firmware:    firmwareOf(req),
		Arch:        archs(req),
		VendorClass: req.ClassIdentifier(),
		Hostname:    req.HostName(),
	}
	if req.Options.Has(dhcpv4.OptionUserClassInformation) {
		ci.UserClass = req.UserClass()
	}
	if !isZero(req.GatewayIPAddr) {
		ci.Relay = req.GatewayIPAddr.String()
	}
	return ci
}

// msgName is the message type without the library's "Discover" casing.
func msgName(t dhcpv4.MessageType) string {
	switch t {
	case dhcpv4.MessageTypeNone:
		return "BOOTP"
	case dhcpv4.MessageTypeDiscover:
		return "DISCOVER"
	case dhcpv4.MessageTypeOffer:
		return "OFFER"
	case dhcpv4.MessageTypeRequest:
		return "REQUEST"
	case dhcpv4.MessageTypeDecline:
		return "DECLINE"
	case dhcpv4.MessageTypeAck:
		return "ACK"
	case dhcpv4.MessageTypeNak:
		return "NAK"
	case dhcpv4.MessageTypeRelease:
		return "RELEASE"
	case dhcpv4.MessageTypeInform:
		return "INFORM"
	default:
		return "TYPE-" + strconv.Itoa(int(t))
	}
}
