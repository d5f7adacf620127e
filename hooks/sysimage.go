package hooks

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"

	"github.com/onesis/git-onesis/boot/sysimage"
	"github.com/onesis/git-onesis/internal/image"
)

// sysimageConf is the configuration onesis-init parses at every boot.
const sysimageConf = "/etc/sysimage.conf"

// checkSysimage parses the staged etc/sysimage.conf, with its INCLUDEs as
// staged (from the index pre-commit's record read, when it did), and refuses the commit when it does not parse: every node would
// fail to build /ram from it at boot (or, before its limits existed, hang
// there). An image without the file is fine.
func checkSysimage(im *image.Image) error {
	read := map[string][]byte{} // a file included many times is read once
	open := func(p string) ([]byte, error) {
		if b, ok := read[p]; ok {
			return b, nil
		}
		// sysimage hands INCLUDE only clean absolute paths (no "..").
		b, ok, err := im.StagedBlob(strings.TrimPrefix(p, "/"))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, &fs.PathError{Op: "read", Path: p + " (staged)", Err: fs.ErrNotExist}
		}
		read[p] = b
		return b, nil
	}
	if _, err := open(sysimageConf); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if _, err := sysimage.Parse(open, sysimageConf); err != nil {
		return fmt.Errorf("etc/sysimage.conf as staged would fail every node's boot: %w\n"+
			"Fix it (limits and syntax: docs/sysimage.md; 'git onesis sysimage' shows the same error), or commit with --no-verify to skip this check", err)
	}
	return nil
}
