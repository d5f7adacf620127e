package main

import (
	"strings"

	"github.com/urfave/cli/v2"
)

// completionFlag is the hidden flag urfave/cli reads, last on the line.
const completionFlag = "--generate-bash-completion"

// gitArgs rewrites a command line so that urfave/cli reads it the way git's
// option parser does: options may come after arguments ('git onesis log
// main --json'), a short option may carry its value ('-n1', '-mMSG'), short
// booleans may be bundled ('-qz'), and '--' ends the options. urfave/cli v2
// stops at the first argument, which would otherwise reject or ignore the
// rest. Commands that pass their arguments to git unparsed (commit,
// checkout) are left alone.
func gitArgs(cmds []*cli.Command, args []string) []string {
	if len(args) < 2 {
		return args
	}
	out := []string{args[0]}
	rest := args[1:]
	// Options of 'git onesis' itself (--help, --version).
	for len(rest) > 0 && strings.HasPrefix(rest[0], "-") {
		out = append(out, rest[0])
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return out
	}
	c := findCommand(cmds, rest[0])
	for c != nil {
		out = append(out, rest[0])
		rest = rest[1:]
		if c.SkipFlagParsing {
			return append(out, rest...)
		}
		if len(rest) > 0 {
			if sub := findCommand(c.Subcommands, rest[0]); sub != nil {
				c = sub
				continue
			}
		}
		return append(out, reorder(c.Flags, rest)...)
	}
	return append(out, rest...)
}

func findCommand(cmds []*cli.Command, name string) *cli.Command {
	for _, c := range cmds {
		if c.HasName(name) {
			return c
		}
	}
	return nil
}

// reorder puts the options of args first, each with its value, then '--'
// if the command line had one, then the arguments in their order.
func reorder(flags []cli.Flag, args []string) []string {
	tail := ""
	if n := len(args); n > 0 && args[n-1] == completionFlag {
		args, tail = args[:n-1], completionFlag
	}
	takesValue := map[string]bool{}
	known := map[string]bool{"help": true, "h": true}
	for _, f := range flags {
		_, isBool := f.(*cli.BoolFlag)
		for _, n := range f.Names() {
			known[n] = true
			takesValue[n] = !isBool
		}
	}
	var opts, pos []string
	dashdash := false
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			dashdash = true
			pos = append(pos, args[i+1:]...)
			i = len(args)
		case !strings.HasPrefix(a, "-") || a == "-":
			pos = append(pos, a)
		case strings.HasPrefix(a, "--") || strings.Contains(a, "="):
			opts = append(opts, a)
			if name := strings.TrimLeft(a, "-"); takesValue[name] && i+1 < len(args) {
				i++
				opts = append(opts, args[i])
			}
		default: // -x, -xVALUE, -xyz
			name := a[1:]
			switch {
			case known[name]:
				opts = append(opts, a)
				if takesValue[name] && i+1 < len(args) {
					i++
					opts = append(opts, args[i])
				}
			case takesValue[name[:1]]:
				opts = append(opts, "-"+name[:1], name[1:])
			case allShortBools(name, known, takesValue):
				for _, r := range name {
					opts = append(opts, "-"+string(r))
				}
			default:
				opts = append(opts, a) // unknown: the parser reports it
			}
		}
	}
	out := opts
	if dashdash {
		out = append(out, "--")
	}
	out = append(out, pos...)
	if tail != "" {
		out = append(out, tail)
	}
	return out
}

func allShortBools(s string, known, takesValue map[string]bool) bool {
	for _, r := range s {
		if n := string(r); !known[n] || takesValue[n] {
			return false
		}
	}
	return true
}
