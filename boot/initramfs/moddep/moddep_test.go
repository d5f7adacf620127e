package moddep

import (
	"os"
	"strings"
	"testing"
)

func fixture(t *testing.T) *Deps {
	t.Helper()
	f, err := os.Open("../testdata/modules.dep")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	d, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func names(ms []Module) string {
	var s []string
	for _, m := range ms {
		s = append(s, m.Name)
	}
	return strings.Join(s, " ")
}

func TestResolve(t *testing.T) {
	d := fixture(t)
	tests := []struct {
		want           []string
		order, missing string
	}{
		{[]string{"virtio_net"}, "failover net_failover virtio_net", ""},
		{[]string{"nfsv3"}, "sunrpc grace lockd netfs fscache nfs nfsv3", ""},
		{[]string{"nfsv3", "nfs", "sunrpc"}, "sunrpc grace lockd netfs fscache nfs nfsv3", ""},
		{[]string{"e1000", "nosuch", "virtio-net", "virtio_net"}, "e1000 failover net_failover virtio_net", "nosuch"},
		{[]string{"dummy_net"}, "dummy_net", ""},
		{nil, "", ""},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.want, ","), func(t *testing.T) {
			mods, missing, err := d.Resolve(tc.want)
			if err != nil {
				t.Fatal(err)
			}
			if got := names(mods); got != tc.order {
				t.Errorf("order %q, want %q", got, tc.order)
			}
			if got := strings.Join(missing, " "); got != tc.missing {
				t.Errorf("missing %q, want %q", got, tc.missing)
			}
			// Every module comes after everything it needs.
			pos := map[string]int{}
			for i, m := range mods {
				pos[m.Name] = i
			}
			for _, m := range mods {
				for _, n := range d.Needs[m.Name] {
					if p, ok := pos[n]; !ok || p > pos[m.Name] {
						t.Errorf("%s loaded before its dependency %s", m.Name, n)
					}
				}
			}
		})
	}
	mods, _, _ := d.Resolve([]string{"virtio_net"})
	if mods[0].Why != "needed by net_failover" || mods[2].Why != "requested" {
		t.Errorf("reasons: %+v", mods)
	}
}

func TestParseErrors(t *testing.T) {
	for _, in := range []string{
		"no colon here\n",
		"../escape.ko:\n",
		"/abs/x.ko:\n",
		"a.ko: ../../b.ko\n",
		": b.ko\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil {
			t.Errorf("Parse(%q) succeeded", in)
		}
	}
}

func TestCycle(t *testing.T) {
	d, err := Parse(strings.NewReader("a.ko: b.ko\nb.ko: a.ko\n"))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := d.Resolve([]string{"a"}); err == nil || !strings.Contains(err.Error(), "cycle") {
		t.Errorf("cycle not reported: %v", err)
	}
}

func TestName(t *testing.T) {
	for in, want := range map[string]string{
		"kernel/a/virtio_net.ko.xz": "virtio_net", "x/dummy-net.ko": "dummy_net",
		"y.ko.zst": "y", "z.ko.gz": "z",
	} {
		if got := Name(in); got != want {
			t.Errorf("Name(%q) = %q, want %q", in, got, want)
		}
	}
}
