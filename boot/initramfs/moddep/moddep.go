// Package moddep reads a kernel's modules.dep and orders modules so that
// every module comes after the modules it needs. Both the initramfs builder
// (which decides what goes in) and onesis-init (which loads it) use it, so
// it depends on nothing but the standard library.
package moddep

import (
	"bufio"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"
)

// Deps is a parsed modules.dep: each module's file (relative to
// lib/modules/<kver>) and the files it depends on, by module name.
type Deps struct {
	// Path maps a module name ("virtio_net") to its file
	// ("kernel/drivers/net/virtio_net.ko.xz").
	Path map[string]string
	// Needs maps a module name to the names of the modules it needs,
	// in modules.dep order.
	Needs map[string][]string
	// Order lists module names in the order of modules.dep.
	Order []string
}

// Name is the module name of a module file: the base name without .ko
// and a compression suffix, with '-' read as '_' as the kernel does.
func Name(file string) string {
	b := path.Base(file)
	for _, s := range []string{".xz", ".zst", ".gz"} {
		b = strings.TrimSuffix(b, s)
	}
	b = strings.TrimSuffix(b, ".ko")
	return Normalize(b)
}

// Normalize spells a module name as the kernel does ('-' becomes '_').
func Normalize(name string) string { return strings.ReplaceAll(name, "-", "_") }

// Parse reads modules.dep ("file: dep dep ...", one module a line).
func Parse(r io.Reader) (*Deps, error) {
	d := &Deps{Path: map[string]string{}, Needs: map[string][]string{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
	line := 0
	for sc.Scan() {
		line++
		t := strings.TrimSpace(sc.Text())
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		file, rest, ok := strings.Cut(t, ":")
		if !ok || strings.TrimSpace(file) == "" {
			return nil, fmt.Errorf("modules.dep line %d: %q is not \"module: dependencies\"", line, t)
		}
		file = strings.TrimSpace(file)
		if err := checkFile(file); err != nil {
			return nil, fmt.Errorf("modules.dep line %d: %w", line, err)
		}
		name := Name(file)
		if _, dup := d.Path[name]; dup {
			continue // depmod lists a module once; keep the first like modprobe
		}
		var needs []string
		for _, f := range strings.Fields(rest) {
			if err := checkFile(f); err != nil {
				return nil, fmt.Errorf("modules.dep line %d: %w", line, err)
			}
			needs = append(needs, Name(f))
		}
		d.Path[name] = file
		d.Needs[name] = needs
		d.Order = append(d.Order, name)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading modules.dep: %w", err)
	}
	return d, nil
}

// checkFile refuses module paths that would leave lib/modules/<kver>.
func checkFile(f string) error {
	if path.IsAbs(f) || f != path.Clean(f) || f == ".." || strings.HasPrefix(f, "../") {
		return fmt.Errorf("module path %q is not inside the modules directory", f)
	}
	return nil
}

// Module is one module of a resolved load order.
type Module struct {
	Name string `json:"name"` // module name, "virtio_net"
	File string `json:"file"` // relative to lib/modules/<kver>
	// Why says who asked for it: "requested" or "needed by X".
	Why string `json:"why"`
}

// Resolve returns the modules named in want and everything they need,
// each exactly once, dependencies first. Names not in modules.dep are
// returned in missing (in the order asked), not as an error: an image
// may build a driver into the kernel or lack it. A dependency cycle (which
// depmod never writes) is an error.
func (d *Deps) Resolve(want []string) (mods []Module, missing []string, err error) {
	const (
		visiting = 1
		done     = 2
	)
	state := map[string]int{}
	var visit func(name, why string, stack []string) error
	visit = func(name, why string, stack []string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("modules.dep has a dependency cycle: %s -> %s", strings.Join(stack, " -> "), name)
		}
		file, ok := d.Path[name]
		if !ok {
			missing = append(missing, name)
			state[name] = done
			return nil
		}
		state[name] = visiting
		for _, dep := range d.Needs[name] {
			if err := visit(dep, "needed by "+name, append(stack, name)); err != nil {
				return err
			}
		}
		state[name] = done
		mods = append(mods, Module{Name: name, File: file, Why: why})
		return nil
	}
	seen := map[string]bool{}
	for _, w := range want {
		w = Normalize(strings.TrimSpace(w))
		if w == "" || seen[w] {
			continue
		}
		seen[w] = true
		if err := visit(w, "requested", nil); err != nil {
			return nil, nil, err
		}
	}
	return mods, missing, nil
}

// Write writes a modules.dep holding only mods, with file names passed
// through rename (e.g. to drop a compression suffix), sorted by file.
func Write(w io.Writer, d *Deps, mods []Module, rename func(string) string) error {
	if rename == nil {
		rename = func(s string) string { return s }
	}
	lines := make([]string, 0, len(mods))
	for _, m := range mods {
		var b strings.Builder
		b.WriteString(rename(m.File))
		b.WriteString(":")
		for _, n := range d.Needs[m.Name] {
			if f, ok := d.Path[n]; ok {
				b.WriteString(" ")
				b.WriteString(rename(f))
			}
		}
		lines = append(lines, b.String())
	}
	sort.Strings(lines)
	for _, l := range lines {
		if _, err := io.WriteString(w, l+"\n"); err != nil {
			return err
		}
	}
	return nil
}
