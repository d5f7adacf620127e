package tftp_test

import (
	"log"

	"github.com/onesis/git-onesis/boot/tftp"
)

// Serve Debian's iPXE binaries (and PXELINUX) on eth1's address, port 69.
func ExampleNew() {
	files := tftp.DefaultIPXEFiles(tftp.DefaultIPXEDir)
	for name, path := range tftp.PXELinuxFiles(tftp.DefaultPXELinuxDir, tftp.DefaultSyslinuxBIOSDir) {
		files[name] = path
	}
	srv, err := tftp.New(tftp.Config{Iface: "eth1", Files: files,
		Event: func(e tftp.Event) { log.Printf("%s %s %s %s", e.Client, e.Name, e.Status, e.Reason) }})
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve()
	defer srv.Close()
}
