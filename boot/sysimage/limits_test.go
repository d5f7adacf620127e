package sysimage

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"testing"
	"time"
)

// fanOut is the configuration that once hung `git onesis class` and every
// node's boot: n files, each including the next one k times, k^n parses.
func fanOut(n, k int) Opener {
	return func(p string) ([]byte, error) {
		var i int
		if _, err := fmt.Sscanf(p, "/etc/inc%d", &i); err != nil || i < 0 || i >= n {
			return nil, fs.ErrNotExist
		}
		if i == n-1 {
			return []byte("PROPERTY leaf\n"), nil
		}
		return []byte(strings.Repeat(fmt.Sprintf("INCLUDE /etc/inc%d\n", i+1), k)), nil
	}
}

func TestIncludeFanOutRefused(t *testing.T) {
	opens := 0
	open := fanOut(15, 4) // with the main file, 16 files: 4^15 parses
	counting := func(p string) ([]byte, error) {
		if opens++; opens > 10*MaxIncludes {
			return nil, errors.New("opened 10 times more files than the limit allows")
		}
		return open(p)
	}
	t0 := time.Now()
	_, err := ParseBytes("/etc/sysimage.conf", []byte(strings.Repeat("INCLUDE /etc/inc0\n", 4)), counting)
	var pe *Error
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || !strings.HasPrefix(pe.Pos.File, "/etc/inc") || pe.Pos.Line < 1 {
		t.Fatalf("4^15 includes: got %v; want ErrTooLarge at an INCLUDE line", err)
	}
	if !strings.Contains(err.Error(), fmt.Sprint(MaxIncludes)) {
		t.Errorf("the error does not give the limit: %v", err)
	}
	if opens > MaxIncludes {
		t.Errorf("%d files opened; at most %d expected", opens, MaxIncludes)
	}
	t.Logf("refused after %d opens in %v: %v", opens, time.Since(t0), err)

	// Within the limit, the same diamond shape parses, each include spliced.
	c, err := ParseBytes("/etc/sysimage.conf", []byte("INCLUDE /etc/inc0\n"), fanOut(4, 4))
	if err != nil {
		t.Fatalf("4^3 includes: %v", err)
	}
	if len(c.Files) != 1+1+4+16+64 {
		t.Errorf("read %d files; want %d", len(c.Files), 1+1+4+16+64)
	}
}

func TestSizeLimits(t *testing.T) {
	long := "PROPERTY p -n " + strings.Repeat("n", MaxLineBytes) + "\n"
	_, err := ParseBytes("/etc/sysimage.conf", []byte("# ok\n"+long), nil)
	var pe *Error
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Pos.Line != 2 {
		t.Errorf("a %d-byte line: %v; want ErrTooLarge at line 2", len(long), err)
	}
	big := []byte(strings.Repeat("# filler filler filler filler filler filler filler\n", MaxBytes/50))
	_, err = ParseBytes("/etc/sysimage.conf", big, nil)
	if !errors.Is(err, ErrTooLarge) {
		t.Errorf("a %d-byte file: %v; want ErrTooLarge", len(big), err)
	}
	half := big[:MaxBytes/2+1]
	open := func(string) ([]byte, error) { return half, nil }
	_, err = ParseBytes("/etc/sysimage.conf", []byte("INCLUDE /a\nINCLUDE /b\n"), open)
	if !errors.Is(err, ErrTooLarge) || !errors.As(err, &pe) || pe.Pos.Line != 2 {
		t.Errorf("two includes past %d bytes: %v; want ErrTooLarge at line 2", MaxBytes, err)
	}
}

// TestUnsupportedRepeatsLinear: 80,000 repeats of an unsupported directive
// (once 15 s: each re-counted the ones before) give one warning, counted.
func TestUnsupportedRepeatsLinear(t *testing.T) {
	conf := strings.Repeat("DISKMOUNT sda /scratch\n", 80000)
	t0 := time.Now()
	c, err := ParseBytes("/etc/sysimage.conf", []byte(conf), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].Msg, "80000 lines") || len(c.Unsupported) != 80000 {
		t.Errorf("got %d warnings (%v), %d unsupported", len(c.Warnings), c.Warnings, len(c.Unsupported))
	}
	t.Logf("80k unsupported lines: %v", time.Since(t0))
}
