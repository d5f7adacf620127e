package image

import (
	"errors"
	"io"
	"os"

	"github.com/onesis/git-onesis/meta"
)

// maxNameFile bounds how much of an image's passwd or group file is read.
const maxNameFile = 16 << 20

// NamesAt loads user and group names from the image's own etc/passwd and
// etc/group at rev, never from the host's. rev "" means the work tree,
// read without following any symlink out of it.
func (im *Image) NamesAt(rev string) *meta.Names {
	var passwd, group []byte
	if rev == "" {
		passwd, group = im.readInTree("etc/passwd"), im.readInTree("etc/group")
	} else {
		passwd, _, _ = im.Git.ShowBlob(rev, "etc/passwd")
		group, _, _ = im.Git.ShowBlob(rev, "etc/group")
	}
	return meta.ParseNames(passwd, group)
}

// readInTree reads a file of the work tree through os.Root, so a symlink
// such as etc/passwd -> /etc/passwd cannot reach the host's file.
func (im *Image) readInTree(name string) []byte {
	r, err := os.OpenRoot(im.Root)
	if err != nil {
		return nil
	}
	defer r.Close()
	f, err := r.Open(name)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxNameFile))
	if err != nil && !errors.Is(err, io.EOF) {
		return nil
	}
	return b
}
