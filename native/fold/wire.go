package fold

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The bounds of what decoding a profile may cost, checked on the wire before proto.Unmarshal
// (decode.MAX_WIRE_ENTRIES, MAX_WIRE_NUMBERS, MAX_WIRE_FIELDS; measured there): each entry of a
// repeated field is a message or a string, ~100 bytes decoded even when it is 2 bytes on the
// wire, and a packed number of 1 byte is 8 decoded, so 16 MB of empty samples (15 KB gzipped)
// took ~811 MB. Decode refuses past them in the words of Python's check_wire_counts, the same
// scan step for step.
const (
	MaxWireEntries = 1 << 23
	MaxWireNumbers = 1 << 26
	MaxWireFields  = 1 << 25
)

// wireCounts: the entries (samples, locations, functions, mappings, strings, sample types, the
// period type, labels, lines), the numbers (location ids, values, comments: a packed one counted
// by its bytes) and the fields read (the profile's, its samples' and its locations').
type wireCounts struct{ entries, numbers, fields int }

func (c *wireCounts) over() bool {
	return c.entries > MaxWireEntries || c.numbers > MaxWireNumbers || c.fields > MaxWireFields
}

// wireRefusal: decode.check_wire_counts' refusal of the profile, in its words ("": under the
// bounds). The scans stop at the same field, so the counts and the bound named are the same.
func wireRefusal(raw []byte) string {
	var c wireCounts
	c.scan(raw, 0)
	switch {
	case c.entries > MaxWireEntries:
		return fmt.Sprintf("profile has too many entries: more than %d samples, locations, lines, labels, "+
			"functions, mappings and strings, more than proftask decodes", MaxWireEntries)
	case c.numbers > MaxWireNumbers:
		return fmt.Sprintf("profile has too many numbers: more than %d location ids, values and comments, "+
			"more than proftask decodes", MaxWireNumbers)
	case c.fields > MaxWireFields:
		return fmt.Sprintf("profile has too many fields: more than %d in the profile, its samples and its "+
			"locations, more than proftask decodes", MaxWireFields)
	}
	return ""
}

const (
	inProfile = 0 // scan's inside: the profile's fields, or a sample's or a location's
	fSample   = 2
	fLocation = 4
	fComment  = 13
	fLabel    = 3 // in a sample
	fLine     = 4 // in a location
)

// scan counts the fields of b; false: stopped (a bound passed, or unreadable).
func (c *wireCounts) scan(b []byte, inside protowire.Number) bool {
	depth := 0 // inside unknown groups, whose fields are only skipped
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		b = b[n:]
		c.fields++
		switch {
		case typ == protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			if depth > 0 {
				break
			}
			switch inside {
			case inProfile:
				switch num {
				case 1, fSample, 3, fLocation, 5, 6, 11: // sample_type ... string_table, period_type
					c.entries++
					if (num == fSample || num == fLocation) && !c.scan(v, num) {
						return false
					}
				case fComment:
					c.numbers += len(v)
				}
			case fSample:
				switch num {
				case fLabel:
					c.entries++
				case 1, 2: // location_id, value
					c.numbers += len(v)
				}
			case fLocation:
				if num == fLine {
					c.entries++
				}
			}
		case typ == protowire.VarintType:
			_, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return false
			}
			b = b[n:]
			if depth == 0 && (inside == inProfile && num == fComment || inside == fSample && (num == 1 || num == 2)) {
				c.numbers++
			}
		case typ == protowire.Fixed64Type || typ == protowire.Fixed32Type:
			n := protowire.ConsumeFieldValue(num, typ, b)
			if n < 0 {
				return false
			}
			b = b[n:]
		case typ == protowire.StartGroupType:
			depth++
		case typ == protowire.EndGroupType && depth > 0:
			depth--
		default:
			return false
		}
		if c.over() {
			return false
		}
	}
	return true
}

// Messages of profile.proto inside a message, by field number: what hasLongTag descends into.
var subMessages = map[protowire.Number]map[protowire.Number]protowire.Number{
	inProfile: {1: vtype, fSample: fSample, 3: mapping, fLocation: fLocation, 5: function, 11: vtype},
	fSample:   {fLabel: label},
	fLocation: {fLine: line},
}

// message kinds that hold no message (ids apart from the profile's field numbers)
const (
	vtype    protowire.Number = 100
	mapping  protowire.Number = 101
	function protowire.Number = 102
	label    protowire.Number = 103
	line     protowire.Number = 104
)

// hasLongTag: a tag or a length of more than 5 bytes in b, a message of kind `inside`, or in a
// message it holds. upb refuses either as a corrupt wire, while the Go runtime reads a varint of
// up to 10 bytes (a value that fits), so Decode leaves the profile to Python. Bytes it cannot
// read are left to proto.Unmarshal.
func hasLongTag(b []byte, inside protowire.Number) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return false
		}
		if n > 5 {
			return true
		}
		b = b[n:]
		if typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return false
			}
			if m-len(v) > 5 {
				return true
			}
			if kind, ok := subMessages[inside][num]; ok && hasLongTag(v, kind) {
				return true
			}
			b = b[m:]
			continue
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return false
		}
		b = b[m:]
	}
	return false
}

// CorruptWire is Decode's refusal of bytes whose wire is corrupt at its top level (corruptAt):
// proftask.pprof.native words it as parse_profile does, with the Python decoder's own message
// (upb words every corrupt wire alike), or leaves it to Python with another decoder.
const CorruptWire = "not a pprof protobuf: corrupt wire"

// corruptAt: where the wire of raw breaks at its top level past doubt, for any decoder: a field
// cut short by the end of the bytes (its tag, its varint, its fixed bytes, or its length past
// them), or of wire type 6 or 7. -1: nowhere, or not past doubt (a group, a tag of field 0 or
// past the field numbers, a varint past 10 bytes: decoders differ on those).
func corruptAt(raw []byte) int {
	for at := 0; at < len(raw); {
		tag, n := varint(raw[at:])
		switch {
		case n == 0:
			return at
		case n < 0 || tag>>3 == 0 || tag>>3 > uint64(protowire.MaxValidNumber):
			return -1
		}
		p := at + n
		switch typ := protowire.Type(tag & 7); typ {
		case protowire.VarintType, protowire.BytesType:
			v, m := varint(raw[p:])
			switch {
			case m == 0:
				return at
			case m < 0:
				return -1
			}
			p += m
			if typ == protowire.BytesType {
				if v > uint64(len(raw)-p) {
					return at
				}
				p += int(v)
			}
		case protowire.Fixed64Type, protowire.Fixed32Type:
			size := 4
			if typ == protowire.Fixed64Type {
				size = 8
			}
			if len(raw)-p < size {
				return at
			}
			p += size
		case 6, 7:
			return at
		default: // groups
			return -1
		}
		at = p
	}
	return -1
}

// varint: the varint at the start of b and its length; 0: b ends within it; -1: past 10 bytes.
func varint(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < 10; i++ {
		if i == len(b) {
			return 0, 0
		}
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			return v, i + 1
		}
	}
	return 0, -1
}
