// Package fold is proftask's profile fold in Go: the same rows as the Python fold
// (proftask/pprof/decode.py, fold.py, proftask/processing/profile_rows.py, proftask/core/node_table.py),
// about ten times faster. It decodes with the official protobuf runtime, so a profile reads as
// upb reads it in Python; it accepts exactly the profiles decode.parse_profile accepts and refuses
// the others in its words (the first fault it names), and anything it is not sure of (invalid
// UTF-8, unknown groups, bytes it cannot decode, any fault) it declines: the caller then runs the
// Python check, which decides. Differential tests (tests/unit/test_native_fold.py, the decoder
// fuzz) hold the two equal.
package fold

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"proftask.dev/native/profilepb"
)

// refusal is why decode.validate refuses p, in its words ("": it accepts p), checked in its
// order, so that the first fault named is the same; sure is false when Go cannot word the
// refusal as Python does (a sample type's name Python would quote in ways not replayed here).
func refusal(p *profilepb.Profile) (message string, sure bool) {
	strs := p.GetStringTable()
	n := int64(len(strs))
	if n == 0 || len(strs[0]) != 0 {
		return "string_table must start with the empty string", true
	}
	inRange := func(i int64) bool { return i >= 0 && i < n }
	badString := func(what string, i int64) (string, bool) {
		return fmt.Sprintf("%s refers to string %d, but the string table has %d", what, i, n), true
	}
	if len(p.GetSampleType()) == 0 {
		return "profile has no sample types", true
	}
	if len(p.GetSampleType()) > MaxSampleTypes {
		return fmt.Sprintf("profile has %d sample types, more than the %d proftask folds", len(p.GetSampleType()),
			MaxSampleTypes), true
	}
	for _, vt := range p.GetSampleType() {
		if !inRange(vt.GetType()) {
			return badString("sample_type.type", vt.GetType())
		}
		if !inRange(vt.GetUnit()) {
			return badString("sample_type.unit", vt.GetUnit())
		}
	}
	if !inRange(p.GetDefaultSampleType()) {
		return badString("default_sample_type", p.GetDefaultSampleType())
	}
	// decode._validate_exact: functions, their strings, locations, lines, samples
	functions := make(map[uint64]int, len(p.GetFunction())) // id → the bytes of its name (nameBytes)
	for _, f := range p.GetFunction() {
		if f.GetId() == 0 {
			return "malformed profile: found function with reserved ID=0", true
		}
	}
	for _, f := range p.GetFunction() {
		if _, dup := functions[f.GetId()]; dup {
			return "malformed profile: duplicate function IDs", true
		}
		functions[f.GetId()] = 0
	}
	for _, column := range []struct {
		what  string
		index func(*profilepb.Function) int64
	}{{"name", (*profilepb.Function).GetName}, {"system_name", (*profilepb.Function).GetSystemName},
		{"filename", (*profilepb.Function).GetFilename}} {
		for _, f := range p.GetFunction() {
			if i := column.index(f); !inRange(i) {
				return badString("a function "+column.what, i)
			}
		}
	}
	for _, f := range p.GetFunction() {
		functions[f.GetId()] = max(len(strs[f.GetName()]), len(strs[f.GetSystemName()]))
	}
	locations := newByLocationID(p.GetLocation()) // id → its frames
	for _, loc := range p.GetLocation() {
		if loc.GetId() == 0 {
			return "malformed profile: found location with reserved ID=0", true
		}
	}
	// decode.name_bytes: each line counts its function's name, the longer one
	nameBytes := 0
	unknownFunction, anyUnknown := uint64(0), false // the least, as Python names it
	for _, loc := range p.GetLocation() {
		if _, dup := locations.get(loc.GetId()); dup {
			return "malformed profile: duplicate location IDs", true
		}
		locations.set(loc.GetId(), max(len(loc.GetLine()), 1))
		for _, line := range loc.GetLine() {
			if id := line.GetFunctionId(); id != 0 {
				size, ok := functions[id]
				if !ok && (!anyUnknown || id < unknownFunction) {
					unknownFunction, anyUnknown = id, true
				}
				nameBytes += size
			}
		}
	}
	if anyUnknown {
		return fmt.Sprintf("a location refers to unknown function %d", unknownFunction), true
	}
	allFrames := 0 // of every sample's list: at least those of the distinct lists
	for _, s := range p.GetSample() {
		for _, id := range s.GetLocationId() {
			frames, ok := locations.get(id)
			if !ok {
				return fmt.Sprintf("a sample refers to unknown location %d", id), true
			}
			allFrames += frames
		}
	}
	nTypes := len(p.GetSampleType())
	for i, s := range p.GetSample() {
		if len(s.GetValue()) != nTypes {
			return fmt.Sprintf("sample %d has %d values for %d sample types", i, len(s.GetValue()), nTypes), true
		}
		for _, label := range s.GetLabel() {
			if !inRange(label.GetKey()) {
				return badString(fmt.Sprintf("sample %d label key", i), label.GetKey())
			}
			if !inRange(label.GetStr()) {
				return badString(fmt.Sprintf("sample %d label value", i), label.GetStr())
			}
		}
	}
	if m, sure := sumsRefusal(p, nTypes); m != "" || !sure {
		return m, sure
	}
	// frames × nTypes > MaxFrameValues ⇔ frames > MaxFrameValues/nTypes (no overflow)
	perType := MaxFrameValues / nTypes
	if bound := min(MaxStackFrames, perType); allFrames > bound {
		switch count := stackFrames(p, locations); {
		case count > MaxStackFrames:
			return fmt.Sprintf("its stacks hold %d frames (each distinct list of locations of its samples, "+
				"inlined calls counted), more than the %d proftask folds", count, MaxStackFrames), true
		case count > perType:
			return fmt.Sprintf("its stacks hold %d frames (each distinct list of locations of its samples, "+
				"inlined calls counted) for each of its %d sample types: %d values, more than the %d proftask folds",
				count, nTypes, count*nTypes, MaxFrameValues), true
		}
	}
	if nameBytes > MaxNameBytes {
		return fmt.Sprintf("the functions of its locations' lines are named in %d bytes (each line counts "+
			"its function's name), more than the %d proftask folds", nameBytes, MaxNameBytes), true
	}
	return "", true
}

