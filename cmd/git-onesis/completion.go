package main

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// bashCompletion defines _git_onesis, which git's own bash completion calls
// for `git onesis <TAB>`, plus completion for the git-onesis binary. Both ask
// the binary for candidates through urfave/cli's --generate-bash-completion.
const bashCompletion = `# bash completion for git-onesis                              -*- shell-script -*-
__git_onesis_complete() {
	local cur=$1; shift
	local IFS=$'\n'
	COMPREPLY=($(compgen -W "$("$@" --generate-bash-completion 2>/dev/null)" -- "$cur"))
}
_git_onesis() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	__git_onesis_complete "$cur" git-onesis "${COMP_WORDS[@]:2:COMP_CWORD-2}"
}
_git_onesis_bin() {
	local cur="${COMP_WORDS[COMP_CWORD]}"
	__git_onesis_complete "$cur" git-onesis "${COMP_WORDS[@]:1:COMP_CWORD-1}"
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
