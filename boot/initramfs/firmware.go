package initramfs

import (
	"bytes"
	"debug/elf"
	"io/fs"
	"path"
	"strings"
)

// firmwareOf lists the firmware files a module declares (its .modinfo
// "firmware=" entries, what `modinfo -F firmware` prints). A file that is
// not an ELF object declares none.
func firmwareOf(module []byte) []string {
	f, err := elf.NewFile(bytes.NewReader(module))
	if err != nil {
		return nil
	}
	defer f.Close()
	sec := f.Section(".modinfo")
	if sec == nil {
		return nil
	}
	data, err := sec.Data()
	if err != nil {
		return nil
	}
	var out []string
	for _, kv := range strings.Split(string(data), "\x00") {
		if v, ok := strings.CutPrefix(kv, "firmware="); ok && v != "" {
			out = append(out, v)
		}
	}
	return out
}

// findFirmware looks for name under the image's lib/firmware (also as
// .xz or .zst, as newer distributions ship it) and returns its contents,
// decompressed, and the file it came from.
func findFirmware(image fs.FS, name string) ([]byte, string, bool, error) {
	clean := path.Clean(name)
	if path.IsAbs(clean) || clean == ".." || strings.HasPrefix(clean, "../") {
		return nil, "", false, nil
	}
	for _, dir := range []string{"lib/firmware", "usr/lib/firmware"} {
		for _, suffix := range []string{"", ".xz", ".zst"} {
			p := path.Join(dir, clean) + suffix
			b, err := fs.ReadFile(image, p)
			if err != nil {
				continue
			}
			plain, err := decompressAny(p, b)
			if err != nil {
				return nil, p, false, err
			}
			return plain, p, true, nil
		}
	}
	return nil, "", false, nil
}
