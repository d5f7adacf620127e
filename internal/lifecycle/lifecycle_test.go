package lifecycle

import (
	"reflect"
	"testing"
)

func TestDefaultDir(t *testing.T) {
	for _, tt := range []struct{ top, name, want string }{
		{"/srv/images/prod", "update", "/srv/images/prod-update"},
		{"/srv/images/prod", "team/update-2", "/srv/images/prod-team-update-2"},
	} {
		if got := DefaultDir(tt.top, tt.name); got != tt.want {
			t.Errorf("DefaultDir(%q, %q) = %q, want %q", tt.top, tt.name, got, tt.want)
		}
	}
}

func TestConflictLines(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []string
	}{
		{"Auto-merging etc/motd\nCONFLICT (content): Merge conflict in etc/motd\n", []string{"CONFLICT (content): Merge conflict in etc/motd"}},
		{"  CONFLICT (add/add): Merge conflict in g\nCONFLICT (modify/delete): x deleted\n", []string{"CONFLICT (add/add): Merge conflict in g", "CONFLICT (modify/delete): x deleted"}},
		{"fatal: refusing to merge unrelated histories\n", []string{"fatal: refusing to merge unrelated histories"}},
		{"", nil},
	} {
		if got := conflictLines(tt.in); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("conflictLines(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
