package serve

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	gogit "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/filemode"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/google/renameio/v2"

	"github.com/onesis/git-onesis/boot/httpboot"
	"github.com/onesis/git-onesis/boot/integrity"
	bootkernel "github.com/onesis/git-onesis/boot/kernel"
	"github.com/onesis/git-onesis/internal/git"
	"github.com/onesis/git-onesis/internal/gitfs"
)

// GitArtifacts serves a commit's kernel and initramfs. The kernel is the
// one package kernel picks (boot/vmlinuz, else vmlinuz, else the newest
// boot/vmlinuz-*; its version from its own header) and the initramfs
// holds that version's modules; both are read with go-git, never from the
// work tree, and symlinks are followed only inside the commit's tree. Both are
// cached content-addressed under StateDir: kernels by blob id, initramfs
// images by (the kernel's modules tree, the firmware tree, kernel version,
// builder key), so a
// new commit that changes neither reuses the same initramfs.
type GitArtifacts struct {
	StateDir string
	Builder  InitrdBuilder // nil: initrd requests fail with a clear error (tests)
	// Report is told of every cached kernel or initramfs found not to be
	// what it should be (moved aside and built again, or not).
	Report func(integrity.Report)
	// SkipVerify serves cached files without verifying them: only for
	// benchmarks measuring what verification costs.
	SkipVerify bool

	repo    *gogit.Repository
	mu      sync.Mutex         // go-git object access, kernels
	kernels map[string]*kernel // by commit: a commit's kernel never changes
	locks   sync.Map           // cache key -> *sync.Mutex
	check   cacheCheck
}

// maxKernels bounds the commits whose kernel findKernel remembers (a boot
// storm asks for a few commits thousands of times).
const maxKernels = 1024

// NewGitArtifacts opens the repository at repoDir with go-git.
func NewGitArtifacts(repoDir, stateDir string, b InitrdBuilder) (*GitArtifacts, error) {
	if f, err := integrity.ObjectFormat(repoDir); err == nil && f != "sha1" {
		return nil, fmt.Errorf("%s uses %s object ids; serve reads only SHA-1 repositories (go-git)", repoDir, f)
	}
	r, err := gogit.PlainOpenWithOptions(repoDir, &gogit.PlainOpenOptions{DetectDotGit: true, EnableDotGitCommonDir: true})
	if err != nil {
		return nil, fmt.Errorf("opening %s to read kernels: %w", repoDir, err)
	}
	return &GitArtifacts{StateDir: stateDir, Builder: b, repo: r, check: cacheCheck{memo: integrity.NewMemo[string]()}}, nil
}

// kernel is a commit's kernel, as package kernel chose it.
type kernel struct {
	path, kver string
	blob       plumbing.Hash
	when       time.Time
	tree       *object.Tree
}

// findKernel locates the kernel of commit with kernel.Find, the choice
// initramfs makes too.
func (a *GitArtifacts) findKernel(commit string) (*kernel, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k := a.kernels[commit]; k != nil {
		return k, nil
	}
	k, err := a.readKernel(commit)
	if err != nil {
		return nil, err
	}
	if a.kernels == nil || len(a.kernels) >= maxKernels {
		a.kernels = map[string]*kernel{}
	}
	a.kernels[commit] = k
	return k, nil
}

// readKernel is findKernel without the memo; a.mu is held.
func (a *GitArtifacts) readKernel(commit string) (*kernel, error) {
	c, err := a.repo.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	tree, err := c.Tree()
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", commit, err)
	}
	fsys, err := gitfs.New(a.repo).FS(commit)
	if err != nil {
		return nil, err
	}
	found, err := bootkernel.Find(fsys)
	if errors.Is(err, bootkernel.ErrNoKernel) {
		return nil, fmt.Errorf("commit %.12s: %w: %w", commit, err, httpboot.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("commit %.12s: %w", commit, err)
	}
	e, err := tree.FindEntry(found.Path)
	if err != nil {
		return nil, fmt.Errorf("commit %.12s: %s: %w", commit, found.Path, err)
	}
	return &kernel{path: found.Path, kver: found.Version, blob: e.Hash, when: c.Committer.When, tree: tree}, nil
}

