package sysimage

import (
	"strings"
	"testing"
)

func TestMatchRange(t *testing.T) {
	tests := []struct {
		pattern, host string
		want          bool
	}{
		// RJH examples.
		{"hamster[1-2]gige", "hamster1gige", true},
		{"hamster[1-2]gige", "hamster2gige", true},
		{"hamster[1-2]gige", "hamster3gige", false},
		{"hamster[1-2]gige", "hamster1", false},
		{"v[1433-1484]", "v1433", true},
		{"v[1433-1484]", "v1484", true},
		{"v[1433-1484]", "v1485", false},
		{"v[1433-1484]", "v1432", false},
		{"v[1433-1484]", "xv1433", false}, // the whole host must match
		{"x[1-2,6,11-16]", "x6", true},
		{"x[1-2,6,11-16]", "x13", true},
		{"x[1-2,6,11-16]", "x7", false},
		{"v[1409-1440,1465-1488]", "v1470", true},
		{"v[1409-1440,1465-1488]", "v1450", false},
		// Several groups.
		{"rack[1-4]node[1-32]", "rack4node12", true},
		{"rack[1-4]node[1-32]", "rack5node12", false},
		{"rack[1-4]node[1-32]", "rack4node33", false},
		{"n[1-20][1-5]", "n125", true}, // 12 then 5
		{"n[1-20][1-5]", "n215", false},
		{"node[1-5]0", "node30", true}, // a digit suffix after a group
		// Zero padding: a leading zero fixes the width.
		{"node[001-100]", "node007", true},
		{"node[001-100]", "node7", false},
		{"node[001-100]", "node100", true},
		{"node[1-100]", "node7", true},
		{"node[1-100]", "node007", false},
		{"node[08-10]", "node09", true},
		{"node[08-10]", "node9", false},
		{"node[0-3]", "node0", true},
		{"node[0-3]", "node00", false},
		// No groups: an exact name.
		{"login1", "login1", true},
		{"login1", "login12", false},
		// Case-sensitive.
		{"Node[1-2]", "node1", false},
	}
	for _, tt := range tests {
		got, err := MatchRange(tt.pattern, tt.host)
		if err != nil {
			t.Errorf("MatchRange(%q, %q): %v", tt.pattern, tt.host, err)
			continue
		}
		if got != tt.want {
			t.Errorf("MatchRange(%q, %q) = %v, want %v", tt.pattern, tt.host, got, tt.want)
		}
	}
}

func TestParseRangeErrors(t *testing.T) {
	tests := []struct{ pattern, want string }{
		{"", "empty range"},
		{"node[1-5", "not closed"},
		{"node1-5]", "without a matching"},
		{"node[[1-5]]", "cannot nest"},
		{"node[]", "empty group"},
		{"node[1,,2]", "empty item"},
		{"node[5-1]", "backwards"},
		{"node[a-c]", "not a decimal number"},
		{"node[1-]", "missing number"},
		{"node[01-100]", "different widths"},
		{"node[1-1234567890123456789]", "more than 18 digits"},
	}
	for _, tt := range tests {
		_, err := ParseRange(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseRange(%q) = %v, want an error containing %q", tt.pattern, err, tt.want)
		}
	}
}

func TestRangeManyGroupsIsFast(t *testing.T) {
	// Memoisation keeps a pathological pattern linear-ish.
	r, err := ParseRange(strings.Repeat("[0-9,10-99]", 40) + "x")
	if err != nil {
		t.Fatal(err)
	}
	if r.Match(strings.Repeat("1", 60)) {
		t.Fatal("matched a host without the x suffix")
	}
}

// FuzzRangeMatch checks Match's shortcut for one-group ranges against the
// full search.
func FuzzRangeMatch(f *testing.F) {
	for _, s := range [][2]string{{"n[1-5]0", "n30"}, {"rack[1-4]node[001-032]", "rack4node012"}, {"n[01-10]", "n07"}, {"[1-3]x", "2x"}, {"a[1,3,5-7]b", "a6b"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, host string) {
		r, err := ParseRange(pattern)
		if err != nil {
			return
		}
		if got, want := r.Match(host), r.search(host); got != want {
			t.Fatalf("ParseRange(%q).Match(%q) = %v; the full search says %v", pattern, host, got, want)
		}
	})
}
