package main

import (
	"sort"
	"strings"

	"github.com/urfave/cli/v2"
)

// similar returns the names among cmds (visible commands and their
// aliases) closest to a mistyped name, for git's "The most similar command
// is" hint: those at the smallest edit distance (a swap of two neighbouring
// letters counts as one edit) if it is small for the name's length, else
// those the name is a prefix of. None when nothing is close.
func similar(name string, cmds []*cli.Command) []string {
	if name == "" {
		return nil
	}
	limit := max(1, len(name)/3)
	best, bestD := []string{}, limit+1
	var prefixed []string
	seen := map[string]bool{}
	for _, c := range cmds {
		if c.Hidden {
			continue
		}
		for _, n := range append([]string{c.Name}, c.Aliases...) {
			if seen[n] {
				continue
			}
			seen[n] = true
			switch d := editDistance(name, n); {
			case d > limit:
			case d < bestD:
				best, bestD = []string{n}, d
			case d == bestD:
				best = append(best, n)
			}
			if strings.HasPrefix(n, name) {
				prefixed = append(prefixed, n)
			}
		}
	}
	if len(best) == 0 {
		best = prefixed
	}
	sort.Strings(best)
	return best
}

// suggestion is the hint printed after an unknown command's error, or "".
func suggestion(name string, cmds []*cli.Command) string {
	s := similar(name, cmds)
	switch len(s) {
	case 0:
		return ""
	case 1:
		return "\n\nThe most similar command is\n\t" + s[0]
	}
	return "\n\nThe most similar commands are\n\t" + strings.Join(s, "\n\t")
}

// editDistance is the optimal-string-alignment distance between a and b:
// insertions, deletions, substitutions and swaps of adjacent bytes, each
// one edit.
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}
