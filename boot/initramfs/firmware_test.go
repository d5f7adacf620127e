package initramfs

import (
	"bytes"
	"debug/elf"
	"encoding/binary"
	"io"
	"strings"
	"testing"
	"testing/fstest"
)

// elfModule makes a minimal relocatable ELF64 object with a .modinfo
// section holding the given key=value strings, as a kernel module has.
func elfModule(t *testing.T, modinfo ...string) []byte {
	t.Helper()
	info := []byte(strings.Join(modinfo, "\x00") + "\x00")
	shstr := []byte("\x00.modinfo\x00.shstrtab\x00")
	const ehsize, shentsize = 64, 64
	infoOff := uint64(ehsize)
	strOff := infoOff + uint64(len(info))
	shOff := (strOff + uint64(len(shstr)) + 7) &^ 7
	var b bytes.Buffer
	h := elf.Header64{
		Type: uint16(elf.ET_REL), Machine: uint16(elf.EM_X86_64), Version: uint32(elf.EV_CURRENT),
		Shoff: shOff, Ehsize: ehsize, Shentsize: shentsize, Shnum: 3, Shstrndx: 2,
	}
	copy(h.Ident[:], elf.ELFMAG)
	h.Ident[elf.EI_CLASS] = byte(elf.ELFCLASS64)
	h.Ident[elf.EI_DATA] = byte(elf.ELFDATA2LSB)
	h.Ident[elf.EI_VERSION] = byte(elf.EV_CURRENT)
	binary.Write(&b, binary.LittleEndian, h)
	b.Write(info)
	b.Write(shstr)
	for uint64(b.Len()) < shOff {
		b.WriteByte(0)
	}
	for _, s := range []elf.Section64{
		{},
		{Name: 1, Type: uint32(elf.SHT_PROGBITS), Off: infoOff, Size: uint64(len(info)), Addralign: 1},
		{Name: 10, Type: uint32(elf.SHT_STRTAB), Off: strOff, Size: uint64(len(shstr)), Addralign: 1},
	} {
		binary.Write(&b, binary.LittleEndian, s)
	}
	return b.Bytes()
}

// TestFirmware: a module's declared firmware is taken from the image's
// /lib/firmware (decompressed from .xz), missing firmware is noted once,
// and a firmware name that climbs out of /lib/firmware is never read.
func TestFirmware(t *testing.T) {
	mod := elfModule(t, "license=GPL", "firmware=acme/fw1.bin", "firmware=acme/missing.bin", "firmware=../../etc/shadow", "firmware=acme/fw1.bin")
	if got := strings.Join(firmwareOf(mod), " "); got != "acme/fw1.bin acme/missing.bin ../../etc/shadow acme/fw1.bin" {
		t.Fatalf("firmwareOf = %q", got)
	}
	if firmwareOf([]byte("not elf")) != nil {
		t.Error("a non-ELF file declared firmware")
	}
	img := testImage(t)
	md := "lib/modules/" + kver + "/"
	img[md+"kernel/drivers/net/ethernet/intel/e1000/e1000.ko"] = &fstest.MapFile{Data: mod, Mode: 0o644}
	img["lib/firmware/acme/fw1.bin.xz"] = &fstest.MapFile{Data: xzBytes(t, []byte("FIRMWARE ONE")), Mode: 0o644}
	img["etc/shadow"] = &fstest.MapFile{Data: []byte("root:SECRET"), Mode: 0o600}
	b, m := build(t, Options{Image: img, Init: []byte("init")})
	recs := readBack(t, b)
	var found bool
	for _, r := range recs {
		if strings.Contains(r.Name, "shadow") {
			t.Errorf("archive holds %s", r.Name)
		}
		if r.Name == "lib/firmware/acme/fw1.bin" {
			found = true
			c, _ := io.ReadAll(io.NewSectionReader(r, 0, int64(r.FileSize)))
			if string(c) != "FIRMWARE ONE" {
				t.Errorf("fw1.bin = %q", c)
			}
		}
	}
	if !found {
		t.Error("archive lacks lib/firmware/acme/fw1.bin")
	}
	skipped := strings.Join(m.Skipped, "\n")
	if !strings.Contains(skipped, "firmware for e1000: 2 files not in the image's /lib/firmware (the distribution's firmware package has them): acme/missing.bin ../../etc/shadow") {
		t.Errorf("skipped:\n%s", skipped)
	}
}
