package testkit

import "testing"

func TestANSIStripping(t *testing.T) {
	for in, want := range map[string]string{
		"ONESIS-PXELI\x1b[25;12H\x1b[25;13HNUX-OK":  "ONESIS-PXELINUX-OK",
		"\x1b[0;1miPXE 1.0.0\x1b[0m -- Open Source": "iPXE 1.0.0 -- Open Source",
		"\x1b[?7l\x1b[2J\x1b[0mSeaBIOS":             "SeaBIOS",
		"plain":                                     "plain",
	} {
		if got := StripANSI(in); got != want {
			t.Errorf("stripping %q = %q, want %q", in, got, want)
		}
	}
}
