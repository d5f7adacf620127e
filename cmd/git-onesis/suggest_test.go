package main

import (
	"slices"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestEditDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"status", "status", 0}, {"stauts", "status", 1}, {"recrod", "record", 1},
		{"statu", "status", 1}, {"xstatus", "status", 1}, {"stxtus", "status", 1},
		{"", "ls", 2}, {"abc", "cba", 2}, {"kitten", "sitting", 3},
	} {
		if got := editDistance(tc.a, tc.b); got != tc.want {
			t.Errorf("editDistance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestSimilar(t *testing.T) {
	cmds := []*cli.Command{
		{Name: "status", Aliases: []string{"st"}}, {Name: "start"}, {Name: "record"},
		{Name: "ls"}, {Name: "secret", Hidden: true}, {Name: "list"},
	}
	for _, tc := range []struct {
		name string
		want []string
	}{
		{"stauts", []string{"status"}},
		{"stat", []string{"start"}},
		{"reco", []string{"record"}}, // none one edit away: those it begins
		{"recrod", []string{"record"}},
		{"lst", []string{"list", "ls", "st"}},
		{"secert", nil}, // hidden commands are never suggested
		{"xyzzy", nil},
		{"", nil},
	} {
		got := similar(tc.name, cmds)
		if len(got) == 0 {
			got = nil
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("similar(%q) = %q, want %q", tc.name, got, tc.want)
		}
	}
}
