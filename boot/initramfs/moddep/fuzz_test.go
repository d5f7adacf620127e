package moddep

import (
	"bytes"
	"strings"
	"testing"
)

// FuzzParse: any modules.dep parses or fails cleanly; what parses keeps
// every path inside the modules directory and resolves with each module
// after its dependencies (or reports a cycle).
func FuzzParse(f *testing.F) {
	f.Add("a.ko: b.ko c.ko.xz\nb.ko:\nc.ko.xz: b.ko\n", "a")
	f.Add("x/y-z.ko.zst:\n# comment\n\n", "y_z")
	f.Fuzz(func(t *testing.T, dep, want string) {
		d, err := Parse(strings.NewReader(dep))
		if err != nil {
			return
		}
		for _, p := range d.Path {
			if strings.HasPrefix(p, "/") || strings.HasPrefix(p, "../") {
				t.Errorf("path %q escapes", p)
			}
		}
		mods, _, err := d.Resolve(strings.Fields(want))
		if err != nil {
			return
		}
		pos := map[string]int{}
		for i, m := range mods {
			pos[m.Name] = i
		}
		for _, m := range mods {
			for _, n := range d.Needs[m.Name] {
				if p, ok := pos[n]; ok && p > pos[m.Name] {
					t.Errorf("%s before its dependency %s", m.Name, n)
				}
			}
		}
		var b bytes.Buffer
		if err := Write(&b, d, mods, nil); err != nil {
			t.Fatal(err)
		}
	})
}
