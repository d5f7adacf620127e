package bootsim

import (
	"strings"
	"testing"
)

const c40 = "0123456789abcdef0123456789abcdef01234567"

func TestParseScript(t *testing.T) {
	base := "http://10.77.0.1:8080/c/" + c40
	tests := []struct {
		name, text string
		want       Script
		err        string
	}{
		{"serve's script", "#!ipxe\n# git-onesis: node n1 boots commit " + c40 + "\necho booting\nkernel " + base + "/kernel initrd=initrd onesis.commit=" + c40 + " ro\ninitrd --name initrd " + base + "/initrd\nboot\n",
			Script{Kernel: base + "/kernel", Cmdline: "initrd=initrd onesis.commit=" + c40 + " ro", Initrd: base + "/initrd"}, ""},
		{"CRLF and plain initrd", "#!ipxe\r\nkernel http://s/k a=b\r\ninitrd http://s/i\r\nboot\r\n",
			Script{Kernel: "http://s/k", Cmdline: "a=b", Initrd: "http://s/i"}, ""},
		{"not ipxe", "#!/bin/sh\nkernel x\n", Script{}, "not an iPXE script"},
		{"empty", "", Script{}, "not an iPXE script"},
		{"no kernel", "#!ipxe\ninitrd http://s/i\nboot\n", Script{}, "no kernel"},
		{"no initrd", "#!ipxe\nkernel http://s/k\nboot\n", Script{}, "no initrd"},
		{"no boot", "#!ipxe\nkernel http://s/k\ninitrd http://s/i\n", Script{}, "no boot"},
		{"two kernels", "#!ipxe\nkernel http://s/k\nkernel http://s/k2\n", Script{}, "second kernel"},
		{"initrd without url", "#!ipxe\nkernel http://s/k\ninitrd --name initrd\nboot\n", Script{}, "without a URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseScript(tt.text)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestCommitOf(t *testing.T) {
	tests := []struct {
		url, want string
		ok        bool
	}{
		{"http://10.77.0.1:8080/c/" + c40 + "/kernel", c40, true},
		{"http://10.77.0.1:8080/c/" + c40 + "/initrd", c40, true},
		{"http://h/c/" + strings.ToUpper(c40) + "/kernel", "", false},
		{"http://h/c/abc/kernel", "", false},
		{"http://h/x/" + c40 + "/kernel", "", false},
		{"http://h/c/" + c40 + "/a/kernel", "", false},
	}
	for _, tt := range tests {
		got, err := CommitOf(tt.url)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("CommitOf(%q) = %q, %v", tt.url, got, err)
		}
	}
}

func TestGitBlobID(t *testing.T) {
	// git hash-object /dev/null and of "hello\n".
	for in, want := range map[string]string{"": "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391", "hello\n": "ce013625030ba8dba906f756967f9e9ca394464a"} {
		if got := GitBlobID([]byte(in)); got != want {
			t.Errorf("GitBlobID(%q) = %s, want %s", in, got, want)
		}
	}
}

func TestParsePXELinux(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       PXELinuxConfig
		err        bool
	}{
		{"git-onesis", "# git-onesis: node n1\nDEFAULT onesis\nLABEL onesis\n  KERNEL c/abc/kernel\n  INITRD c/abc/initrd\n  APPEND ip=dhcp ro\n",
			PXELinuxConfig{Kernel: "c/abc/kernel", Initrd: "c/abc/initrd", Append: "ip=dhcp ro"}, false},
		{"initrd on append, lower case", "default linux\nlabel linux\n linux vmlinuz\n append initrd=initrd.img quiet\n",
			PXELinuxConfig{Kernel: "vmlinuz", Initrd: "initrd.img", Append: "initrd=initrd.img quiet"}, false},
		{"no initrd", "KERNEL vmlinuz\nAPPEND quiet\n", PXELinuxConfig{}, true},
		{"empty", "", PXELinuxConfig{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParsePXELinux(tc.text)
			if (err != nil) != tc.err || (!tc.err && got != tc.want) {
				t.Errorf("ParsePXELinux = %+v, %v; want %+v (error %v)", got, err, tc.want, tc.err)
			}
		})
	}
}
