package fold

import (
	"encoding/binary"
	"fmt"
	"hash"
	"slices"
	"strconv"
	"unsafe"

	"golang.org/x/crypto/blake2b"
	"google.golang.org/protobuf/proto"

	"proftask.dev/native/profilepb"
)

// Part is one (granularity, sample type) of the folded profile: its node values
// (ID=node, A=self, B=total) or its function values (ID=frame, A=flat, B=cum), ascending by ID.
type Part struct {
	ID   []uint64
	A, B []int64
	// SameIDs: ID is the previous part's (the same granularity, the sample type before), which
	// the answer holds once (a CPU profile's nodes are mostly the same for every sample type)
	SameIDs bool
}

// Result is what profile_rows makes of a profile, in the same order.
type Result struct {
	SampleTypes  []string
	DefaultIndex int64
	// DefaultNamed: the profile names its default sample type (a merge takes the first profile's
	// that does, as pprof's combineHeaders); else DefaultIndex is the last type
	DefaultNamed bool
	PeriodType   string
	Period       int64
	// when the profile began and how long it ran: a merge takes the earliest and the sum, as pprof's
	TimeNanos     int64
	DurationNanos int64

	// frame_names rows, in the order of the Python dict they come from
	FrameID   []uint64
	FrameName []string
	Function  []string
	Line      []int64
	IsAddress []int64
	File      []string // the source file of the frame's function ("" for an address)

	StackID        []uint64
	StackOffsets   []int64
	FunctionFrames []uint64
	LineFrames     []uint64
	Values         []int64 // [stack][type]

	PathNode, PathParent, PathFrame []uint64
	PathDepth                       []uint32
	// where each granularity's paths end (function, line): the root is path 0, a granularity's
	// paths follow the one before, ascending by node
	PathEnds                 []int64
	NodeParts, FunctionParts []Part // granularity (function, line) major, sample type minor
}

// Decode reads a profile as the Python side does (upb and the official Go runtime agree on
// the wire): accepted, the profile proftask folds; else refused, proftask.pprof.decode's words
// for the first fault it would name (parse_profile raises the same; CorruptWire for bytes no
// decoder reads), or "" when Go declines: the Python check decides (bytes Go cannot decode that
// upb may, strings not UTF-8, unknown groups, a tag or a length of more than 5 bytes, which upb
// refuses, or a refusal Go cannot word as Python does).
func Decode(raw []byte) (p *profilepb.Profile, refused string, accepted bool) {
	if len(raw) == 0 {
		return nil, "", false
	}
	if m := wireRefusal(raw); m != "" {
		return nil, m, false // refused before it is decoded: decoding it would take gigabytes
	}
	p = &profilepb.Profile{}
	if err := proto.Unmarshal(raw, p); err != nil {
		// refused when its wire breaks at the top level past doubt, after a part that decodes
		// cleanly (else the Python decoder may stop earlier, for another reason)
		if at := corruptAt(raw); at >= 0 && proto.Unmarshal(raw[:at], p) == nil && !hasUnknownGroup(p) {
			return nil, CorruptWire, false
		}
		return nil, "", false
	}
	if hasUnknownGroup(p) || hasLongTag(raw, inProfile) { // upb may refuse the profile whole: Python words it
		return nil, "", false
	}
	// strings are bytes to decode.validate, so one not UTF-8 changes no refusal (sample type
	// names, which may be quoted in one, are left to Python by refusal itself)
	if m, sure := refusal(p); m != "" || !sure {
		return nil, m, false
	}
	if !allUTF8(p) {
		return nil, "", false
	}
	return p, "", true
}

// SampleTypes are the profile's (type, unit) pairs, for the intake's check.
func SampleTypes(p *profilepb.Profile) (types, units []string) {
	strs := p.GetStringTable()
	for _, vt := range p.GetSampleType() {
		types = append(types, string(strs[vt.GetType()]))
		units = append(units, string(strs[vt.GetUnit()]))
	}
	return types, units
}

type frame struct {
	function  string
	line      int64
	isAddress bool
}

func (f frame) name(lineGranularity bool) string {
	if f.isAddress || !lineGranularity {
		return f.function
	}
	return f.function + ":" + strconv.FormatInt(f.line, 10)
}

// hasher is blake2b with an 8-byte digest (profile_rows.hash64), reused.
type hasher struct {
	h   hash.Hash
	sum []byte
}

