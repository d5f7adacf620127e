package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/onesis/git-onesis/boot/invref"
	"github.com/onesis/git-onesis/internal/git"
)

// bashCompletion defines _git_onesis, which git's own bash completion calls
// for `git onesis <TAB>`, plus completion for the git-onesis binary. Both
// hand the words typed so far to 'git-onesis __complete', which answers
// with commands, subcommands, options, node names or revisions as the
// position calls for; nothing (so bash completes file names) elsewhere.
const bashCompletion = `# bash completion for git-onesis                              -*- shell-script -*-
__git_onesis_complete() {
	local IFS=$'\n'
	COMPREPLY=($(git-onesis __complete "$@" 2>/dev/null))
}
_git_onesis() {
	__git_onesis_complete "${COMP_WORDS[@]:2:COMP_CWORD-1}"
}
_git_onesis_bin() {
	__git_onesis_complete "${COMP_WORDS[@]:1:COMP_CWORD}"
}
complete -o bashdefault -o default -F _git_onesis_bin git-onesis
`

var completionCmd = &cli.Command{
	Name:      "completion",
	Usage:     "print a shell completion script",
	UsageText: "git onesis completion bash",
	Action: func(c *cli.Context) error {
		if c.NArg() != 1 || c.Args().First() != "bash" {
			return usageErr("completion takes one shell name: bash")
		}
		fmt.Fprint(c.App.Writer, bashCompletion)
		return nil
	},
}

// completeCmd answers the completion script: its arguments are the words
// after 'onesis', the last one being completed (possibly empty); it
// prints the candidates that start with it, one a line.
var completeCmd = &cli.Command{
	Name:            "__complete",
	Hidden:          true,
	SkipFlagParsing: true,
	Action: func(c *cli.Context) error {
		words := c.Args().Slice()
		if len(words) == 0 {
			words = []string{""}
		}
		cur := words[len(words)-1]
		for _, s := range candidates(c.App.Commands, words[:len(words)-1], cur) {
			if strings.HasPrefix(s, cur) {
				fmt.Fprintln(c.App.Writer, s)
			}
		}
		return nil
	},
}

// Flags whose values are revisions, and flags whose values are nodes.
var (
	revFlags  = []string{"rev", "ref", "from", "to", "branch", "base"}
	nodeFlags = []string{"node"}
)

// Commands whose arguments are revisions, or node names, by command path.
var (
	revArgs  = []string{"diff", "log", "rollback", "packages diff", "checkout", "verify", "sync", "upgrade promote", "upgrade abandon", "images sync", "export"}
	nodeArgs = []string{"node set", "node rm", "node list", "class"}
)

// candidates lists what may come at cur after the words before it.
func candidates(cmds []*cli.Command, before []string, cur string) []string {
	var cmd *cli.Command
	var path []string
	for _, w := range before {
		list := cmds
		if cmd != nil {
			list = cmd.Subcommands
		}
		sub := findCommand(list, w)
		if sub == nil {
			break
		}
		cmd, path = sub, append(path, sub.Name)
	}
	if cmd == nil {
		return commandNames(cmds)
	}
	if strings.HasPrefix(cur, "-") {
		var out []string
		for _, f := range cmd.Flags {
			for _, n := range f.Names() {
				if len(n) == 1 {
					out = append(out, "-"+n)
				} else {
					out = append(out, "--"+n)
				}
			}
		}
		return out
	}
	if n := len(before); n > 0 && strings.HasPrefix(before[n-1], "-") {
		name := strings.TrimLeft(before[n-1], "-")
		switch {
		case slices.Contains(revFlags, name):
			return revisions()
		case slices.Contains(nodeFlags, name):
			return nodeNames()
		}
		for _, f := range cmd.Flags {
			if _, isBool := f.(*cli.BoolFlag); !isBool && slices.Contains(f.Names(), name) {
				return nil // a file, a directory, a message: bash's own
			}
		}
	}
	if len(path) == len(before) {
		if subs := commandNames(cmd.Subcommands); len(subs) > 0 {
			return subs
		}
	}
	switch p := strings.Join(path, " "); {
	case slices.Contains(revArgs, p):
		return revisions()
	case slices.Contains(nodeArgs, p):
		return nodeNames()
	}
	return nil
}

func commandNames(cmds []*cli.Command) []string {
	var out []string
	for _, c := range cmds {
		if !c.Hidden && c.Name != "help" {
			out = append(out, c.Name)
		}
	}
	return out
}

// revisions lists HEAD and the branches, tags and remote-tracking branches
// of the repository around the current directory, as git's completion
// offers them.
func revisions() []string {
	r, err := git.Discover(".")
	if err != nil {
		return nil
	}
	out, err := r.Run("for-each-ref", "--format=%(refname:short)", "refs/heads", "refs/tags", "refs/remotes")
	if err != nil {
		return nil
	}
	return append([]string{"HEAD"}, strings.Fields(string(out))...)
}

// nodeNames lists the nodes of the inventory.
func nodeNames() []string {
	r, err := git.Discover(".")
	if err != nil {
		return nil
	}
	inv, err := invref.Load(r)
	if err != nil {
		return nil
	}
	var out []string
	for _, n := range inv.Nodes {
		out = append(out, n.Name)
	}
	return out
}
