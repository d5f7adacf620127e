package image

import (
	"fmt"
	"testing"

	"github.com/onesis/git-onesis/internal/git"
)

func TestPathSet(t *testing.T) {
	for _, n := range []int{0, 1, 7, 8, 9, 1000, 70000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var paths []string
			for i := range n {
				paths = append(paths, fmt.Sprintf("node%02d/etc/file%d", i%7, i))
			}
			// Half the paths as index entries (the second stage of one
			// repeated), the rest as plain paths.
			var entries []git.IndexEntry
			for i, p := range paths[:n/2] {
				entries = append(entries, git.IndexEntry{Path: p, Stage: 1})
				if i == 0 {
					entries = append(entries, git.IndexEntry{Path: p, Stage: 2})
				}
			}
			s := newPathSet(entries, paths[n/2:])
			for _, p := range paths {
				if !s.has(p) {
					t.Fatalf("%q is missing", p)
				}
			}
			for _, p := range []string{"", ".gitmeta", "node00/etc", "node00/etc/file", "node00/etc/file0/", fmt.Sprintf("node%02d/etc/file%d", (n+1)%7, n)} {
				if s.has(p) && !(n > 0 && p == paths[0]) {
					t.Errorf("%q is in a set it was not put in", p)
				}
			}
			// Adding beyond the sized capacity rehashes; adding again
			// changes nothing.
			for i := range 3*n + 20 {
				s.add(fmt.Sprintf("extra/%d", i))
			}
			s.add(".gitmeta")
			s.add(".gitmeta")
			for _, p := range paths {
				s.add(p)
			}
			if want := n + 3*n + 20 + 1; s.len() != want {
				t.Errorf("len %d after the adds, want %d", s.len(), want)
			}
			for _, p := range append(paths, ".gitmeta", "extra/0", fmt.Sprintf("extra/%d", 3*n+19)) {
				if !s.has(p) {
					t.Fatalf("%q is missing after the adds", p)
				}
			}
			if s.has(fmt.Sprintf("extra/%d", 3*n+20)) {
				t.Error("a path never added is in the set")
			}
		})
	}
}
