package initramfs

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// maxModule bounds a decompressed module (the largest in-tree modules are
// tens of MB); a larger output is refused as a decompression bomb.
const maxModule = 512 << 20

// decompress returns the plain contents of a module file, judged by its
// name (.ko, .ko.xz, .ko.zst, .ko.gz).
func decompress(name string, b []byte) ([]byte, error) {
	switch {
	case strings.HasSuffix(name, ".ko"), strings.HasSuffix(name, ".ko.xz"),
		strings.HasSuffix(name, ".ko.zst"), strings.HasSuffix(name, ".ko.gz"):
		return decompressAny(name, b)
	}
	return nil, fmt.Errorf("%s is not a kernel module file (.ko, .ko.xz, .ko.zst, .ko.gz)", name)
}

// decompressAny returns the plain contents of a file judged by its name:
// .xz, .zst and .gz are decompressed, anything else is returned as is.
func decompressAny(name string, b []byte) ([]byte, error) {
	var r io.Reader
	switch {
	case strings.HasSuffix(name, ".xz"):
		x, err := xz.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("not a valid xz file: %w", err)
		}
		r = x
	case strings.HasSuffix(name, ".zst"):
		z, err := zstd.NewReader(bytes.NewReader(b), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, fmt.Errorf("not a valid zstd file: %w", err)
		}
		defer z.Close()
		r = z
	case strings.HasSuffix(name, ".gz"):
		g, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			return nil, fmt.Errorf("not a valid gzip file: %w", err)
		}
		r = g
	default:
		return b, nil
	}
	out, err := io.ReadAll(io.LimitReader(r, maxModule+1))
	if err != nil {
		return nil, fmt.Errorf("decompressing: %w", err)
	}
	if len(out) > maxModule {
		return nil, fmt.Errorf("decompresses to more than %d bytes", maxModule)
	}
	return out, nil
}