func (a *GitArtifacts) lock(key string) func() {
	m, _ := a.locks.LoadOrStore(key, &sync.Mutex{})
	mu := m.(*sync.Mutex)
	mu.Lock()
	return mu.Unlock
}

// Kernel implements httpboot.Artifacts.
func (a *GitArtifacts) Kernel(ctx context.Context, commit string) (*httpboot.Blob, error) {
	k, err := a.findKernel(commit)
	if err != nil {
		return nil, err
	}
	e := a.kernelEntry(k.blob.String())
	unlock := a.lock(e.path)
	defer unlock()
	f, id, err := a.openVerified(e)
	if err != nil {
		return nil, err
	}
	return a.servedBlob(f, id, k.blob.String(), k.when), nil
}

func (a *GitArtifacts) writeBlob(p string, h plumbing.Hash) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	b, err := a.repo.BlobObject(h)
	if err != nil {
		return fmt.Errorf("reading kernel blob %s: %w", h, err)
	}
	r, err := b.Reader()
	if err != nil {
		return fmt.Errorf("reading kernel blob %s: %w", h, err)
	}
	defer r.Close()
	return writeAtomic(p, func(w io.Writer) error { _, err := io.Copy(w, r); return err })
}

// writeAtomic creates p through a temporary file renamed into place.
func writeAtomic(p string, fill func(io.Writer) error) error {
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating the cache directory: %w", err)
	}
	t, err := renameio.TempFile("", p)
	if err != nil {
		return fmt.Errorf("caching %s: %w", p, err)
	}
	defer t.Cleanup()
	if err := fill(t); err != nil {
		return fmt.Errorf("caching %s: %w", p, err)
	}
	if err := t.Chmod(0o644); err != nil {
		return err
	}
	return t.CloseAtomicallyReplace()
}

// servedBlob is a verified cache file as httpboot serves it.
func (a *GitArtifacts) servedBlob(f *os.File, id integrity.Identity, hash string, when time.Time) *httpboot.Blob {
	if a.SkipVerify {
		return &httpboot.Blob{Content: f, Size: id.Size, Hash: hash, ModTime: when}
	}
	return &httpboot.Blob{Content: newCheckedFile(f, id), Size: id.Size, Hash: hash, ModTime: when}
}

// treeID returns the tree id of the first of paths that is a directory in
// t ("none" when none is).
func treeID(t *object.Tree, paths ...string) string {
	for _, p := range paths {
		if e, err := t.FindEntry(p); err == nil && e.Mode == filemode.Dir {
			return e.Hash.String()
		}
	}
	return "none"
}

// initrdKey returns the cache key of commit's initramfs.
func (a *GitArtifacts) initrdKey(commit string) (string, *kernel, error) {
	if a.Builder == nil {
		return "", nil, errors.New("no initramfs builder was provided (Factories.Initrd)")
	}
	k, err := a.findKernel(commit)
	if err != nil {
		return "", nil, err
	}
	a.mu.Lock()
	// What the initramfs takes from the image: the kernel's modules and
	// the firmware they declare.
	mods := treeID(k.tree, "usr/lib/modules/"+k.kver, "lib/modules/"+k.kver)
	fw := treeID(k.tree, "usr/lib/firmware", "lib/firmware")
	a.mu.Unlock()
	sum := sha256.Sum256([]byte("onesis-initrd-v2\n" + mods + "\n" + fw + "\n" + k.kver + "\n" + a.Builder.Key() + "\n"))
	return hex.EncodeToString(sum[:]), k, nil
}

