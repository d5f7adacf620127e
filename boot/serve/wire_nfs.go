package serve

// The adapters from serve to packages nfsroot and portmap (helper NFS). The
// lead removes the build tag when the branches merge.

import (
	"errors"
	"net"

	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/boot/portmap"
)

func init() {
	Wired.NFS = newNFS
	Wired.Portmap = portmap.Serve
}

// nfsServer adapts *nfsroot.Server to NFSServer.
type nfsServer struct{ *nfsroot.Server }

func (n nfsServer) Prune(keep []string) (PruneResult, error) {
	st, err := n.Server.Prune(keep)
	if errors.Is(err, nfsroot.ErrStoreBusy) {
		return PruneResult{Busy: true}, nil
	}
	return PruneResult{Commits: st.Commits, Kept: st.Kept, KeptBytes: st.KeptBytes, Removed: st.Removed, Freed: st.Freed}, err
}

func newNFS(p NFSParams) (NFSServer, error) {
	srv, err := nfsroot.New(nfsroot.Config{
		RepoDir:  p.RepoDir,
		StateDir: p.StateDir,
		Deny:     p.Deny,
		Logger:   p.Logger,
		Authorize: func(client net.IP, export string) (nfsroot.Export, bool) {
			e, ok := p.Authorize(client, export)
			return nfsroot.Export{Commit: e.Commit, Dir: e.Dir, ReadWrite: e.ReadWrite}, ok
		},
	})
	if err != nil {
		return nil, err
	}
	return nfsServer{srv}, nil
}
