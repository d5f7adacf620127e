package xdr

import (
	"bytes"
	"testing"
)

func TestReader(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      []byte
		read    func(r *Reader) any
		want    any
		wantBad bool
	}{
		{"u32", []byte{0, 0, 1, 2}, func(r *Reader) any { return r.U32() }, uint32(258), false},
		{"short u32", []byte{0, 1}, func(r *Reader) any { return r.U32() }, uint32(0), true},
		{"opaque padded", []byte{0, 0, 0, 3, 'a', 'b', 'c', 0, 9, 9, 9, 9}, func(r *Reader) any { v := r.Opaque(8); return string(v) + string(rune('0'+r.Off)) }, "abc8", false},
		{"opaque over max", []byte{0, 0, 0, 9, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0}, func(r *Reader) any { return r.Opaque(8) }, []byte(nil), true},
		{"opaque past end", []byte{0, 0, 0, 4, 'a'}, func(r *Reader) any { return r.Opaque(8) }, []byte(nil), true},
		{"huge length", []byte{0xff, 0xff, 0xff, 0xff}, func(r *Reader) any { return r.Opaque(1 << 30) }, []byte(nil), true},
		{"skip", []byte{1, 2, 3, 4, 0, 0, 0, 7}, func(r *Reader) any { r.Skip(4); return r.U32() }, uint32(7), false},
		{"skip negative", []byte{1, 2, 3, 4}, func(r *Reader) any { r.Skip(-1); return r.U32() }, uint32(0), true},
		{"auth", []byte{0, 0, 0, 1, 0, 0, 0, 2, 'x', 'y', 0, 0}, func(r *Reader) any { f, b := r.Auth(); return string(rune('0'+f)) + string(b) }, "1xy", false},
	} {
		r := &Reader{B: tt.in}
		got := tt.read(r)
		if b, ok := got.([]byte); ok {
			if w, _ := tt.want.([]byte); !bytes.Equal(b, w) {
				t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
			}
		} else if got != tt.want {
			t.Errorf("%s: got %v, want %v", tt.name, got, tt.want)
		}
		if r.Bad != tt.wantBad {
			t.Errorf("%s: Bad = %v, want %v", tt.name, r.Bad, tt.wantBad)
		}
	}
}

func FuzzReader(f *testing.F) {
	f.Add([]byte{0, 0, 0, 3, 'a', 'b', 'c', 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		r := &Reader{B: b}
		for i := 0; i < 64 && !r.Bad; i++ {
			switch i % 3 {
			case 0:
				r.U32()
			case 1:
				r.Opaque(512)
			default:
				r.Auth()
			}
			if r.Off > len(b) {
				t.Fatalf("Off %d past the end %d", r.Off, len(b))
			}
		}
	})
}

func TestAppend(t *testing.T) {
	var b []byte
	b = AppendU32(b, 7)
	b = AppendU64(b, 1<<40|5)
	b = AppendBool(b, true)
	b = AppendOpaque(b, []byte("abcde"))
	b = AppendString(b, "xy")
	b = AppendOpaque(b, nil)
	want := []byte{0, 0, 0, 7, 0, 0, 1, 0, 0, 0, 0, 5, 0, 0, 0, 1,
		0, 0, 0, 5, 'a', 'b', 'c', 'd', 'e', 0, 0, 0,
		0, 0, 0, 2, 'x', 'y', 0, 0,
		0, 0, 0, 0}
	if !bytes.Equal(b, want) {
		t.Fatalf("got %v\nwant %v", b, want)
	}
	r := &Reader{B: b}
	if r.U32() != 7 || r.U64() != 1<<40|5 || !r.Bool() || string(r.Opaque(8)) != "abcde" || string(r.Opaque(8)) != "xy" || len(r.Opaque(8)) != 0 || r.Bad || r.Off != len(b) {
		t.Fatalf("read back failed at %d (bad %v)", r.Off, r.Bad)
	}
	if r := (&Reader{B: []byte{0, 0, 0, 2}}); r.Bool() || !r.Bad {
		t.Error("bool 2 was not Bad")
	}
	if n := testing.AllocsPerRun(100, func() { AppendOpaque(b[:0], []byte("abc")) }); n != 0 {
		t.Errorf("AppendOpaque into a large enough buffer allocated %v times", n)
	}
}
