package meta

import (
	"os"
	"testing"
)

func BenchmarkTmpParse(b *testing.B) {
	p := os.Getenv("TMP_GITMETA")
	if p == "" {
		b.Skip()
	}
	raw, _ := os.ReadFile(p)
	old, _ := os.ReadFile(os.Getenv("TMP_APPLIED"))
	b.Run("bytes", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ParseBytes(raw)
		}
	})
	b.Run("owned", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			ParseOwned(raw)
		}
	})
	b.Run("readfile", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			os.ReadFile(p)
		}
	})
	b.Run("difflines", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			DiffLines(old, raw)
		}
	})
}
