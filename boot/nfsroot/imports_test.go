package nfsroot

import (
	"os/exec"
	"strings"
	"testing"
)

// TestProtocolPackagesKnowNoGit keeps the protocol packages free of git
// (issue 18): none of them may import go-git, internal/git or
// internal/gitfs, nor reach them through another package. Git is read by
// the packages serve wires in (boot/gitobjects for nfsroot, boot/invref for
// the inventory httpboot reads).
func TestProtocolPackagesKnowNoGit(t *testing.T) {
	const mod = "github.com/onesis/git-onesis/"
	forbidden := []string{"github.com/go-git/go-git/", mod + "internal/git", mod + "internal/gitfs", mod + "boot/gitobjects", mod + "boot/invref"}
	for _, tc := range []struct {
		pkg  string
		deps bool // every package it depends on, not only its own imports
	}{
		{"boot/nfsroot", true},
		{"boot/dhcp", true},
		{"boot/tftp", true},
		{"boot/portmap", true},
		{"boot/httpboot", true},
		{"boot/inventory", true}, // the node records httpboot reads; invref stores them in git
	} {
		args := []string{"list", "-f", `{{join .Imports "\n"}}`, mod + tc.pkg}
		if tc.deps {
			args = []string{"list", "-deps", mod + tc.pkg}
		}
		out, err := exec.Command("go", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		lines := strings.Fields(string(out))
		if len(lines) < 2 {
			t.Fatalf("go %s listed %q: too little to be its imports", strings.Join(args, " "), out)
		}
		for _, imp := range lines {
			for _, f := range forbidden {
				if imp == f || strings.HasPrefix(imp, f) && (strings.HasSuffix(f, "/") || strings.HasPrefix(imp[len(f):], "/")) {
					t.Errorf("%s depends on %s: a protocol package must know nothing of git", tc.pkg, imp)
				}
			}
		}
	}
}
