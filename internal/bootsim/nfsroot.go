package bootsim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	nfsc "github.com/willscott/go-nfs-client/nfs"
	"github.com/willscott/go-nfs-client/nfs/rpc"
)

// RootStats is what ReadRoot read.
type RootStats struct {
	Dirs, Files, Symlinks, Other int
	Bytes                        int64
	Duration                     time.Duration
	// Calls and Lookups count the RPCs and LOOKUPs of ReadRootPipelined.
	Calls, Lookups int64
}

// NFS file types (RFC 1813 ftype3).
const (
	nf3Reg = 1
	nf3Dir = 2
	nf3Lnk = 5
)

// ReadRoot does what a booting node does to its root, and more: it mounts
// export from the NFS server at host:port (NFSv3 over TCP, from a
// privileged port, AUTH_SYS as uid/gid), walks the whole tree with
// READDIRPLUS and reads every regular file to its end and every symlink's
// target. go-nfs-client looks every path up from the root, one LOOKUP per
// component, where a kernel client would use its dentry cache: per file
// read this is more work for the server than a node does, not less.
// file, if set, is called with each regular file's path (relative, slash
// separated) and content; an error from it ends the walk. ctx bounds the
// whole read.
func ReadRoot(ctx context.Context, host string, port int, export string, uid, gid uint32, file func(p string, data []byte) error) (*RootStats, error) {
	start := time.Now()
	client, err := nfsc.DialServiceAtPort(host, port)
	if err != nil {
		return nil, fmt.Errorf("dialing the NFS server %s:%d: %w", host, port, err)
	}
	defer client.Close()
	// go-nfs-client has no contexts: closing the connection ends a read
	// the deadline caught.
	stop := context.AfterFunc(ctx, client.Close)
	defer stop()
	tg, err := (&nfsc.Mount{Client: client}).Mount(export, rpc.NewAuthUnix("bootsim", uid, gid).Auth())
	if err != nil {
		return nil, fmt.Errorf("MOUNT %s: %w", export, err)
	}
	st := &RootStats{}
	buf := make([]byte, 1<<20)
	var walk func(dir string) error
	walk = func(dir string) error {
		st.Dirs++
		ents, err := tg.ReadDirPlus(dir)
		if err != nil {
			return fmt.Errorf("READDIRPLUS %s: %w", dir, err)
		}
		for _, e := range ents {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			name := e.Name()
			if name == "." || name == ".." {
				continue
			}
			p := path.Join(dir, name)
			if !e.Attr.IsSet {
				return fmt.Errorf("READDIRPLUS %s: no attributes for %s", dir, name)
			}
			switch e.Attr.Attr.Type {
			case nf3Dir:
				if err := walk(p); err != nil {
					return err
				}
			case nf3Reg:
				data, err := readFile(tg, p, buf, file != nil)
				if err != nil {
					return err
				}
				st.Files++
				st.Bytes += int64(len(data.b)) + data.n
				if file != nil {
					if err := file(strings.TrimPrefix(p, "/"), data.b); err != nil {
						return err
					}
				}
			case nf3Lnk:
				f, err := tg.Open(p)
				if err != nil {
					return fmt.Errorf("LOOKUP %s: %w", p, err)
				}
				_, err = f.Readlink()
				if err != nil {
					return fmt.Errorf("READLINK %s: %w", p, err)
				}
				st.Symlinks++
			default:
				st.Other++
			}
		}
		return nil
	}
	err = walk("/")
	st.Duration = time.Since(start)
	if ctx.Err() != nil {
		return st, fmt.Errorf("reading %s: %w", export, ctx.Err())
	}
	return st, err
}

type fileData struct {
	b []byte // the content, when kept
	n int64  // bytes read and not kept
}

func readFile(tg *nfsc.Target, p string, buf []byte, keep bool) (fileData, error) {
	var d fileData
	f, err := tg.Open(p)
	if err != nil {
		return d, fmt.Errorf("LOOKUP %s: %w", p, err)
	}
	// No Close: go-nfs-client's Close sends a COMMIT, which a node
	// reading a read-only root never does.
	var off int64
	for {
		n, err := f.ReadAt(buf, off)
		off += int64(n)
		if keep {
			d.b = append(d.b, buf[:n]...)
		} else {
			d.n += int64(n)
		}
		if errors.Is(err, io.EOF) {
			return d, nil
		}
		if err != nil {
			return d, fmt.Errorf("READ %s at %d: %w", p, off, err)
		}
		if n == 0 {
			return d, fmt.Errorf("READ %s at %d: no data and no end of file", p, off)
		}
	}
}