func newHasher() *hasher {
	h, _ := blake2b.New(8, nil)
	return &hasher{h: h, sum: make([]byte, 0, 8)}
}

func (h *hasher) hash64(data []byte) uint64 {
	h.h.Reset()
	h.h.Write(data)
	return binary.LittleEndian.Uint64(h.h.Sum(h.sum[:0]))
}

// MaxStackFrames bounds the frames of the distinct stacks (each distinct location list's frames,
// inlined lines counted: stackFrames) of a profile proftask accepts, as
// proftask.pprof.decode.MAX_STACK_FRAMES does. A small profile can spell many (a location of
// 5,000 inlined lines, 5,000 times in a sample: 40 KB, 25 million frames, tens of GB folded),
// and Go out of memory ends the whole process: no recover() catches it. About 4 times the most
// of the conformance corpus (992,028) and 6 times a 30 MiB bench/big_profile.py profile's; at the
// bound, one stack that deep takes ~1.6 GB and 3 s.
const MaxStackFrames = 1 << 22

// MaxFrameValues bounds those frames times the sample types (decode.MAX_FRAME_VALUES): the fold
// makes each node's values once per sample type, so 2^22 frames of 64 types took ~28 GB.
const MaxFrameValues = 1 << 24

// MaxSampleTypes bounds the sample types of a profile proftask accepts (decode.MAX_SAMPLE_TYPES):
// each is folded, stored and listed in every answer; 65,537 of them in a 747-byte upload were
// never stored (type_index is a UInt16).
const MaxSampleTypes = 256

// MaxNameBytes bounds the bytes of the function names of every location's lines, each line
// counting its function's name or system name, the longer (decode.MAX_NAME_BYTES): a frame is
// named `function:line`, so a long name on many lines of distinct numbers folds into gigabytes.
const MaxNameBytes = 1 << 26

