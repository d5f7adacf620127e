package personality

import (
	"io/fs"
	"syscall"
)

const (
	oNoFollow = syscall.O_NOFOLLOW
	oNonblock = syscall.O_NONBLOCK
)

type owner struct {
	uid, gid uint32
	rdev     uint64
}

// statOwner returns the owner and device number of fi when the platform
// provides them.
func statOwner(fi fs.FileInfo) (owner, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return owner{}, false
	}
	return owner{st.Uid, st.Gid, uint64(st.Rdev)}, true
}
