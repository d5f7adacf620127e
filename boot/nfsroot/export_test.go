package nfsroot

import "testing"

// OpenGitForTest opens a git repository as Objects. The tests of this
// package serve real git repositories, but package boot/gitobjects imports
// this one, so only an external test file (gitobjects_test.go) may import
// it: it sets this in its init.
var OpenGitForTest func(dir string) (Objects, error)

// openGit opens the repository at dir for a server under test.
func openGit(t testing.TB, dir string) Objects {
	t.Helper()
	objs, err := OpenGitForTest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}
