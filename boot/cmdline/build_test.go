package cmdline

import (
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// TestRoundTrip: what Build writes, Parse reads back field for field, for
// every shape of boot serve hands out. This is the contract's guard: a
// field added to one side only fails here.
func TestRoundTrip(t *testing.T) {
	mac := net.HardwareAddr{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}
	sha := strings.Repeat("ab", 20)
	tests := []struct {
		name string
		b    Boot
		want Config
	}{
		{"read-only commit", Boot{Initrd: true, MAC: mac, NFSServer: "10.77.0.1", Export: "/c/" + sha, NFSOptions: "port=2049,mountport=2049",
			Commit: sha, Node: "n1"},
			Config{BootIF: mac, IP: "dhcp", Root: &NFSRoot{Server: "10.77.0.1", Path: "/c/" + sha, Options: []string{"port=2049", "mountport=2049"}},
				Hostname: "n1", Node: "n1", Commit: sha, Init: "/sbin/init", Retries: DefaultRetries, Panic: "reboot"}},
		{"maintenance, secrets, console, extra", Boot{MAC: mac, NFSServer: "10.77.0.1", Export: "/w/n2", ReadWrite: true, Commit: sha, Node: "n2",
			Secrets: "http://10.77.0.1:8080/n/n2/secrets", Console: "ttyS0,115200", Extra: "quiet classname=cluster.io onesis.retries=7 onesis.modules=mlx5_core"},
			Config{BootIF: mac, IP: "dhcp", Root: &NFSRoot{Server: "10.77.0.1", Path: "/w/n2"}, ReadWrite: true,
				Hostname: "n2", Node: "n2", Commit: sha, Secrets: "http://10.77.0.1:8080/n/n2/secrets", Class: "cluster.io",
				Init: "/sbin/init", Retries: 7, Panic: "reboot", Modules: []string{"mlx5_core"}}},
		{"knfsd path", Boot{MAC: mac, NFSServer: "10.0.0.5", Export: "/srv/onesis/c/" + sha, Commit: sha, Node: "rack1-n07"},
			Config{BootIF: mac, IP: "dhcp", Root: &NFSRoot{Server: "10.0.0.5", Path: "/srv/onesis/c/" + sha},
				Hostname: "rack1-n07", Node: "rack1-n07", Commit: sha, Init: "/sbin/init", Retries: DefaultRetries, Panic: "reboot"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			line := Build(tc.b)
			got, err := Parse(line)
			if err != nil {
				t.Fatalf("Parse(Build) of %q: %v", line, err)
			}
			if !reflect.DeepEqual(*got, tc.want) {
				t.Errorf("Parse(%q) =\n%+v\nwant\n%+v", line, *got, tc.want)
			}
			if has := strings.HasPrefix(line, "initrd=initrd "); has != tc.b.Initrd {
				t.Errorf("initrd=initrd in %q: %v, want %v", line, has, tc.b.Initrd)
			}
		})
	}
}

// TestReserved: every argument Build writes is reserved or knowingly
// additive, and a node's args cannot set a reserved one.
func TestReserved(t *testing.T) {
	line := Build(Boot{Initrd: true, MAC: net.HardwareAddr{2, 0, 0, 0, 0, 1}, NFSServer: "10.77.0.1", Export: "/c/x", Commit: "x", Node: "n1",
		Secrets: "http://10.77.0.1/n/n1/secrets", Console: "ttyS0"})
	for _, w := range strings.Fields(line) {
		k, _, _ := strings.Cut(w, "=")
		if !slices.Contains(Reserved, k) && !slices.Contains(Additive, k) {
			t.Errorf("Build writes %q, which is neither Reserved nor Additive", w)
		}
	}
	for _, k := range Reserved {
		if err := CheckArgs("quiet " + k + "=x"); err == nil || !strings.Contains(err.Error(), "set by serve") {
			t.Errorf("CheckArgs(%s=x) = %v, want refused", k, err)
		}
	}
	for _, ok := range []string{"", "quiet", "ro quiet console=ttyS1", "classname=a onesis.debug", "hostnamex=1"} {
		if err := CheckArgs(ok); err != nil {
			t.Errorf("CheckArgs(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"a\nb", `x="y"`, "a$b", "a\\b", "a`b"} {
		if err := CheckArgs(bad); err == nil {
			t.Errorf("CheckArgs(%q) accepted", bad)
		}
	}
}
