package tftp

import (
	"path"
	"strings"
	"testing"
)

// FuzzTFTPName checks the name sanitiser: whatever a client sends, an
// accepted name is relative, clean, has no ".." element, no control bytes,
// and cleaning it again changes nothing.
func FuzzTFTPName(f *testing.F) {
	for _, s := range []string{"undionly.kpxe", "/snponly.efi", "../../etc/shadow", "pxelinux.cfg/../../x",
		"/etc/passwd", "a//b/./c", "..", "\x00", `..\..\x`, "pxelinux.cfg/01-52-54-00-12-34-56"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, ok := cleanName(raw)
		if !ok {
			if name != "" {
				t.Fatalf("refused %q but returned %q", raw, name)
			}
			return
		}
		if name == "" || strings.HasPrefix(name, "/") || path.Clean(name) != name {
			t.Fatalf("cleanName(%q) = %q: not a clean relative name", raw, name)
		}
		for _, el := range strings.Split(name, "/") {
			if el == ".." || el == "." || el == "" {
				t.Fatalf("cleanName(%q) = %q has element %q", raw, name, el)
			}
		}
		for i := 0; i < len(name); i++ {
			if name[i] < 0x20 || name[i] == 0x7f || name[i] == '\\' {
				t.Fatalf("cleanName(%q) = %q has byte %#x", raw, name, name[i])
			}
		}
		if again, ok := cleanName(name); !ok || again != name {
			t.Fatalf("cleanName not idempotent: %q -> %q -> %q, %v", raw, name, again, ok)
		}
	})
}
