package personality

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
)

// idNames maps the image's user and group names to ids, read from the
// image's own etc/passwd and etc/group, never the host's.
type idNames struct {
	users, groups map[string]uint32
}

func parseIDs(b []byte) map[string]uint32 {
	m := map[string]uint32{}
	for _, line := range bytes.Split(b, []byte{'\n'}) {
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := bytes.SplitN(line, []byte{':'}, 4)
		if len(f) < 3 || len(f[0]) == 0 {
			continue
		}
		id, err := strconv.ParseUint(string(f[2]), 10, 32)
		if err != nil {
			continue
		}
		if _, dup := m[string(f[0])]; !dup {
			m[string(f[0])] = uint32(id)
		}
	}
	return m
}

func (pl *planner) loadNames() error {
	if pl.names != nil {
		return nil
	}
	read := func(p string) ([]byte, error) {
		b, err := pl.img.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading /%s of the image: %w", p, err)
		}
		return b, nil
	}
	pw, err := read("etc/passwd")
	if err != nil {
		return err
	}
	gr, err := read("etc/group")
	if err != nil {
		return err
	}
	pl.names = &idNames{users: parseIDs(pw), groups: parseIDs(gr)}
	return nil
}

// userID resolves -u: a number, or a name from the image's etc/passwd.
func (pl *planner) userID(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	if err := pl.loadNames(); err != nil {
		return 0, err
	}
	id, ok := pl.names.users[s]
	if !ok {
		return 0, fmt.Errorf("user %q is not in the image's /etc/passwd", s)
	}
	return id, nil
}

// groupID resolves -g: a number, or a name from the image's etc/group.
func (pl *planner) groupID(s string) (uint32, error) {
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return uint32(n), nil
	}
	if err := pl.loadNames(); err != nil {
		return 0, err
	}
	id, ok := pl.names.groups[s]
	if !ok {
		return 0, fmt.Errorf("group %q is not in the image's /etc/group", s)
	}
	return id, nil
}
