package fold

import (
	"encoding/binary"
	"strconv"

	"proftask.dev/native/profilepb"
)

// The buffer handed to Python is a sequence of named arrays, each
//
//	u8 kind | u8 name length | name | zero padding to 8 | u64 count | count elements | padding to 8
//
// kind 1: u64, 2: i64, 3: u32, 4: strings (count+1 i64 offsets, then the UTF-8 bytes).
// Everything is little-endian and 8-aligned, so numpy reads the arrays in place.
const (
	kindU64 = 1
	kindI64 = 2
	kindU32 = 3
	kindStr = 4
)

type encoder struct{ buf []byte }

func (e *encoder) pad() {
	for len(e.buf)%8 != 0 {
		e.buf = append(e.buf, 0)
	}
}

func (e *encoder) head(kind byte, name string, count int) {
	e.buf = append(e.buf, kind, byte(len(name)))
	e.buf = append(e.buf, name...)
	e.pad()
	e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(count))
}

func (e *encoder) u64(name string, v []uint64) {
	e.head(kindU64, name, len(v))
	for _, x := range v {
		e.buf = binary.LittleEndian.AppendUint64(e.buf, x)
	}
}

func (e *encoder) i64(name string, v []int64) {
	e.head(kindI64, name, len(v))
	for _, x := range v {
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(x))
	}
}

func (e *encoder) u32(name string, v []uint32) {
	e.head(kindU32, name, len(v))
	for _, x := range v {
		e.buf = binary.LittleEndian.AppendUint32(e.buf, x)
	}
	e.pad()
}

func (e *encoder) strs(name string, v []string) {
	e.head(kindStr, name, len(v))
	at := 0
	e.buf = binary.LittleEndian.AppendUint64(e.buf, 0)
	for _, s := range v {
		at += len(s)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, uint64(at))
	}
	for _, s := range v {
		e.buf = append(e.buf, s...)
	}
	e.pad()
}

// EncodeSampleTypes: the intake's answer, the profile's sample types and units.
func EncodeSampleTypes(p *profilepb.Profile) []byte {
	types, units := SampleTypes(p)
	e := &encoder{}
	e.strs("types", types)
	e.strs("units", units)
	return e.buf
}

// Encode lays a Result out for proftask/pprof/native.py.
func Encode(r *Result) []byte {
	size := 8 * (len(r.Values) + 2*len(r.FunctionFrames) + 5*len(r.PathNode))
	for _, parts := range [][]Part{r.NodeParts, r.FunctionParts} {
		for _, part := range parts {
			size += 24 * len(part.ID)
		}
	}
	e := &encoder{buf: make([]byte, 0, size+1<<20)}
	e.strs("sample_types", r.SampleTypes)
	e.i64("default_index", []int64{r.DefaultIndex})
	e.strs("period_type", []string{r.PeriodType})
	e.i64("period", []int64{r.Period})
	e.u64("frame_id", r.FrameID)
	e.strs("frame_name", r.FrameName)
	e.strs("function", r.Function)
	e.i64("line", r.Line)
	e.i64("is_address", r.IsAddress)
	e.u64("stack_ids", r.StackID)
	e.i64("stack_offsets", r.StackOffsets)
	e.u64("function_frames", r.FunctionFrames)
	e.u64("line_frames", r.LineFrames)
	e.i64("values", r.Values)
	e.u64("path.node", r.PathNode)
	e.u64("path.parent", r.PathParent)
	e.u32("path.depth", r.PathDepth)
	e.u64("path.frame_id", r.PathFrame)
	for kind, parts := range map[string][]Part{"node": r.NodeParts, "function": r.FunctionParts} {
		for i, part := range parts {
			prefix := kind + "." + strconv.Itoa(i) + "."
			e.u64(prefix+"id", part.ID)
			e.i64(prefix+"a", part.A)
			e.i64(prefix+"b", part.B)
		}
	}
	return e.buf
}
