package fold

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"

	"proftask.dev/native/profilepb"
)

// randomProfile: nFns functions, one location each (some of two inlined lines), nSamples stacks
// up to depth deep, two sample types, some values zero in one type only.
func randomProfile(seed int64, nFns, nSamples, deep int) []byte {
	rng := rand.New(rand.NewSource(seed))
	p := &profilepb.Profile{StringTable: [][]byte{{}, []byte("samples"), []byte("count"), []byte("cpu"),
		[]byte("nanoseconds")}}
	p.SampleType = []*profilepb.ValueType{{Type: 1, Unit: 2}, {Type: 3, Unit: 4}}
	for i := 0; i < nFns; i++ {
		p.StringTable = append(p.StringTable, []byte(fmt.Sprintf("pkg.f%d_%d", seed, i)))
		name := int64(len(p.StringTable) - 1)
		p.Function = append(p.Function, &profilepb.Function{Id: uint64(i + 1), Name: name, SystemName: name})
		loc := &profilepb.Location{Id: uint64(i + 1), Line: []*profilepb.Line{{FunctionId: uint64(i + 1), Line: int64(i % 7)}}}
		if i%5 == 0 && i > 0 { // an inlined caller
			loc.Line = append(loc.Line, &profilepb.Line{FunctionId: uint64(i), Line: 3})
		}
		p.Location = append(p.Location, loc)
	}
	for s := 0; s < nSamples; s++ {
		depth := 1 + rng.Intn(deep)
		ids := make([]uint64, depth)
		for d := range ids {
			ids[d] = uint64(1 + rng.Intn(nFns))
		}
		v := []int64{int64(rng.Intn(3)), int64(rng.Intn(1000))}
		p.Sample = append(p.Sample, &profilepb.Sample{LocationId: ids, Value: v})
	}
	raw, err := proto.Marshal(p)
	if err != nil {
		panic(err)
	}
	return raw
}

func folded(t testing.TB, raw []byte) []byte {
	p, refused, ok := Decode(raw)
	if !ok {
		t.Fatalf("declined: %s", refused)
	}
	return NewEncoder(Fold(p)).Bytes()
}

// A fold reuses the scratch the last one left (takeScratch): folds of different profiles, one
// after another and at once (the server folds small profiles in threads), answer as each alone.
func TestFoldsThatShareScratchAnswerAsEachAlone(t *testing.T) {
	raws := [][]byte{randomProfile(1, 300, 2000, 40), randomProfile(2, 20, 50, 6), randomProfile(3, 900, 2000, 80),
		randomProfile(4, 5, 3, 2)}
	want := make([][]byte, len(raws))
	for i, raw := range raws {
		DropScratch()
		want[i] = folded(t, raw)
	}
	// sequentially, each after every other
	for i := range raws {
		for j := range raws {
			folded(t, raws[j])
			if got := folded(t, raws[i]); !bytes.Equal(got, want[i]) {
				t.Fatalf("profile %d folded after profile %d answers differently", i, j)
			}
		}
	}
	var wg sync.WaitGroup
	errs := make(chan string, 64)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for k := 0; k < 12; k++ {
				i := (g + k) % len(raws)
				if got := folded(t, raws[i]); !bytes.Equal(got, want[i]) {
					errs <- fmt.Sprintf("goroutine %d: profile %d answers differently", g, i)
					return
				}
				if k%5 == 0 {
					DropScratch()
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
