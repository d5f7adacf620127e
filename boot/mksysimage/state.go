package mksysimage

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// StateFile is where the transform records what it did, inside the image,
// so a later run can undo what the configuration no longer asks for and
// --revert can restore the original tree. It is committed with the image.
const StateFile = "etc/onesis/sysimage.state"

// stateHeader opens every state file.
const stateHeader = "# git-onesis sysimage state: what 'git onesis sysimage' changed in this image.\n" +
	"# 'git onesis sysimage --revert' undoes it. Do not edit by hand.\n"

// LinkRecord is one path the transform turned into a link into /ram.
type LinkRecord struct {
	Path    string // image-relative
	Default string // where the original went (or would go)
	Moved   bool   // the original existed and was moved to Default
}

// State is the content of the state file.
type State struct {
	Dirs  []string // directories the transform created, in creation order
	Links []LinkRecord
}

func (s *State) link(p string) (LinkRecord, bool) {
	for _, l := range s.Links {
		if l.Path == p {
			return l, true
		}
	}
	return LinkRecord{}, false
}

func (s *State) hasDir(p string) bool {
	for _, d := range s.Dirs {
		if d == p {
			return true
		}
	}
	return false
}

// Bytes encodes the state: one record a line, paths Go-quoted so any byte
// but NUL round-trips.
func (s *State) Bytes() []byte {
	var b bytes.Buffer
	b.WriteString(stateHeader)
	for _, d := range s.Dirs {
		fmt.Fprintf(&b, "dir %s\n", strconv.Quote(d))
	}
	for _, l := range s.Links {
		how := "created"
		if l.Moved {
			how = "moved"
		}
		fmt.Fprintf(&b, "link %s %s %s\n", strconv.Quote(l.Path), strconv.Quote(l.Default), how)
	}
	return b.Bytes()
}

// ParseState decodes a state file. Errors name the line.
func ParseState(b []byte) (*State, error) {
	s := &State{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		kind, rest, _ := strings.Cut(line, " ")
		fields, err := quotedFields(rest)
		if err != nil {
			return nil, fmt.Errorf("%s line %d: %w", StateFile, n, err)
		}
		switch {
		case kind == "dir" && len(fields) == 1:
			s.Dirs = append(s.Dirs, fields[0])
		case kind == "link" && len(fields) == 3 && (fields[2] == "moved" || fields[2] == "created"):
			s.Links = append(s.Links, LinkRecord{Path: fields[0], Default: fields[1], Moved: fields[2] == "moved"})
		default:
			return nil, fmt.Errorf("%s line %d: expected 'dir \"PATH\"' or 'link \"PATH\" \"DEFAULT\" moved|created', got %q", StateFile, n, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", StateFile, err)
	}
	return s, nil
}

// quotedFields splits a line of Go-quoted strings and bare words.
func quotedFields(s string) ([]string, error) {
	var out []string
	for {
		s = strings.TrimLeft(s, " ")
		if s == "" {
			return out, nil
		}
		if s[0] == '"' {
			q, err := strconv.QuotedPrefix(s)
			if err != nil {
				return nil, fmt.Errorf("bad quoted path: %w", err)
			}
			u, _ := strconv.Unquote(q)
			out = append(out, u)
			s = s[len(q):]
			continue
		}
		w, rest, _ := strings.Cut(s, " ")
		out = append(out, w)
		s = rest
	}
}
