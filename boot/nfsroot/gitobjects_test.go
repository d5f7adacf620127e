package nfsroot_test

import (
	"github.com/onesis/git-onesis/boot/gitobjects"
	"github.com/onesis/git-onesis/boot/nfsroot"
)

// The package's tests serve real git repositories through boot/gitobjects
// (see export_test.go).
func init() {
	nfsroot.OpenGitForTest = func(dir string) (nfsroot.Objects, error) { return gitobjects.Open(dir) }
}
