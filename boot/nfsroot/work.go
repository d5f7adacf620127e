package nfsroot

import (
	"errors"

	billy "github.com/go-git/go-billy/v5"
	nfs "github.com/willscott/go-nfs"
)

// workFS is a maintenance export of a directory ("/w/<node>").
type workFS struct {
	billy.Filesystem
}

func (w *workFS) change() billy.Change     { return nil }
func (w *workFS) fsstat(*nfs.FSStat) error { return nil }
func (w *workFS) toHandle([]string) []byte { return make([]byte, handleLen) }
func isWorkHandle(fh []byte) bool          { return false }
func (s *Server) fromWorkHandle([]byte) (billy.Filesystem, []string, error) {
	return nil, nil, errBadHandle
}

func (s *Server) workExport(name string, exp Export) (*workFS, error) {
	return nil, errors.New("maintenance exports are not implemented yet")
}
