// Package udpbuf enlarges the receive buffers of UDP sockets that take
// bursts: a power-on storm sends hundreds of DHCP DISCOVERs or TFTP read
// requests within milliseconds, and the kernel's default buffer (about
// 200 KiB) drops what does not fit, which each node then pays for with a
// retry seconds later.
package udpbuf

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// Size is the receive buffer asked for: about 10,000 DHCP packets.
const Size = 4 << 20

// Grow sets c's receive buffer to Size, past net.core.rmem_max when the
// process may (SO_RCVBUFFORCE needs CAP_NET_ADMIN, which serve has), else
// as far as rmem_max allows. It returns the size the kernel reports (twice
// what was set, for its bookkeeping), or 0 if it could not be read. Errors
// are not fatal: a smaller buffer only means more retries under a storm.
func Grow(c syscall.Conn) int {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	got := 0
	rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, Size) != nil {
			unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, Size)
		}
		got, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF)
	})
	return got
}
