package pkgdb

import "sort"

// Kind says how a package changed between two databases.
type Kind string

// The kinds of change, in the order Diff reports them per package.
const (
	Added      Kind = "added"
	Removed    Kind = "removed"
	Upgraded   Kind = "upgraded"
	Downgraded Kind = "downgraded"
)

// Change is one package that differs between two databases.
type Change struct {
	Kind Kind   `json:"kind"`
	Name string `json:"name"`
	Arch string `json:"arch,omitempty"`
	From string `json:"from,omitempty"` // version before; "" when added
	To   string `json:"to,omitempty"`   // version after; "" when removed
}

// Diff compares two package lists (as ParseDpkgStatus returns them) and
// returns the changes sorted by package key. compare orders two versions
// (CompareDebianVersions for dpkg).
func Diff(old, new []Package, compare func(a, b string) int) []Change {
	byKey := make(map[string]Package, len(old))
	for _, p := range old {
		byKey[p.Key()] = p
	}
	seen := make(map[string]bool, len(new))
	var out []Change
	for _, p := range new {
		k := p.Key()
		seen[k] = true
		o, ok := byKey[k]
		switch {
		case !ok:
			out = append(out, Change{Kind: Added, Name: p.Name, Arch: p.Arch, To: p.Version})
		case o.Version == p.Version:
		case compare(o.Version, p.Version) < 0:
			out = append(out, Change{Kind: Upgraded, Name: p.Name, Arch: p.Arch, From: o.Version, To: p.Version})
		default:
			out = append(out, Change{Kind: Downgraded, Name: p.Name, Arch: p.Arch, From: o.Version, To: p.Version})
		}
	}
	for _, p := range old {
		if !seen[p.Key()] {
			out = append(out, Change{Kind: Removed, Name: p.Name, Arch: p.Arch, From: p.Version})
		}
	}
	sortChanges(out)
	return out
}

func sortChanges(cs []Change) {
	key := func(c Change) string {
		return Package{Name: c.Name, Arch: c.Arch}.Key()
	}
	sort.SliceStable(cs, func(i, j int) bool { return key(cs[i]) < key(cs[j]) })
}

// String renders a change the way `git onesis packages diff` prints it:
// "+ name 1.2-1", "- name 1.2-1", "> name 1.2-1 -> 1.3-1" (upgraded),
// "< name 1.3-1 -> 1.2-1" (downgraded).
func (c Change) String() string {
	name := Package{Name: c.Name, Arch: c.Arch}.Key()
	switch c.Kind {
	case Added:
		return "+ " + name + " " + c.To
	case Removed:
		return "- " + name + " " + c.From
	case Upgraded:
		return "> " + name + " " + c.From + " -> " + c.To
	default:
		return "< " + name + " " + c.From + " -> " + c.To
	}
}
