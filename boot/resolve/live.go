package resolve

import (
	"slices"
	"sort"

	"github.com/onesis/git-onesis/boot/inventory"
)

// Live is the set of commits in use, with who uses each: what nodes boot
// next and what each node booted last (its running root). Serve prunes its
// NFS blob store and boot file cache to it, 'git onesis exports' prepares
// and prunes trees by it.
type Live struct {
	// Users maps each commit to who uses it ("branch main", "node n1 (ref
	// testing)", "node n2 (booted)"), sorted.
	Users map[string][]string
	// Warnings are the node refs that name no commit: those nodes boot
	// nothing until the ref is fixed, so they keep nothing.
	Warnings []error
}

// Commits lists the live commits in order.
func (l *Live) Commits() []string {
	out := make([]string, 0, len(l.Users))
	for c := range l.Users {
		out = append(out, c)
	}
	sort.Strings(out)
	return out
}

func (l *Live) use(commit, who string) {
	if !slices.Contains(l.Users[commit], who) {
		l.Users[commit] = append(l.Users[commit], who)
	}
}

// Live returns the commits in use: the default (Default), each node's ref
// (maintenance nodes boot a work tree and add nothing) and each node's
// booted commit (node -> commit, from package booted). Each distinct ref
// is resolved once. When the default cannot be resolved (an unborn HEAD,
// a serve --ref that names nothing) the rest is still returned, with that
// error: the caller decides whether pruning without it is safe.
func (g *Resolver) Live(nodes []*inventory.Node, booted map[string]string) (*Live, error) {
	l := &Live{Users: map[string][]string{}}
	def, defErr := g.Default()
	if defErr == nil {
		l.use(def.Commit, def.From)
	}
	refs := map[string]string{} // ref -> commit ("" when it names none)
	for _, n := range nodes {
		if n.Ref == "" || n.Maintenance != "" {
			continue
		}
		c, seen := refs[n.Ref]
		if !seen {
			r, err := g.Resolve(n)
			if err != nil {
				l.Warnings = append(l.Warnings, err)
			}
			c, refs[n.Ref] = r.Commit, r.Commit
		}
		if c != "" {
			l.use(c, "node "+n.Name+" (ref "+n.Ref+")")
		}
	}
	for node, c := range booted {
		if c != "" {
			l.use(c, "node "+node+" (booted)")
		}
	}
	for _, u := range l.Users {
		sort.Strings(u)
	}
	return l, defErr
}