// Initrd implements httpboot.Artifacts: built once per cache key.
func (a *GitArtifacts) Initrd(ctx context.Context, commit string) (*httpboot.Blob, error) {
	key, k, err := a.initrdKey(commit)
	if err != nil {
		return nil, err
	}
	var sum string
	e := a.initrdEntry(key, func() error {
		var err error
		sum, err = a.buildInitrd(ctx, commit, k.kver, filepath.Join(a.StateDir, "initrd", key))
		return err
	})
	unlock := a.lock(e.path)
	defer unlock()
	f, id, err := a.openVerified(e)
	if err != nil {
		return nil, err
	}
	if sum == "" {
		w, _, _ := e.want()
		sum = w.SHA256
	}
	return a.servedBlob(f, id, sum, k.when), nil
}

// buildInitrd builds commit's initramfs into p and records its sha256 in
// p.sha256; the caller holds a.lock(p).
func (a *GitArtifacts) buildInitrd(ctx context.Context, commit, kver, p string) (string, error) {
	// The build outlives the request that started it: other nodes may be
	// waiting for the same image.
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
	defer cancel()
	h := sha256.New()
	err := writeAtomic(p, func(w io.Writer) error {
		return a.Builder.Build(bctx, commit, kver, io.MultiWriter(w, h))
	})
	if err != nil {
		return "", fmt.Errorf("building the initramfs of %.12s: %w", commit, err)
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := renameio.WriteFile(p+".sha256", []byte(sum+"\n"), 0o644); err != nil {
		return "", err
	}
	return sum, nil
}

// Prune removes cached kernels (blobs/<blob id>) and initramfs images
// (initrd/<key> and its .sha256) that none of keep's commits uses, so the
// cache does not grow with every kernel ever served. A removed file is
// built again if its commit is ever asked for. Each file is removed under
// the lock Kernel and Initrd hold while they build and open it, so a
// request in progress is never cut short; files that are not the cache's
// own (temporary files, anything else) are left alone. A keep commit
// without a kernel keeps nothing.
func (a *GitArtifacts) Prune(keep []string) (removed int, freed int64, err error) {
	want := map[string]bool{}
	for _, c := range keep {
		var k *kernel
		if a.Builder != nil {
			key, kk, err := a.initrdKey(c) // finds the kernel too
			if err != nil {
				continue
			}
			want[filepath.Join(a.StateDir, "initrd", key)] = true
			k = kk
		} else if k, err = a.findKernel(c); err != nil {
			continue
		}
		want[filepath.Join(a.StateDir, "blobs", k.blob.String())] = true
	}
	for _, sub := range []struct {
		dir  string
		name func(string) (string, bool) // file name -> the cache entry it belongs to
	}{
		{"blobs", func(n string) (string, bool) { return n, git.IsOID(n) }},
		{"initrd", func(n string) (string, bool) {
			// Keys are hex sha256 sums.
			base := strings.TrimSuffix(n, ".sha256")
			return base, len(base) == 64 && strings.Trim(base, "0123456789abcdef") == ""
		}},
	} {
		dir := filepath.Join(a.StateDir, sub.dir)
		ents, err := os.ReadDir(dir)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return removed, freed, fmt.Errorf("pruning the boot file cache: %w", err)
		}
		for _, e := range ents {
			entry, ours := sub.name(e.Name())
			if !ours || !e.Type().IsRegular() {
				continue
			}
			p := filepath.Join(dir, entry)
			if want[p] {
				continue
			}
			info, err := e.Info()
			if err != nil {
				continue
			}
			unlock := a.lock(p)
			err = os.Remove(filepath.Join(dir, e.Name()))
			unlock()
			if err == nil {
				removed++
				freed += info.Size()
			} else if !errors.Is(err, os.ErrNotExist) {
				return removed, freed, fmt.Errorf("pruning the boot file cache: %w", err)
			}
		}
	}
	return removed, freed, nil
}
