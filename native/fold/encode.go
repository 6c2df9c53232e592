package fold

import (
	"encoding/binary"
	"strconv"
	"unsafe"

	"proftask.dev/native/profilepb"
)

// The answer handed to Python is a sequence of named arrays, each
//
//	u8 kind | u8 name length | name | zero padding to 8 | u64 count | count elements | padding to 8
//
// kind 1: u64, 2: i64, 3: u32, 4: strings (count+1 i64 offsets, then the UTF-8 bytes).
// Little-endian (as amd64 and arm64 are, so arrays are copied as they are in memory) and
// 8-aligned, so numpy reads the arrays in place.
const (
	kindU64 = 1
	kindI64 = 2
	kindU32 = 3
	kindStr = 4
)

type entry struct {
	kind  byte
	name  string
	count int
	data  []byte   // the elements as bytes (numbers)
	texts []string // kind 4
}

// Encoder is an answer laid out: first measured (Size), then written where the caller wants.
type Encoder struct {
	entries []entry
	size    int
}

func bytesOf[T uint64 | int64 | uint32](v []T) []byte {
	if len(v) == 0 {
		return nil
	}
	return unsafe.Slice((*byte)(unsafe.Pointer(&v[0])), len(v)*int(unsafe.Sizeof(v[0])))
}

func pad8(n int) int { return (n + 7) &^ 7 }

func (e *Encoder) add(x entry) {
	e.entries = append(e.entries, x)
	e.size += pad8(2+len(x.name)) + 8
	if x.kind == kindStr {
		e.size += 8 * (len(x.texts) + 1)
		n := 0
		for _, s := range x.texts {
			n += len(s)
		}
		e.size += pad8(n)
	} else {
		e.size += pad8(len(x.data))
	}
}

func (e *Encoder) u64(name string, v []uint64) {
	e.add(entry{kind: kindU64, name: name, count: len(v), data: bytesOf(v)})
}
func (e *Encoder) i64(name string, v []int64) {
	e.add(entry{kind: kindI64, name: name, count: len(v), data: bytesOf(v)})
}
func (e *Encoder) u32(name string, v []uint32) {
	e.add(entry{kind: kindU32, name: name, count: len(v), data: bytesOf(v)})
}
func (e *Encoder) strs(name string, v []string) {
	e.add(entry{kind: kindStr, name: name, count: len(v), texts: v})
}

// Size is the number of bytes WriteTo writes.
func (e *Encoder) Size() int { return e.size }

// WriteTo lays the answer out in dst (Size bytes; padding is zeroed).
func (e *Encoder) WriteTo(dst []byte) {
	at := 0
	zero := func(to int) {
		clear(dst[at:to])
		at = to
	}
	for _, x := range e.entries {
		dst[at], dst[at+1] = x.kind, byte(len(x.name))
		copy(dst[at+2:], x.name)
		at += 2 + len(x.name)
		zero(pad8(at))
		binary.LittleEndian.PutUint64(dst[at:], uint64(x.count))
		at += 8
		if x.kind != kindStr {
			at += copy(dst[at:], x.data)
			zero(pad8(at))
			continue
		}
		offset := 0
		binary.LittleEndian.PutUint64(dst[at:], 0)
		at += 8
		for _, s := range x.texts {
			offset += len(s)
			binary.LittleEndian.PutUint64(dst[at:], uint64(offset))
			at += 8
		}
		for _, s := range x.texts {
			at += copy(dst[at:], s)
		}
		zero(pad8(at))
	}
}

// Bytes is the answer in a new buffer (for tests and benchmarks).
func (e *Encoder) Bytes() []byte {
	b := make([]byte, e.size)
	e.WriteTo(b)
	return b
}

// SampleTypesEncoder: the intake's answer, the profile's sample types and units.
func SampleTypesEncoder(p *profilepb.Profile) *Encoder {
	types, units := SampleTypes(p)
	e := &Encoder{}
	e.strs("types", types)
	e.strs("units", units)
	return e
}

// NewEncoder lays a Result out for proftask/pprof/native.py.
func NewEncoder(r *Result) *Encoder {
	e := &Encoder{}
	e.strs("sample_types", r.SampleTypes)
	e.i64("default_index", []int64{r.DefaultIndex})
	named := int64(0)
	if r.DefaultNamed {
		named = 1
	}
	e.i64("default_named", []int64{named})
	e.strs("period_type", []string{r.PeriodType})
	e.i64("period", []int64{r.Period})
	e.i64("time_nanos", []int64{r.TimeNanos})
	e.i64("duration_nanos", []int64{r.DurationNanos})
	e.u64("frame_id", r.FrameID)
	e.strs("frame_name", r.FrameName)
	e.strs("function", r.Function)
	e.i64("line", r.Line)
	e.i64("is_address", r.IsAddress)
	e.strs("file", r.File)
	e.u64("stack_ids", r.StackID)
	e.i64("stack_offsets", r.StackOffsets)
	e.u64("function_frames", r.FunctionFrames)
	e.u64("line_frames", r.LineFrames)
	e.i64("values", r.Values)
	e.u64("path.node", r.PathNode)
	e.u64("path.parent", r.PathParent)
	e.u32("path.depth", r.PathDepth)
	e.u64("path.frame_id", r.PathFrame)
	e.i64("path.ends", r.PathEnds)
	for _, kind := range []struct {
		name  string
		parts []Part
	}{{"node", r.NodeParts}, {"function", r.FunctionParts}} {
		for i, part := range kind.parts {
			prefix := kind.name + "." + strconv.Itoa(i) + "."
			if !part.SameIDs { // else no id: the previous part's (native.py)
				e.u64(prefix+"id", part.ID)
			}
			e.i64(prefix+"a", part.A)
			e.i64(prefix+"b", part.B)
		}
	}
	return e
}
