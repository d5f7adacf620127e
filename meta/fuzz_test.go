package meta

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics on any input, and that for any
// input it accepts, Encode then Parse then Encode is a fixed point.
func FuzzParse(f *testing.F) {
	f.Add([]byte(fmtHeader + ".  mode=0755  uid=0  gid=0  type=dir\n./a\\040b  mode=04755  uid=1  gid=2  type=file  xattr.user.x=AQI=\n"))
	f.Add([]byte("etc  mode=0755  uid=0  gid=0\n"))
	f.Add([]byte("./a  mode=0  uid=0  gid=0  type=file\n./b  mode=0  uid=0  gid=0  type=file  hardlink=./a\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ParseBytes(data)
		if err != nil {
			return
		}
		if m.Legacy {
			// A legacy file is read for migration only; it is re-recorded,
			// never written back in the new format.
			return
		}
		first, err := m.Bytes()
		if err != nil {
			t.Fatalf("Encode of a parsed manifest failed: %v", err)
		}
		back, err := ParseBytes(first)
		if err != nil {
			t.Fatalf("re-parse failed: %v\n%q", err, first)
		}
		second, err := back.Bytes()
		if err != nil {
			t.Fatalf("second Encode failed: %v", err)
		}
		if !bytes.Equal(first, second) {
			t.Fatalf("Encode/Parse not a fixed point:\n%q\n%q", first, second)
		}
	})
}