// Fold is profile_rows' fold of a decoded, accepted profile; nil when it would fold more than
// MaxStackFrames frames (Decode refuses such a profile; checked again as it folds).
func Fold(p *profilepb.Profile) *Result {
	prune(p) // as pprof reads it: its drop_frames applied
	strs := p.GetStringTable()
	text := func(i int64) string {
		if i >= 0 && i < int64(len(strs)) {
			return string(strs[i])
		}
		return ""
	}
	r := &Result{Period: p.GetPeriod(), TimeNanos: p.GetTimeNanos(), DurationNanos: p.GetDurationNanos()}
	defaultName := text(p.GetDefaultSampleType())
	r.DefaultIndex = -1
	for i, vt := range p.GetSampleType() {
		r.SampleTypes = append(r.SampleTypes, text(vt.GetType())+"/"+text(vt.GetUnit()))
		// pprof's SampleIndexByName: a default named "" is no name (the last type), not a type named ""
		if r.DefaultIndex < 0 && defaultName != "" && text(vt.GetType()) == defaultName {
			r.DefaultIndex = int64(i)
		}
	}
	r.DefaultNamed = defaultName != "" // pprof's merge takes the first named, a type of it or not (then the last)
	if r.DefaultIndex < 0 {
		r.DefaultIndex = int64(len(r.SampleTypes) - 1)
	}
	if pt := p.GetPeriodType(); pt != nil {
		r.PeriodType = text(pt.GetType()) + "/" + text(pt.GetUnit())
	}
	nTypes := len(r.SampleTypes)

	functionNames := make(map[uint64]string, len(p.GetFunction()))
	shown := map[[2]int64]string{} // each (name, system name) once: many functions may share one long name
	// a function's source file, by its name (the first file named for it: fold.fold_stacks)
	fileOf := make(map[string]string, len(p.GetFunction()))
	for _, f := range p.GetFunction() {
		pair := [2]int64{f.GetName(), f.GetSystemName()}
		name, ok := shown[pair]
		if !ok {
			name = displayName(text(f.GetName()), text(f.GetSystemName()))
			shown[pair] = name
		}
		functionNames[f.GetId()] = name
		if file := text(f.GetFilename()); file != "" && fileOf[name] == "" {
			fileOf[name] = file
		}
	}
	frameIndex := make(map[frame]int64, len(p.GetLocation()))
	var frames []frame
	intern := func(f frame) int64 {
		i, ok := frameIndex[f]
		if !ok {
			i = int64(len(frames))
			frameIndex[f] = i
			frames = append(frames, f)
		}
		return i
	}
	// per location, its frames caller first (fold.fold_stacks says why)
	locFrames := make([][]int64, len(p.GetLocation()))
	locations := positions(p.GetLocation())
	for k, loc := range p.GetLocation() {
		lines := loc.GetLine()
		if len(lines) == 0 {
			locFrames[k] = []int64{intern(frame{fmt.Sprintf("%#x", loc.GetAddress()), 0, true})}
			continue
		}
		out := make([]int64, 0, len(lines))
		for j := len(lines) - 1; j >= 0; j-- {
			name, ok := functionNames[lines[j].GetFunctionId()]
			if !ok {
				name = "??"
			}
			out = append(out, intern(frame{name, lines[j].GetLine(), false}))
		}
		locFrames[k] = out
	}

	// samples with the same location list, then stacks with the same frames, summed in order
	// of first appearance
	// (sized for a distinct location list a sample, the most there can be, up to a bound: a map
	// growing to its size rehashed every key several times; a profile of millions of tiny
	// samples does not get gigabytes of maps up front)
	hint := min(len(p.GetSample()), 1<<17)
	byLocations := make(map[string]int, hint)
	byFrames := make(map[string]int, hint)
	var stackFrames [][]int64
	var values []int64
	var key, fkey []byte
	positions := 0
	for _, s := range p.GetSample() {
		key = locationsKey(key[:0], s.GetLocationId())
		target, seen := byLocations[string(key)]
		if !seen {
			ids := s.GetLocationId()
			size := 0
			for _, id := range ids {
				size += len(locFrames[locations.of(id)])
			}
			if positions += size; positions > MaxStackFrames {
				return nil // the Python fold takes it: its MemoryError is an exception, Go's ends the process
			}
			fs := make([]int64, 0, size)
			for j := len(ids) - 1; j >= 0; j-- {
				fs = append(fs, locFrames[locations.of(ids[j])]...)
			}
			fkey = fkey[:0]
			for _, f := range fs {
				fkey = binary.LittleEndian.AppendUint64(fkey, uint64(f))
			}
			target, seen = byFrames[string(fkey)]
			if !seen {
				target = len(stackFrames)
				byFrames[string(fkey)] = target
				stackFrames = append(stackFrames, fs)
				values = append(values, make([]int64, nTypes)...)
			}
			byLocations[string(key)] = target
		}
		for t, v := range s.GetValue() {
			values[target*nTypes+t] += v
		}
	}

	// frame ids at both granularities; frame_names in the Python dict's order
	rowOf := make(map[uint64]int, len(frames))
	h := newHasher()
	ids := func(lineGranularity bool) []uint64 {
		out := make([]uint64, len(frames))
		for i, f := range frames {
			name := f.name(lineGranularity)
			fid := h.hash64(unsafe.Slice(unsafe.StringData(name), len(name))) // the name's bytes, not copied: read only
			line := int64(0)
			if lineGranularity {
				line = f.line
			}
			isAddress := int64(0)
			if f.isAddress {
				isAddress = 1
			}
			file := ""
			if !f.isAddress {
				file = fileOf[f.function]
			}
			if at, ok := rowOf[fid]; ok {
				r.FrameName[at], r.Function[at], r.Line[at], r.IsAddress[at], r.File[at] = name, f.function, line,
					isAddress, file
			} else {
				rowOf[fid] = len(r.FrameID)
				r.FrameID = append(r.FrameID, fid)
				r.FrameName = append(r.FrameName, name)
				r.Function = append(r.Function, f.function)
				r.Line = append(r.Line, line)
				r.IsAddress = append(r.IsAddress, isAddress)
				r.File = append(r.File, file)
			}
			out[i] = fid
		}
		return out
	}
	functionIDs, lineIDs := ids(false), ids(true)

	// a stack is named by its line-level frames; two frame lists that render alike are one
	// stack, and then the stacks go in the order of their ids (as numpy's unique leaves them)
	n := len(stackFrames)
	stackIDs := make([]uint64, n)
	buf := []byte{}
	for i, fs := range stackFrames {
		buf = buf[:0]
		for _, f := range fs {
			buf = binary.LittleEndian.AppendUint64(buf, lineIDs[f])
		}
		stackIDs[i] = h.hash64(buf)
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	unique := map[uint64]int{}
	for i, id := range stackIDs {
		if _, ok := unique[id]; !ok {
			unique[id] = i
		}
	}
	if len(unique) != n {
		firsts := make([]int, 0, len(unique))
		for _, i := range unique {
			firsts = append(firsts, i)
		}
		slices.SortFunc(firsts, func(a, b int) int { return cmpUint(stackIDs[a], stackIDs[b]) })
		merged := make([]int64, len(firsts)*nTypes)
		place := map[uint64]int{}
		for j, i := range firsts {
			place[stackIDs[i]] = j
		}
		for i, id := range stackIDs {
			j := place[id]
			for t := 0; t < nTypes; t++ {
				merged[j*nTypes+t] += values[i*nTypes+t]
			}
		}
		order, values = firsts, merged
	}
	r.Values = values
	r.StackOffsets = make([]int64, 1, len(order)+1)
	nPos := 0
	for _, i := range order {
		nPos += len(stackFrames[i])
	}
	posFrame := make([]int32, 0, nPos)
	r.StackID = make([]uint64, 0, len(order))
	r.FunctionFrames, r.LineFrames = make([]uint64, 0, nPos), make([]uint64, 0, nPos)
	for _, i := range order {
		r.StackID = append(r.StackID, stackIDs[i])
		for _, f := range stackFrames[i] {
			posFrame = append(posFrame, int32(f))
			r.FunctionFrames = append(r.FunctionFrames, functionIDs[f])
			r.LineFrames = append(r.LineFrames, lineIDs[f])
		}
		r.StackOffsets = append(r.StackOffsets, int64(len(r.FunctionFrames)))
	}

	// the root once, then each granularity's nodes and parts
	r.PathNode, r.PathParent = make([]uint64, 1, 2*nPos+1), make([]uint64, 1, 2*nPos+1)
	r.PathFrame, r.PathDepth = make([]uint64, 1, 2*nPos+1), make([]uint32, 1, 2*nPos+1)
	sc := takeScratch(nPos)
	defer putScratch(sc)
	column := make([]int64, len(order))
	for g, flat := range [][]uint64{r.FunctionFrames, r.LineFrames} {
		sf := newStackFold(r.StackOffsets, flat, posFrame, [][]uint64{functionIDs, lineIDs}[g], r, sc)
		r.PathEnds = append(r.PathEnds, int64(len(r.PathNode)))
		for t := 0; t < nTypes; t++ {
			for s := range column {
				column[s] = values[s*nTypes+t]
			}
			r.NodeParts = append(r.NodeParts, sf.nodes(column))
			r.FunctionParts = append(r.FunctionParts, sf.functions(column))
		}
	}
	return r
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// byLocationID maps a location id to a value (its position, its frames): through a slice indexed
// by id when the ids are compact (pprof numbers locations 1..n; a large profile's ~500k lookups of
// its samples' location ids go several times faster than through a map), else a map.
type byLocationID struct {
	dense  []int32 // value+1 at an id; 0: no such location
	sparse map[uint64]int
}

func newByLocationID(locations []*profilepb.Location) byLocationID {
	maxID := uint64(0)
	for _, loc := range locations {
		maxID = max(maxID, loc.GetId())
	}
	if maxID <= uint64(4*len(locations)+1024) {
		return byLocationID{dense: make([]int32, maxID+1)}
	}
	return byLocationID{sparse: make(map[uint64]int, len(locations))}
}

func (m byLocationID) get(id uint64) (int, bool) {
	if m.sparse != nil {
		v, ok := m.sparse[id]
		return v, ok
	}
	if id >= uint64(len(m.dense)) || m.dense[id] == 0 {
		return 0, false
	}
	return int(m.dense[id]) - 1, true
}

func (m byLocationID) set(id uint64, v int) {
	if m.sparse != nil {
		m.sparse[id] = v
		return
	}
	m.dense[id] = int32(v) + 1
}

// of is the value at an id known to be there (Fold runs on a validated profile).
func (m byLocationID) of(id uint64) int {
	v, _ := m.get(id)
	return v
}

// positions: each location's position in the profile by its id
func positions(locations []*profilepb.Location) byLocationID {
	m := newByLocationID(locations)
	for k, loc := range locations {
		m.set(loc.GetId(), k)
	}
	return m
}
