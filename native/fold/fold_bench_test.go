package fold

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"testing"
)

func largeProfile(tb testing.TB) []byte {
	f, err := os.ReadFile("../../../shared/conformance/large/pprof-large.cpu.pb.gz")
	if err != nil {
		tb.Skip("no ../shared conformance files")
	}
	z, err := gzip.NewReader(bytes.NewReader(f))
	if err != nil {
		tb.Fatal(err)
	}
	raw, err := io.ReadAll(z)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

func BenchmarkFoldLarge(b *testing.B) {
	raw := largeProfile(b)
	for i := 0; i < b.N; i++ {
		p, _, ok := Decode(raw)
		if !ok {
			b.Fatal("declined")
		}
		NewEncoder(Fold(p)).Bytes()
	}
}
