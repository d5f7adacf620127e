package serve

// The adapters from serve to packages nfsroot and portmap (helper NFS). The
// lead removes the build tag when the branches merge.

import (
	"net"

	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/boot/portmap"
)

func init() {
	Wired.NFS = newNFS
	Wired.Portmap = portmap.Serve
}

func newNFS(p NFSParams) (NFSServer, error) {
	return nfsroot.New(nfsroot.Config{
		RepoDir:  p.RepoDir,
		StateDir: p.StateDir,
		Deny:     p.Deny,
		Logger:   p.Logger,
		Authorize: func(client net.IP, export string) (nfsroot.Export, bool) {
			e, ok := p.Authorize(client, export)
			return nfsroot.Export{Commit: e.Commit, Dir: e.Dir, ReadWrite: e.ReadWrite}, ok
		},
	})
}
