package hooks

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/renameio/v2"

	"github.com/onesis/git-onesis/internal/git"
)

// AttributesLine routes .gitmeta through the textconv and merge driver.
// It goes in $GIT_COMMON_DIR/info/attributes, not in the image tree, so
// installing git-onesis adds no file to the image.
const AttributesLine = "/.gitmeta diff=gitmeta merge=gitmeta"

// repoConfig is the local git configuration install writes.
var repoConfig = [][2]string{
	{"onesis.enabled", "true"},
	{"diff.gitmeta.textconv", "git onesis textconv"},
	{"diff.gitmeta.cachetextconv", "false"},
	{"merge.gitmeta.name", "git-onesis structural merge of .gitmeta"},
	{"merge.gitmeta.driver", "git onesis merge-driver %O %A %B %L %P"},
}

// Setup installs the hooks into the repository's hooks directory (resolved
// by git: core.hooksPath, linked worktrees, GIT_DIR), writes the local
// configuration that opts the repository in, and registers the .gitmeta
// attributes. Foreign hooks are refused unless force is set.
func Setup(r *git.Repo, force bool) ([]Result, error) {
	dir, err := r.HooksDir()
	if err != nil {
		return nil, fmt.Errorf("finding the hooks directory: %w", err)
	}
	res, err := Install(dir, force)
	if err != nil {
		return res, err
	}
	for _, kv := range repoConfig {
		if err := r.SetConfig(kv[0], kv[1]); err != nil {
			return res, fmt.Errorf("setting %s: %w", kv[0], err)
		}
	}
	if err := addAttributes(r); err != nil {
		return res, err
	}
	return res, nil
}

// Teardown removes our hooks (leaving foreign ones) and our configuration.
func Teardown(r *git.Repo) ([]Result, error) {
	dir, err := r.HooksDir()
	if err != nil {
		return nil, fmt.Errorf("finding the hooks directory: %w", err)
	}
	res, err := Uninstall(dir)
	if err != nil {
		return res, err
	}
	for _, kv := range repoConfig {
		if err := r.UnsetConfig(kv[0]); err != nil {
			return res, fmt.Errorf("unsetting %s: %w", kv[0], err)
		}
	}
	return res, removeAttributes(r)
}

func attributesPath(r *git.Repo) string { return filepath.Join(r.CommonDir, "info", "attributes") }

func addAttributes(r *git.Repo) error {
	p := attributesPath(r)
	b, err := os.ReadFile(p)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	for _, l := range bytes.Split(b, []byte("\n")) {
		if string(bytes.TrimSpace(l)) == AttributesLine {
			return nil
		}
	}
	if len(b) > 0 && b[len(b)-1] != '\n' {
		b = append(b, '\n')
	}
	b = append(b, AttributesLine+"\n"...)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", filepath.Dir(p), err)
	}
	if err := renameio.WriteFile(p, b, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

func removeAttributes(r *git.Repo) error {
	p := attributesPath(r)
	b, err := os.ReadFile(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	var out []byte
	for _, l := range bytes.SplitAfter(b, []byte("\n")) {
		if string(bytes.TrimSpace(l)) != AttributesLine {
			out = append(out, l...)
		}
	}
	if bytes.Equal(out, b) {
		return nil
	}
	return renameio.WriteFile(p, out, 0o644)
}
