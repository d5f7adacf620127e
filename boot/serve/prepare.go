package serve

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/nfsroot"
	"github.com/onesis/git-onesis/internal/git"
)

// PrepareOptions say where serve keeps its state, so Prepare fills the
// same caches a running serve reads.
type PrepareOptions struct {
	RepoDir  string
	StateDir string // "" = DefaultStateDir
	InitPath string // onesis-init; "" = next to git-onesis
	Modules  []string
	Deny     []string
	NoNFS    bool // skip the NFS blob store
	NoInitrd bool // skip the kernel and initramfs cache
	Logger   *slog.Logger
}

// Prepared says what Prepare did for one commit.
type Prepared struct {
	Commit string
	Kernel int64 // bytes; 0 when skipped
	Initrd int64
	NFS    bool
}

// Prepare materialises commits before any node asks for them: the NFS blob
// store and index, the kernel and the initramfs, exactly as a running
// serve would at a node's first script fetch. A boot server that follows
// a central repository runs it after each fetch (git onesis sync), so a
// boot storm after an upgrade finds everything built. Work already done
// for a commit is not repeated; the cost of a new commit grows with its
// difference from those already prepared.
func Prepare(ctx context.Context, o PrepareOptions, f Factories, commits []string) ([]Prepared, error) {
	r, err := git.Discover(o.RepoDir)
	if err != nil {
		return nil, err
	}
	if o.StateDir == "" {
		o.StateDir = DefaultStateDir(r)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	var art *GitArtifacts
	if !o.NoInitrd {
		if f.Initrd == nil {
			return nil, fmt.Errorf("this build has no initramfs builder")
		}
		b, err := f.Initrd(InitrdParams{RepoDir: o.RepoDir, InitPath: o.InitPath, Modules: o.Modules})
		if err != nil {
			return nil, fmt.Errorf("the initramfs builder: %w", err)
		}
		if art, err = NewGitArtifacts(o.RepoDir, o.StateDir, b); err != nil {
			return nil, err
		}
	}
	var nfs NFSServer
	if !o.NoNFS {
		if f.NFS == nil {
			return nil, fmt.Errorf("this build has no NFS server")
		}
		nfs, err = f.NFS(NFSParams{RepoDir: o.RepoDir, StateDir: filepath.Join(o.StateDir, "nfs"),
			// Nothing is served here: no client may mount.
			Authorize: func(net.IP, string) (nfsroot.Export, bool) { return nfsroot.Export{}, false },
			Deny:      o.Deny, Event: func(httpboot.Event) {}, Logger: o.Logger})
		if err != nil {
			return nil, fmt.Errorf("opening the NFS blob store: %w", err)
		}
		defer nfs.Close()
	}
	var out []Prepared
	for _, c := range commits {
		p := Prepared{Commit: c}
		if art != nil {
			k, err := art.Kernel(ctx, c)
			if err != nil {
				return out, fmt.Errorf("commit %s: the kernel: %w", short(c), err)
			}
			p.Kernel = k.Size
			k.Content.Close()
			i, err := art.Initrd(ctx, c)
			if err != nil {
				return out, fmt.Errorf("commit %s: the initramfs: %w", short(c), err)
			}
			p.Initrd = i.Size
			i.Content.Close()
		}
		if nfs != nil {
			if err := nfs.Prepare(ctx, c); err != nil {
				return out, fmt.Errorf("commit %s: the NFS export: %w", short(c), err)
			}
			p.NFS = true
		}
		out = append(out, p)
	}
	return out, nil
}

func short(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}
