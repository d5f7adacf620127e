package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/urfave/cli/v2"
)

var recordCmd = &cli.Command{
	Name:      "record",
	Usage:     "write .gitmeta for the work tree and stage it",
	UsageText: "git onesis record [--stdout] [--check] [--no-stage] [-q]",
	Description: "Scans every path git does not ignore (files and symlinks only when in the index)\n" +
		"and writes .gitmeta atomically, then stages it.",
	Flags: []cli.Flag{
		&cli.BoolFlag{Name: "stdout", Usage: "print the manifest instead of writing .gitmeta"},
		&cli.BoolFlag{Name: "check", Usage: "write nothing; exit 1 if .gitmeta is out of date"},
		&cli.BoolFlag{Name: "no-stage", Usage: "write .gitmeta but do not stage it"},
		quietFlag, progressFlag,
	},
	Action: runRecord,
}

func runRecord(c *cli.Context) error {
	if c.Args().Present() {
		return usageErr("record takes no arguments")
	}
	im, err := openConfiguredImage(c) // sets no config
	if err != nil {
		return err
	}
	m := meter(c, im, "Recording metadata")
	im.Progress = m.Set
	if c.Bool("stdout") || c.Bool("check") {
		man, err := im.Scan()
		if err != nil {
			return fatal(err)
		}
		m.Done()
		b, err := man.Bytes()
		if err != nil {
			return fatal(err)
		}
		if c.Bool("stdout") {
			_, err = c.App.Writer.Write(b)
			return err
		}
		old, _ := os.ReadFile(im.MetaPath())
		if !bytes.Equal(old, b) {
			fmt.Fprintln(c.App.ErrWriter, ".gitmeta is out of date; run 'git onesis record'")
			return cli.Exit("", exitDiff)
		}
		return nil
	}
	changed, man, err := im.Record(!c.Bool("no-stage"))
	if err != nil {
		return fatal(err)
	}
	m.Done()
	if !c.Bool("quiet") && changed {
		fmt.Fprintf(c.App.ErrWriter, "recorded %d entries in .gitmeta\n", len(man.Entries))
	}
	return nil
}
