package fold

import (
	"bytes"
	"testing"

	"google.golang.org/protobuf/proto"

	"proftask.dev/native/profilepb"
)

// header: a profile of one sample type and nothing else: 4 entries (3 strings, 1 sample type)
// and 4 fields on the wire.
func header(t *testing.T) []byte {
	p := &profilepb.Profile{StringTable: [][]byte{{}, []byte("samples"), []byte("count")},
		SampleType: []*profilepb.ValueType{{Type: 1, Unit: 2}}}
	raw, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// The bounds of proftask.pprof.decode.MAX_WIRE_*: tests/unit/test_wire_counts.py holds the two
// scans equal through the library.
func TestTheWireBoundsAreDecodesOwn(t *testing.T) {
	if MaxWireEntries != 1<<23 || MaxWireNumbers != 1<<26 || MaxWireFields != 1<<25 {
		t.Fatal("change decode.MAX_WIRE_ENTRIES, MAX_WIRE_NUMBERS, MAX_WIRE_FIELDS too")
	}
}

func TestEmptyEntriesPastTheBoundAreRefusedBeforeDecoding(t *testing.T) {
	emptySample := []byte{0x12, 0x00}
	for extra, want := range map[int]bool{0: false, 1: true} {
		raw := append(header(t), bytes.Repeat(emptySample, MaxWireEntries-4+extra)...)
		if got := wireRefusal(raw) != ""; got != want {
			t.Errorf("%d entries past the bound: over %v, want %v", extra, got, want)
		}
	}
	// 18 MB of empty samples: ~900 MB decoded before
	raw := append(header(t), bytes.Repeat(emptySample, 9_000_000)...)
	// refused in the words of decode.check_wire_counts (tests/unit/test_wire_counts.py)
	want := "profile has too many entries: more than 8388608 samples, locations, lines, labels, functions, " +
		"mappings and strings, more than proftask decodes"
	if _, refused, ok := Decode(raw); ok || refused != want {
		t.Fatalf("18 MB of empty samples: accepted %v, refused %q", ok, refused)
	}
	// one location of 9 million empty lines
	lines := bytes.Repeat([]byte{0x22, 0x00}, 9_000_000)
	loc := protoBytes(4, lines)
	if wireRefusal(append(header(t), loc...)) == "" {
		t.Fatal("9 million empty lines taken")
	}
}

func TestPackedNumbersPastTheBoundAreRefused(t *testing.T) {
	for extra, want := range map[int]bool{0: false, 1: true} {
		ids := bytes.Repeat([]byte{0x01}, MaxWireNumbers+extra)
		sample := protoBytes(2, protoBytes(1, ids))
		if got := wireRefusal(append(header(t), sample...)) != ""; got != want {
			t.Errorf("%d numbers past the bound: over %v, want %v", extra, got, want)
		}
	}
}

// protoBytes: field num, length-delimited, holding v.
func protoBytes(num int, v []byte) []byte {
	out := []byte{byte(num<<3 | 2)}
	n := uint64(len(v))
	for n >= 0x80 {
		out = append(out, byte(n)|0x80)
		n >>= 7
	}
	return append(append(out, byte(n)), v...)
}
