package httpboot

import (
	"archive/tar"
	"errors"
	"io/fs"
	"net/http"
	"os"
	"path"
	"time"
)

// maxSecretsBytes bounds one node's secrets archive.
const maxSecretsBytes = 16 << 20

// secrets serves GET /n/<node>/secrets: a tar of SecretsDir/<node>/
// (regular files and directories, owned by root, modes kept), for the
// node itself only. The request must come from the node's inventory
// address and from a source port below 1024, which on a Linux node only
// root can bind. This keeps ordinary users on a node (and other nodes)
// from fetching it; it does not stop someone who controls the LAN (see
// docs/serve.md, "trust the network").
func (h *Handler) secrets(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("node")
	ap := clientAddrPort(r)
	n := h.cfg.Inventory().ByIP(ap.Addr().Unmap())
	if h.cfg.SecretsDir == "" || n == nil || n.Name != name || ap.Port() >= 1024 || ap.Port() == 0 {
		detail := "not the node's address or not a privileged port"
		h.log.Warn("http: secrets refused", "node", name, "client", ap.String(), "reason", detail)
		h.cfg.Status.Record(Event{Service: "http", Outcome: "secrets_denied", IP: ap.Addr().Unmap(), Detail: name + ": " + detail})
		generic(w, http.StatusForbidden)
		return
	}
	root, err := os.OpenRoot(h.cfg.SecretsDir)
	if err != nil {
		h.log.Error("http: secrets directory", "err", err)
		generic(w, http.StatusNotFound)
		return
	}
	defer root.Close()
	sub, err := root.OpenRoot(name)
	if err != nil {
		generic(w, http.StatusNotFound)
		return
	}
	defer sub.Close()
	// Collect first, so an error never leaves a half-written archive
	// behind a 200.
	type entry struct {
		path string
		dir  bool
		mode fs.FileMode
		data []byte
	}
	var entries []entry
	total := 0
	err = fs.WalkDir(sub.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			entries = append(entries, entry{path: p, dir: true, mode: info.Mode().Perm()})
		case info.Mode().IsRegular():
			b, err := sub.ReadFile(p) // os.Root: never leaves the directory
			if err != nil {
				return err
			}
			if total += len(b); total > maxSecretsBytes {
				return errors.New("secrets archive too large")
			}
			entries = append(entries, entry{path: p, mode: info.Mode().Perm(), data: b})
		default:
			h.log.Warn("http: secrets: skipping a non-regular file", "node", name, "path", p)
		}
		return nil
	})
	if err != nil {
		h.log.Error("http: secrets", "node", name, "err", err)
		generic(w, http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Cache-Control", "no-store")
	tw := tar.NewWriter(w)
	mtime := time.Unix(0, 0)
	for _, e := range entries {
		hdr := &tar.Header{Name: path.Clean(e.path), Mode: int64(e.mode), ModTime: mtime, Format: tar.FormatPAX}
		if e.dir {
			hdr.Typeflag, hdr.Name = tar.TypeDir, hdr.Name+"/"
		} else {
			hdr.Typeflag, hdr.Size = tar.TypeReg, int64(len(e.data))
		}
		if tw.WriteHeader(hdr) != nil {
			return
		}
		if !e.dir {
			if _, err := tw.Write(e.data); err != nil {
				return
			}
		}
	}
	tw.Close()
	h.log.Info("http: secrets delivered", "node", name, "files", len(entries))
	h.cfg.Status.Record(Event{Service: "http", Outcome: "secrets", Node: name, IP: ap.Addr().Unmap()})
}
