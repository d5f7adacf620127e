package personality

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/onesis/git-onesis/boot/sysimage"
)

// Expand turns an absolute RAM*/LINK* path into the image-relative paths it
// names. A path without glob characters is returned as is (it need not
// exist). A glob is matched against the image component by component, as a
// shell would: braces expand first, a wildcard does not match a leading dot
// unless the pattern's component starts with one, and only real directories
// are descended into (never a symlink). Names ending in ".default" are the
// variants the transform made, so a wildcard never matches them unless the
// pattern itself says ".default". The result is sorted and free of
// duplicates; a glob matching nothing gives no paths and no error.
func Expand(img Image, pattern string) ([]string, error) {
	if !sysimage.HasGlob(pattern) {
		p, err := Rel(pattern)
		if err != nil {
			return nil, err
		}
		return []string{p}, nil
	}
	alts, err := sysimage.ExpandBraces(pattern)
	if err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, a := range alts {
		rel, err := Rel(a)
		if err != nil {
			return nil, err
		}
		if rel == "." {
			continue
		}
		matches, err := matchComponents(img, ".", strings.Split(rel, "/"))
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", pattern, err)
		}
		for _, m := range matches {
			if !seen[m] {
				seen[m] = true
				out = append(out, m)
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// matchComponents matches comps below the real directory dir.
func matchComponents(img Image, dir string, comps []string) ([]string, error) {
	c, rest := comps[0], comps[1:]
	var names []string
	if !strings.ContainsAny(c, "*?[]") {
		names = []string{c}
	} else {
		all, err := img.ReadDir(dir)
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrParentSymlink) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		for _, n := range all {
			if n[0] == '.' && c[0] != '.' {
				continue
			}
			if strings.HasSuffix(n, ".default") && !strings.Contains(c, ".default") {
				continue
			}
			ok, err := path.Match(c, n)
			if err != nil {
				return nil, err
			}
			if ok {
				names = append(names, n)
			}
		}
	}
	var out []string
	for _, n := range names {
		p := n
		if dir != "." {
			p = dir + "/" + n
		}
		in, err := img.Lstat(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) || errors.Is(err, ErrParentSymlink) {
				continue
			}
			return nil, err
		}
		if len(rest) == 0 {
			out = append(out, p)
			continue
		}
		if !in.IsDir() {
			continue
		}
		sub, err := matchComponents(img, p, rest)
		if err != nil {
			return nil, err
		}
		out = append(out, sub...)
	}
	return out, nil
}
