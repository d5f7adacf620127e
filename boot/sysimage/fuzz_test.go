package sysimage

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"slices"
	"sort"
	"strings"
	"testing"
)

// FuzzParse feeds arbitrary configurations and host names through the
// parser and the resolver. Neither may panic; a parse error is always an
// *Error naming a line; a parsed config always resolves a valid host to a
// consistent Node. The input may hold more files after "\n---\n" lines,
// served as /g0, /g1 ...: an include graph of the fuzzer's making, which
// must never take more than MaxIncludes reads.
func FuzzParse(f *testing.F) {
	f.Add([]byte("INCLUDE /g0\nINCLUDE /g0\n---\nINCLUDE /g1\nINCLUDE /g1\n---\nINCLUDE /g0\n"), "n1", "")
	f.Add([]byte(strings.Repeat("INCLUDE /g0\n", 4)+"---\n"+strings.Repeat("INCLUDE /g1\n", 4)+"---\n"+strings.Repeat("INCLUDE /g2\n", 4)+"---\n"+strings.Repeat("INCLUDE /g0\n", 4)), "n1", "")
	f.Add([]byte(strings.Repeat("DISKMOUNT a\nRAMDIR /{x}{y}{z}\n", 50)), "n1", "")
	f.Add([]byte("NODECLASS_MAP n1 a\nNODECLASS_RANGE n[1-3] b\nNODECLASS_MAP n1 c\nPROPERTY p -n n1,n2\nPROPERTY q -n n1 -c b\nPROPERTY p -c c\n"), "n1", "")
	f.Add([]byte(sans), "node1", "")
	f.Add([]byte(rjh), "v1433", "")
	f.Add([]byte(rjh), "x6", "vu.io")
	f.Add([]byte("INCLUDE /inc\nINCLUDE /self\n"), "n1", "")
	f.Add([]byte("NODECLASS_RANGE rack[1-4]node[001-032] a.b\nRAMDIR /x -p\n"), "rack4node012", "")
	f.Fuzz(func(t *testing.T, conf []byte, host, class string) {
		files := bytes.Split(conf, []byte("\n---\n"))
		opens := 0
		open := func(p string) ([]byte, error) {
			if opens++; opens > MaxIncludes {
				t.Fatalf("%d INCLUDE reads; the limit is %d", opens, MaxIncludes)
			}
			var g int
			if _, err := fmt.Sscanf(p, "/g%d", &g); err == nil && g >= 0 && g+1 < len(files) && p == fmt.Sprint("/g", g) {
				return files[g+1], nil
			}
			switch p {
			case "/inc":
				return []byte("RAMDIR /inc -c x\nPROPERTY p -r n[1-3]\n"), nil
			case "/self":
				return conf, nil
			}
			return nil, fs.ErrNotExist
		}
		c, err := ParseBytes("/etc/sysimage.conf", files[0], open)
		if err != nil {
			var pe *Error
			if !errors.As(err, &pe) || pe.Pos.Line < 1 || pe.Pos.File == "" {
				t.Fatalf("error without a position: %v", err)
			}
			return
		}
		for _, w := range c.Warnings {
			if w.Pos.Line < 1 || w.Pos.File == "" || w.Msg == "" {
				t.Fatalf("bad warning %+v", w)
			}
		}
		for _, e := range c.Ram {
			if !strings.HasPrefix(e.Path, "/") || e.Path == "/" {
				t.Fatalf("bad RAM path %q", e.Path)
			}
		}
		for _, l := range c.Linkbacks {
			if !strings.HasPrefix(l.Path, "/") || HasGlob(l.Path) || IsNotLinkable(l.Path) {
				t.Fatalf("bad LINKBACK path %q", l.Path)
			}
			if l.Force && l.Target == TargetProperty {
				t.Fatal("-f with PROPERTY accepted")
			}
		}
		n, err := c.Resolve(host, class)
		if err != nil {
			return
		}
		if want := resolveScan(c, host, class); want.Class != n.Class || want.ClassFrom != n.ClassFrom || !slices.Equal(want.Props, n.Props) {
			t.Fatalf("Resolve(%q) = %+v; scanning every rule gives %+v", host, n, want)
		}
		if (n.Class == "") != (len(n.Classes) == 0) || (n.Class != "" && n.Classes[0] != n.Class) {
			t.Fatalf("inconsistent node %+v", n)
		}
		if class != "" && n.Class != class {
			t.Fatalf("override %q ignored: %+v", class, n)
		}
		if !sort.StringsAreSorted(n.Props) {
			t.Fatalf("props not sorted: %q", n.Props)
		}
		c.RamSizeFor(n)
		c.RamFor(n)
		c.ServicesFor(n)
		seen := map[string]bool{}
		for _, l := range c.LinkbacksFor(n) {
			if seen[l.Path] {
				t.Fatalf("LinkbacksFor returned %s twice", l.Path)
			}
			seen[l.Path] = true
		}
		c.AllLinkPaths()
		if r, err := ParseRange(host); err == nil {
			r.Match(host)
		}
	})
}

// resolveScan is Resolve without the indexes: every rule in order, the
// last match wins. FuzzParse checks the indexed Resolve against it.
func resolveScan(c *Config, host, classOverride string) *Node {
	n := &Node{Host: host}
	for i := range c.classRules {
		if r := &c.classRules[i]; r.match(host) {
			n.Class, n.ClassFrom = r.class, r.pos
		}
	}
	if classOverride != "" {
		n.Class, n.ClassFrom = classOverride, Pos{}
	}
	n.Classes = ClassChain(n.Class)
	seen := map[string]bool{}
	for i := range c.propRules {
		if p := &c.propRules[i]; !seen[p.name] && p.match(n) {
			seen[p.name] = true
			n.Props = append(n.Props, p.name)
		}
	}
	sort.Strings(n.Props)
	return n
}
