package serve

// The adapter from serve to package nfsroot.

import (
	"github.com/onesis/git-onesis/boot/gitobjects"
	"github.com/onesis/git-onesis/boot/nfsroot"
)

func newNFS(p NFSParams) (NFSServer, error) {
	objs, err := gitobjects.Open(p.RepoDir)
	if err != nil {
		return nil, err
	}
	srv, err := nfsroot.New(nfsroot.Config{
		Objects:   objs,
		StateDir:  p.StateDir,
		Deny:      p.Deny,
		Logger:    p.Logger,
		Authorize: p.Authorize,
		Report:    p.Report, SkipVerify: p.SkipVerify,
	})
	if err != nil {
		return nil, err
	}
	return srv, nil
}
