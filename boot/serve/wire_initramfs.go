package serve

// The adapter from serve to packages initramfs and gitfs.

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/onesis/git-onesis/boot/initramfs"
	"github.com/onesis/git-onesis/internal/gitfs"
)

type initrdBuilder struct {
	mu      sync.Mutex
	repo    *gitfs.Repo
	init    []byte
	key     string
	modules []string
}

func newInitrd(p InitrdParams) (InitrdBuilder, error) {
	path, err := initramfs.LocateInit(p.InitPath)
	if err != nil {
		return nil, err
	}
	bin, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading the init binary: %w", err)
	}
	repo, err := gitfs.Open(p.RepoDir)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(bin)
	key := "modules=" + strings.Join(p.Modules, ",") + " defaults=" + strings.Join(initramfs.DefaultModules, ",") +
		" init=" + hex.EncodeToString(sum[:])
	return &initrdBuilder{repo: repo, init: bin, key: key, modules: p.Modules}, nil
}

// Key implements InitrdBuilder.
func (b *initrdBuilder) Key() string { return b.key }

// Build implements InitrdBuilder with initramfs.Build over the commit's tree.
func (b *initrdBuilder) Build(ctx context.Context, commit, kver string, w io.Writer) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	fsys, err := b.repo.FS(commit)
	if err != nil {
		return err
	}
	_, err = initramfs.Build(w, initramfs.Options{Image: fsys, KernelVersion: kver, Modules: b.modules, Init: b.init})
	return err
}
