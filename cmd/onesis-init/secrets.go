package main

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// secretsDir is where, under the new root's /ram, fetched secrets live
// (root-only), bind-mounted over the image's placeholders.
const secretsDir = "ram/.onesis-secrets"

// maxSecrets bounds the archive, as the server does.
const maxSecrets = 16 << 20

// privilegedDialer dials from a source port below 1024, which the boot
// server takes as proof that root on this node asks.
func privilegedDialer(ctx context.Context, network, addr string) (net.Conn, error) {
	var last error
	for port := 1023; port >= 600; port-- {
		d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{Port: port}}
		c, err := d.DialContext(ctx, network, addr)
		if err == nil {
			return c, nil
		}
		last = err
		if !errors.Is(err, syscall.EADDRINUSE) && !errors.Is(err, syscall.EADDRNOTAVAIL) {
			return nil, err
		}
	}
	return nil, fmt.Errorf("no free privileged source port: %w", last)
}

// fetchSecrets downloads the node's secrets archive from url (from a
// privileged port), unpacks it under newRoot/ram/.onesis-secrets and
// bind-mounts each file over the same path of the read-only image, where
// serve exported an empty placeholder. It returns the paths it mounted.
// Nothing in the image is followed: each target is opened O_NOFOLLOW
// beneath newRoot and must be a regular file.
func fetchSecrets(newRoot, url string) ([]string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := &http.Client{Transport: &http.Transport{DialContext: privilegedDialer, DisableKeepAlives: true}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		return nil, nil // the server keeps no secrets for this node
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	base := filepath.Join(newRoot, secretsDir)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return nil, err
	}
	if err := os.Chmod(base, 0o700); err != nil {
		return nil, err
	}
	return unpackSecrets(io.LimitReader(resp.Body, maxSecrets+1), base, func(rel, src string) error {
		return bindOver(newRoot, rel, src)
	})
}

// unpackSecrets writes the regular files of a tar stream under base (paths
// cleaned and kept inside base, modes and owners from the archive) and
// calls mount for each with its image-relative path. Other entry types
// are ignored, except directories, which are created.
func unpackSecrets(r io.Reader, base string, mount func(rel, src string) error) ([]string, error) {
	tr := tar.NewReader(r)
	var done []string
	var total int64
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return done, nil
		}
		if err != nil {
			return done, fmt.Errorf("reading the secrets archive: %w", err)
		}
		rel := path.Clean("/" + strings.TrimPrefix(h.Name, "./"))[1:]
		if rel == "" || strings.HasPrefix(rel, "..") || strings.Contains(rel, "\x00") {
			continue
		}
		dst := filepath.Join(base, filepath.FromSlash(rel))
		switch h.Typeflag {
		case tar.TypeDir:
			if err := os.MkdirAll(dst, 0o700); err != nil {
				return done, err
			}
			continue
		case tar.TypeReg:
		default:
			continue
		}
		total += h.Size
		if total > maxSecrets {
			return done, fmt.Errorf("the secrets archive is larger than %d bytes", maxSecrets)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
			return done, err
		}
		f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|unix.O_NOFOLLOW, 0o600)
		if err != nil {
			return done, err
		}
		_, err = io.CopyN(f, tr, h.Size)
		if err == nil {
			err = f.Chown(h.Uid, h.Gid)
		}
		if err == nil {
			err = f.Chmod(os.FileMode(h.Mode & 0o777))
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return done, fmt.Errorf("writing %s: %w", rel, err)
		}
		if err := mount(rel, dst); err != nil {
			logf("secrets: %s not placed: %v", rel, err)
			continue
		}
		done = append(done, rel)
	}
}

// bindOver bind-mounts src over newRoot/rel, which must be a regular file
// reached without following any symlink.
func bindOver(newRoot, rel, src string) error {
	dirfd, err := unix.Open(newRoot, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dirfd)
	parts := strings.Split(rel, "/")
	for _, p := range parts[:len(parts)-1] {
		fd, err := unix.Openat(dirfd, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("%s is not a directory in the image (no placeholder to cover): %w", p, err)
		}
		unix.Close(dirfd)
		dirfd = fd
	}
	fd, err := unix.Openat(dirfd, parts[len(parts)-1], unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("no placeholder in the image: %w", err)
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("the image has something other than a regular file there")
	}
	return unix.Mount(src, "/proc/self/fd/"+strconv.Itoa(fd), "", unix.MS_BIND, "")
}