// stackFrames: the frames Fold makes of the profile, those of its distinct location lists
// (decode.stack_frames); frames maps a location id to its frames.
func stackFrames(p *profilepb.Profile, frames byLocationID) int {
	seen := map[string]struct{}{}
	var key []byte
	total := 0
	for _, s := range p.GetSample() {
		key = locationsKey(key[:0], s.GetLocationId())
		if _, dup := seen[string(key)]; dup {
			continue
		}
		seen[string(key)] = struct{}{}
		for _, id := range s.GetLocationId() {
			n, _ := frames.get(id)
			total += n
		}
	}
	return total
}

// sumsRefusal: unless every type's positive values together, and its negative ones, fit in 64
// bits, decode.check_sums_fit's refusal of the first type that does not (summed exactly in 128
// bits); unsure when that type's name is not one whose Python repr is plain ('name').
func sumsRefusal(p *profilepb.Profile, nTypes int) (message string, sure bool) {
	for t := 0; t < nTypes; t++ {
		var posHi, posLo, negHi, negLo uint64
		for _, s := range p.GetSample() {
			v := s.GetValue()[t]
			var carry uint64
			if v > 0 {
				posLo, carry = bits.Add64(posLo, uint64(v), 0)
				posHi += carry
			} else if v < 0 {
				negLo, carry = bits.Add64(negLo, uint64(-(v+1))+1, 0) // |v|, also for MinInt64
				negHi += carry
			}
		}
		var beyond *big.Int
		switch {
		case posHi != 0 || posLo > math.MaxInt64:
			beyond = uint128(posHi, posLo)
		case negHi != 0 || negLo > 1<<63:
			beyond = uint128(negHi, negLo)
			beyond.Neg(beyond)
		default:
			continue
		}
		name := p.GetStringTable()[p.GetSampleType()[t].GetType()]
		if !plainRepr(name) {
			return "", false
		}
		return fmt.Sprintf("the values of sample type '%s' sum to %s, beyond the 64-bit range of totals "+
			"(%d..%d); refused rather than shown wrong", name, beyond, math.MinInt64, math.MaxInt64), true
	}
	return "", true
}

func uint128(hi, lo uint64) *big.Int {
	n := new(big.Int).SetUint64(hi)
	return n.Lsh(n, 64).Or(n, new(big.Int).SetUint64(lo))
}

// plainRepr: Python's repr of the string is it in single quotes (printable ASCII, no quote,
// no backslash).
func plainRepr(s []byte) bool {
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '\'' || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// allUTF8: Python decodes each string with U+FFFD replacement; a profile that needs it is left
// to Python rather than replaying its replacement rules here.
func allUTF8(p *profilepb.Profile) bool {
	for _, s := range p.GetStringTable() {
		if !utf8.Valid(s) {
			return false
		}
	}
	return true
}

// hasUnknownGroup: a group (wire type 3) among the unknown fields of any message. upb refuses
// groups and messages nested past 100 levels in all; the Go runtime skips unknown groups up to
// 10,000 deep. profile.proto has no groups, so a profile holding one is left to Python, which
// decides on it (rather than replaying upb's depth count here).
func hasUnknownGroup(p *profilepb.Profile) bool {
	has := func(m proto.Message) bool {
		b := m.ProtoReflect().GetUnknown()
		for len(b) > 0 {
			num, typ, n := protowire.ConsumeTag(b)
			if n < 0 || typ == protowire.StartGroupType {
				return true
			}
			b = b[n:]
			n = protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return true
			}
			b = b[n:]
		}
		return false
	}
	if has(p) || (p.GetPeriodType() != nil && has(p.GetPeriodType())) {
		return true
	}
	for _, vt := range p.GetSampleType() {
		if has(vt) {
			return true
		}
	}
	for _, s := range p.GetSample() {
		if has(s) {
			return true
		}
		for _, l := range s.GetLabel() {
			if has(l) {
				return true
			}
		}
	}
	for _, m := range p.GetMapping() {
		if has(m) {
			return true
		}
	}
	for _, loc := range p.GetLocation() {
		if has(loc) {
			return true
		}
		for _, line := range loc.GetLine() {
			if has(line) {
				return true
			}
		}
	}
	for _, f := range p.GetFunction() {
		if has(f) {
			return true
		}
	}
	return false
}

// locationsKey appends a sample's location list to key, as a map key: the samples with the same
// list are one stack (stackFrames, Fold).
func locationsKey(key []byte, ids []uint64) []byte {
	for _, id := range ids {
		key = binary.LittleEndian.AppendUint64(key, id)
	}
	return key
}
