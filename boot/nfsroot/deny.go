package nfsroot

import (
	"fmt"
	"path"
	"strings"
)

// DefaultDeny is the deny list used when Config.Deny is nil. Every path it
// matches is exported as an empty 0600 root-owned placeholder file; a
// pattern that matches a directory keeps the directory and turns everything
// below it into placeholders. Patterns without a slash match a base name
// anywhere in the tree; patterns with a slash match the whole path (relative
// to the image top, no leading slash). Syntax is path.Match.
var DefaultDeny = []string{
	"etc/shadow*",
	"etc/gshadow*",
	"etc/ssh/ssh_host_*_key",
	"root/.ssh",
	"*.keytab",
	"etc/krb5.keytab",
	"etc/munge/munge.key",
	"etc/ssl/private",
}

// denyList matches image paths against the configured globs.
type denyList struct {
	full []string // patterns with a slash: matched against the whole path
	base []string // patterns without one: matched against the base name
}

func newDenyList(patterns []string) (*denyList, error) {
	if patterns == nil {
		patterns = DefaultDeny
	}
	d := &denyList{}
	for _, p := range patterns {
		p = strings.Trim(strings.TrimSpace(p), "/")
		if p == "" {
			continue
		}
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("deny pattern %q is not a valid glob: %w", p, err)
		}
		if strings.Contains(p, "/") {
			d.full = append(d.full, p)
		} else {
			d.base = append(d.base, p)
		}
	}
	return d, nil
}

// match reports whether the image path p (slash separated, no leading
// slash) is denied by a pattern.
func (d *denyList) match(p string) bool {
	for _, g := range d.full {
		if ok, _ := path.Match(g, p); ok {
			return true
		}
	}
	if len(d.base) > 0 {
		b := path.Base(p)
		for _, g := range d.base {
			if ok, _ := path.Match(g, b); ok {
				return true
			}
		}
	}
	return false
}

// DenyMatcher returns a function that reports whether the image path p
// (slash separated, relative to the image top) matches one of patterns,
// with the same syntax and defaults (nil means DefaultDeny) as the NFS
// server's deny list. It lets other exporters of an image (git onesis
// exports, for a site's knfsd) hide the same secrets.
func DenyMatcher(patterns []string) (func(p string) bool, error) {
	d, err := newDenyList(patterns)
	if err != nil {
		return nil, err
	}
	return d.match, nil
}
