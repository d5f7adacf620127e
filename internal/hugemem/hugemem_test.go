package hugemem

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

// advised reports whether the mapping holding p carries the kernel's
// huge-page advice ("hg" in its VmFlags, proc(5)).
func advised(t *testing.T, p uintptr) bool {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	in := false
	for sc.Scan() {
		l := sc.Text()
		var lo, hi uintptr
		if n, _ := fmt.Sscanf(l, "%x-%x", &lo, &hi); n == 2 && strings.Contains(l, " ") {
			in = p >= lo && p < hi
			continue
		}
		if in && strings.HasPrefix(l, "VmFlags:") {
			return strings.Contains(l+" ", " hg ")
		}
	}
	return false
}

func TestSliceIsAdvised(t *testing.T) {
	if _, err := os.Stat("/sys/kernel/mm/transparent_hugepage/enabled"); err != nil {
		t.Skip("this kernel has no transparent huge pages, so there is nothing to advise")
	}
	s := Slice[uint64](3 << 20) // 24 MiB
	mid := uintptr(unsafe.Pointer(&s[len(s)/2]))
	if !advised(t, mid) {
		t.Error("a 24 MiB slice's memory carries no huge-page advice")
	}
	for i := range s {
		if s[i] != 0 {
			t.Fatalf("element %d is %d, not zero", i, s[i])
		}
		s[i] = uint64(i)
	}
	small := Slice[byte](1 << 10)
	if len(small) != 1<<10 {
		t.Fatal("a small slice has the wrong length")
	}
}

// TestReadFile reads what os.ReadFile reads, around the size where advice
// starts, and an empty file and a missing one alike.
func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []int{0, 1, min - 1, min, min + 1, 9<<20 + 3} {
		p := filepath.Join(dir, fmt.Sprint(n))
		want := bytes.Repeat([]byte("0123456789abcdef"), n/16+1)[:n]
		if err := os.WriteFile(p, want, 0o644); err != nil {
			t.Fatal(err)
		}
		got, err := ReadFile(p)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%d bytes: read %d bytes, %v", n, len(got), err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "missing")); !os.IsNotExist(err) {
		t.Errorf("a missing file: %v, want not-exist", err)
	}
}

func TestAppend(t *testing.T) {
	type elem [8]int64 // so the grown array is large enough to advise
	var s []elem
	for i := range 3*growMin + 5 {
		s = Append(s, elem{int64(i)})
	}
	if len(s) != 3*growMin+5 {
		t.Fatalf("len %d", len(s))
	}
	for i, v := range s {
		if v[0] != int64(i) {
			t.Fatalf("s[%d] = %d", i, v)
		}
	}
	if cap(s) != 4*growMin {
		t.Errorf("cap %d, want %d (doubling from %d)", cap(s), 4*growMin, growMin)
	}
	if !advised(t, uintptr(unsafe.Pointer(&s[len(s)/2]))) {
		t.Error("the grown array is not advised for huge pages")
	}
}

func TestStrings(t *testing.T) {
	var a Strings
	var got []string
	var want []string
	for i := range 100000 {
		name := []byte(strconv.Itoa(i))
		got = append(got, a.Concat("dir/", name))
		want = append(want, "dir/"+string(name))
	}
	big := bytes.Repeat([]byte("x"), stringBlock)
	got = append(got, a.Concat("p/", big), a.Concat("", nil))
	want = append(want, "p/"+string(big), "")
	runtime.GC() // blocks must stay alive through their strings
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("string %d = %.20q, want %.20q", i, got[i], want[i])
		}
	}
}
