package fold

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"proftask.dev/native/profilepb"
)

// atFrames is a profile whose distinct stacks hold MaxStackFrames+extra frames: a location of
// 4,096 inlined lines 1,024 times in a stack (twice: one stack), and extra stacks of one address.
func atFrames(extra int, firstID uint64) *profilepb.Profile {
	p := &profilepb.Profile{StringTable: [][]byte{{}, []byte("samples"), []byte("count"), []byte("main.f")}}
	p.SampleType = []*profilepb.ValueType{{Type: 1, Unit: 2}}
	p.Function = []*profilepb.Function{{Id: 1, Name: 3, SystemName: 3}}
	deep := &profilepb.Location{Id: firstID}
	for i := 0; i < 4096; i++ {
		deep.Line = append(deep.Line, &profilepb.Line{FunctionId: 1, Line: int64(i)})
	}
	p.Location = []*profilepb.Location{deep}
	ids := make([]uint64, MaxStackFrames/4096)
	for i := range ids {
		ids[i] = firstID
	}
	p.Sample = []*profilepb.Sample{{LocationId: ids, Value: []int64{1}}, {LocationId: ids, Value: []int64{2}}}
	for i := 0; i < extra; i++ {
		id := firstID + 1 + uint64(i)
		p.Location = append(p.Location, &profilepb.Location{Id: id, Address: 0x1000})
		p.Sample = append(p.Sample, &profilepb.Sample{LocationId: []uint64{id}, Value: []int64{1}})
	}
	return p
}

// The bound of proftask.pprof.decode.MAX_STACK_FRAMES: tests/unit/test_stack_frames.py holds
// the two equal through the library.
func TestAProfileIsRefusedPastMaxStackFramesOnly(t *testing.T) {
	if MaxStackFrames != 1<<22 {
		t.Fatalf("MaxStackFrames = %d: change decode.MAX_STACK_FRAMES too", MaxStackFrames)
	}
	for _, firstID := range []uint64{1, 1 << 40} {
		for extra, want := range map[int]bool{0: true, 1: false} {
			raw, err := proto.Marshal(atFrames(extra, firstID))
			if err != nil {
				t.Fatal(err)
			}
			if _, _, accepted := Decode(raw); accepted != want {
				t.Errorf("ids from %d, %d frames: accepted %v, want %v", firstID, MaxStackFrames+extra, accepted, want)
			}
		}
	}
}
