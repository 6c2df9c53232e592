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
	var dst []byte // the answer is written where Python has its buffer, as libfold does
	for i := 0; i < b.N; i++ {
		p, _, ok := Decode(raw)
		if !ok {
			b.Fatal("declined")
		}
		e := NewEncoder(Fold(p))
		dst = grow(dst, e.Size())
		e.WriteTo(dst)
	}
}
