package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/onesis/git-onesis/boot/initramfs/moddep"
)

// moduleList is the initramfs's list of modules to load (written by
// git onesis initramfs), dependencies first.
const moduleList = "/etc/onesis/modules"

// loadModules loads the initramfs's modules plus extra (onesis.modules=),
// each after its dependencies, with finit_module. A module already loaded
// is fine; a module that fails is reported and the boot goes on (a
// driver for absent hardware must not stop it). It returns the names
// loaded and the failures.
func loadModules(extra []string, logf func(string, ...any)) (loaded []string, failed []string, err error) {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		return nil, nil, err
	}
	kver := unix.ByteSliceToString(u.Release[:])
	dir := filepath.Join("/lib/modules", kver)
	f, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, nil, fmt.Errorf("this initramfs has no modules for the running kernel %s (%w); was it built for another kernel? rebuild it with 'git onesis initramfs --kver %s'", kver, err, kver)
	}
	deps, err := moddep.Parse(f)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	var want []string
	if lf, err := os.Open(moduleList); err == nil {
		sc := bufio.NewScanner(lf)
		for sc.Scan() {
			if w := strings.TrimSpace(sc.Text()); w != "" && !strings.HasPrefix(w, "#") {
				want = append(want, w)
			}
		}
		lf.Close()
	}
	want = append(want, extra...)
	mods, missing, err := deps.Resolve(want)
	if err != nil {
		return nil, nil, err
	}
	for _, m := range missing {
		logf("module %s is not in this initramfs; skipped", m)
	}
	for _, m := range mods {
		if err := loadModule(filepath.Join(dir, m.File)); err != nil {
			failed = append(failed, m.Name+": "+err.Error())
			continue
		}
		loaded = append(loaded, m.Name)
	}
	return loaded, failed, nil
}

func loadModule(file string) error {
	fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	err = unix.FinitModule(fd, "", 0)
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	return err
}
