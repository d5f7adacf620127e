package testkit

import "encoding/binary"

// BzImage returns the start of an x86 bzImage whose setup header carries
// version as its kernel_version string (Linux boot protocol 2.15), laid
// out as a real one is: boot flag 0xAA55 at 0x1FE, "HdrS" at 0x202, the
// protocol at 0x206 and, at 0x20E, the string's offset less 0x200. Tests
// use it as a kernel whose version only its header tells.
func BzImage(version string) []byte {
	b := make([]byte, 0x4400)
	binary.LittleEndian.PutUint16(b[0x1FE:], 0xAA55)
	copy(b[0x202:], "HdrS")
	binary.LittleEndian.PutUint16(b[0x206:], 0x020F)
	binary.LittleEndian.PutUint16(b[0x20E:], 0x3000)
	copy(b[0x3200:], version+" (builder@example) #1 SMP PREEMPT_DYNAMIC\x00")
	return b
}
