// Package fold is proftask's profile fold in Go: the same rows as the Python fold
// (proftask/pprof/decode.py, fold.py, proftask/processing/profile_rows.py, proftask/core/node_table.py),
// about ten times faster. It decodes with the official protobuf runtime, so a profile reads as
// upb reads it in Python; it accepts exactly the profiles decode.validate accepts, and anything
// it is not sure of (invalid UTF-8, any fault) it declines: the caller then runs the Python fold,
// which names the fault. Differential tests (tests/unit/test_native_fold.py) hold the two equal.
package fold

import (
	"encoding/binary"
	"math"
	"math/bits"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"proftask.dev/native/profilepb"
)

// valid reports whether decode.validate would accept p. It needs no reason: a refused profile
// is folded again by Python, which gives one.
func valid(p *profilepb.Profile) bool {
	strs := p.GetStringTable()
	n := int64(len(strs))
	if n == 0 || len(strs[0]) != 0 || len(p.GetSampleType()) == 0 {
		return false
	}
	inRange := func(i int64) bool { return i >= 0 && i < n }
	for _, vt := range p.GetSampleType() {
		if !inRange(vt.GetType()) || !inRange(vt.GetUnit()) {
			return false
		}
	}
	if !inRange(p.GetDefaultSampleType()) {
		return false
	}
	functions := make(map[uint64]int, len(p.GetFunction())) // id → the bytes of its name (nameBytes)
	for _, f := range p.GetFunction() {
		if _, dup := functions[f.GetId()]; f.GetId() == 0 || dup {
			return false
		}
		if !inRange(f.GetName()) || !inRange(f.GetSystemName()) || !inRange(f.GetFilename()) {
			return false
		}
		functions[f.GetId()] = max(len(strs[f.GetName()]), len(strs[f.GetSystemName()]))
	}
	// decode.name_bytes: each line counts its function's name, the longer one
	nameBytes := 0
	locations := make(map[uint64]int, len(p.GetLocation())) // id → its frames
	for _, loc := range p.GetLocation() {
		if _, dup := locations[loc.GetId()]; loc.GetId() == 0 || dup {
			return false
		}
		locations[loc.GetId()] = max(len(loc.GetLine()), 1)
		for _, line := range loc.GetLine() {
			if id := line.GetFunctionId(); id != 0 {
				size, ok := functions[id]
				if !ok {
					return false
				}
				nameBytes += size
			}
		}
	}
	nTypes := len(p.GetSampleType())
	allFrames := 0 // of every sample's list: at least those of the distinct lists
	for _, s := range p.GetSample() {
		if len(s.GetValue()) != nTypes {
			return false
		}
		for _, id := range s.GetLocationId() {
			frames, ok := locations[id]
			if !ok {
				return false
			}
			allFrames += frames
		}
		for _, label := range s.GetLabel() {
			if !inRange(label.GetKey()) || !inRange(label.GetStr()) {
				return false
			}
		}
	}
	// frames × nTypes > MaxFrameValues ⇔ frames > MaxFrameValues/nTypes (no overflow)
	bound := min(MaxStackFrames, MaxFrameValues/nTypes)
	if allFrames > bound && stackFrames(p, locations) > bound {
		return false
	}
	if nameBytes > MaxNameBytes {
		return false
	}
	return sumsFit(p, nTypes)
}

// stackFrames: the frames Fold makes of the profile, those of its distinct location lists
// (decode.stack_frames); frames maps a location id to its frames.
func stackFrames(p *profilepb.Profile, frames map[uint64]int) int {
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
			total += frames[id]
		}
	}
	return total
}

// sumsFit: every type's positive values together, and its negative ones, fit in 64 bits
// (decode.check_sums_fit), summed exactly in 128 bits.
func sumsFit(p *profilepb.Profile, nTypes int) bool {
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
		if posHi != 0 || posLo > math.MaxInt64 || negHi != 0 || negLo > 1<<63 {
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
