"""The Go fold declines what it must leave to Python, refuses what Python refuses in Python's
words, and the rows stay those of the Python fold: a line without a function (`??` in both), a
sum past 64 bits (refused, with Python's words), a reference to no location."""
from __future__ import annotations

import gzip
import re
import subprocess
import sys
import time

import pytest

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof import native
from proftask.ingest.upload import check_profile
from proftask.pprof.decode import ProfileError, decompress
from proftask.pprof.v1 import profile_pb2
from proftask.processing.profile_rows import _python_rows, profile_rows
from tests.conformance.same_rows import assert_go_refuses_alike, assert_same_rows
from tests.unit.test_stack_frames import deep as deep_profile

LIMIT = 64 * 1024 * 1024


@pytest.fixture(autouse=True)
def library():
    assert native.available(), "the Go fold is not built: `make install` builds it"


def profile(values=((3, 30), (4, 40)), line_function=1, locations=((1,), (2, 1))) -> profile_pb2.Profile:
    p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", b"cpu", b"nanoseconds", b"main.f", b"main.g"])
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.default_sample_type = 3
    p.function.add(id=1, name=5, system_name=5)
    p.function.add(id=2, name=6, system_name=6)
    p.location.add(id=1, address=0x1000).line.add(function_id=line_function, line=10)
    p.location.add(id=2, address=0x2000).line.add(function_id=2, line=20)
    for ids, value in zip(locations, values, strict=True):
        p.sample.add(location_id=ids, value=value)
    return p


def rows_both_ways(p: profile_pb2.Profile):
    body = gzip.compress(p.SerializeToString())
    env = events.new_event("t1", pb.ProfileUploaded(task_id="task", instance_id="i", profile_id="p", content=body,
                                                   size=len(body)))
    return profile_rows(env, LIMIT), lambda: _python_rows(env, decompress(body, LIMIT))


def test_a_plain_profile_is_folded_by_go_into_the_python_rows():
    p = profile()
    assert native.fold(p.SerializeToString()) is not None
    rows, python = rows_both_ways(p)
    assert_same_rows(rows, python())
    assert rows.profile["totals"] == [7, 70]
    assert rows.profile["default_index"] == 1


def test_a_line_without_a_function_is_shown_as_unknown_by_both():
    p = profile(line_function=0)  # pprof's own parser refuses this; proftask shows `??`
    assert native.fold(p.SerializeToString()) is not None
    rows, python = rows_both_ways(p)
    assert_same_rows(rows, python())
    assert "??" in set(rows.frame_names.column("function").to_pylist())


def test_values_summing_past_64_bits_are_refused_with_the_python_reason():
    big = 2**62
    p = profile(values=((big, 1), (big, 1), (big, 1)), locations=((1,), (2, 1), (1,)))
    assert "'samples' sum to 13835058055282163712, beyond the 64-bit range" in assert_go_refuses_alike(
        p.SerializeToString())
    with pytest.raises(ProfileError, match="beyond the 64-bit range"):
        rows_both_ways(p)


def test_the_most_negative_value_alone_still_fits():
    p = profile(values=((-(2**63), 1), (0, 1)))
    assert native.fold(p.SerializeToString()) is not None
    rows, python = rows_both_ways(p)
    assert_same_rows(rows, python())


def test_a_sample_of_an_unknown_location_is_refused_with_the_python_reason():
    p = profile(locations=((1,), (9,)))
    assert assert_go_refuses_alike(p.SerializeToString()) == "a sample refers to unknown location 9"
    with pytest.raises(ProfileError, match="unknown location 9"):
        rows_both_ways(p)


def test_an_unnamed_default_sample_type_is_the_last_type_as_pprof_takes_it():
    """pprof's SampleIndexByName: a default_sample_type of "" names no type (the last is the
    default), even when a type is unnamed: `go tool pprof -top` shows cpu, not the "" type."""
    p = profile()
    p.sample_type[0].type = 0  # "" / count
    p.default_sample_type = 0
    rows, python = rows_both_ways(p)
    assert_same_rows(rows, python())
    assert rows.profile["default_index"] == 1
    assert rows.profile["default_named"] == python().profile["default_named"] == 0


@pytest.mark.parametrize("default, index, named", [(5, 1, 1), (1, 0, 1), (3, 1, 1)])
def test_a_default_named_is_kept_as_named_whether_or_not_a_type_has_that_name(default, index, named):
    """pprof's merge takes the first default a profile names, as a string (combineHeaders): a name
    no type has still wins over a later profile's, and then reads as the last type."""
    p = profile()
    p.default_sample_type = default  # main.f: no type's name; samples; cpu
    rows, python = rows_both_ways(p)
    assert_same_rows(rows, python())
    assert (rows.profile["default_index"], rows.profile["default_named"]) == (index, named)
    assert python().profile["default_named"] == named


@pytest.mark.parametrize("n_types, refused", [(256, False), (257, True), (65_537, True)])
def test_more_sample_types_than_proftask_folds_are_refused_by_both_at_the_check(n_types, refused):
    """65,537 types in a 747-byte upload passed the check and could never be stored."""
    p = profile(values=((3,) * n_types, (4,) * n_types))
    del p.sample_type[:]
    for _ in range(n_types):
        p.sample_type.add(type=1, unit=2)
    body = gzip.compress(p.SerializeToString())
    if not refused:
        assert len(check_profile(body, LIMIT)) == n_types
        rows, python = rows_both_ways(p)
        assert_same_rows(rows, python())
        return
    words = f"profile has {n_types} sample types, more than the 256 proftask folds"
    assert assert_go_refuses_alike(p.SerializeToString()) == words
    for by_go in (True, False):
        with pytest.raises(ProfileError, match=words):
            check_profile(body, LIMIT, by_go=by_go)


def _broken(*faults: str) -> profile_pb2.Profile:
    """profile() with each fault, so that Go must name the one Python names first."""
    p = profile()
    for fault in faults:
        match fault:
            case "strings":
                p.string_table[0] = b"x"
            case "no strings":
                del p.string_table[:]
            case "no types":
                del p.sample_type[:]
            case "type":
                p.sample_type[1].type = 99
            case "unit":
                p.sample_type[0].unit = -1
            case "default":
                p.default_sample_type = 7
            case "function 0":
                p.function[1].id = 0
            case "function twice":
                p.function[1].id = 1
            case "name":
                p.function[1].name = 50
            case "system name":
                p.function[0].system_name = -3
            case "filename":
                p.function[0].filename = 8
            case "location 0":
                p.location[1].id = 0
            case "location twice":
                p.location[1].id = 1
            case "unknown functions":
                p.location.add(id=3).line.add(function_id=9)
                p.location.add(id=4).line.add(function_id=5)
            case "unknown location":
                p.sample[1].location_id.append(12)
            case "values":
                del p.sample[1].value[0]
            case "label key":
                p.sample[1].label.add(key=7, str=1)
            case "label value":
                p.sample[0].label.add(key=1, str=-1)
            case "negative sum":
                p.sample.add(location_id=[1], value=[-2**63, -2**63])
                p.sample.add(value=[0, -1])
    return p


@pytest.mark.parametrize("faults", [
    ["strings"], ["no strings", "type"], ["no types", "default"], ["type", "unit"], ["unit", "default"], ["default", "name"],
    ["function 0", "function twice"], ["function twice", "name"], ["filename", "name", "system name"],
    ["system name", "filename"], ["location 0", "location twice"], ["location twice", "unknown functions"],
    ["unknown functions", "unknown location"], ["unknown location", "values"], ["values", "label key"],
    ["label value", "label key"], ["label key"], ["negative sum"], ["negative sum", "values"],
], ids="+".join)
def test_a_malformed_profile_is_refused_by_go_naming_the_fault_python_names_first(faults):
    # Go refused nothing before: it declined, and Python read the profile again to word why
    assert_go_refuses_alike(_broken(*faults).SerializeToString())


def test_a_sum_past_64_bits_of_a_type_python_quotes_otherwise_is_left_to_python():
    big = 2**62
    for name in (b"it's", b"caf\xc3\xa9", b"a\\b", b"bad\xff", b"tab\t"):
        p = profile(values=((big, 1), (big, 1), (big, 1)), locations=((1,), (2, 1), (1,)))
        p.string_table[1] = name
        words = assert_go_refuses_alike(p.SerializeToString(), may_decline=True)
        assert native.fold(p.SerializeToString()) is None, words  # declined: Python words it
        with pytest.raises(ProfileError, match=re.escape(words)):
            rows_both_ways(p)


def test_an_upload_held_in_memory_is_checked_and_folded_whatever_its_buffer_type():
    raw = profile().SerializeToString()
    expected = native.sample_types(raw)
    assert expected == [("samples", "count"), ("cpu", "nanoseconds")]
    for held in (bytearray(raw), memoryview(raw), memoryview(bytearray(raw))):
        assert native.sample_types(held) == expected
        assert native.fold(held) is not None
    assert native.sample_types(bytearray(b"\x00garbage")) is None


def _nested_unknown_groups(depth: int) -> bytes:
    """Field 100 (unknown to profile.proto) as `depth` groups one inside the other."""
    return bytes([0xA3, 0x06]) * depth + bytes([0xA4, 0x06]) * depth


def test_unknown_groups_nested_past_the_python_decoders_depth_are_refused_by_both():
    # upb refuses nesting past 100 levels; the Go runtime skipped unknown groups 10,000 deep and
    # folded a profile the Python path refuses
    raw = profile().SerializeToString() + _nested_unknown_groups(101)
    assert native.sample_types(raw) is None
    assert native.fold(raw) is None
    env = events.new_event("t1", pb.ProfileUploaded(task_id="task", instance_id="i", profile_id="p", content=raw,
                                                   size=len(raw)))
    with pytest.raises(ProfileError, match="not a pprof protobuf"):
        profile_rows(env, LIMIT)


def test_a_shallow_unknown_group_is_left_to_python_which_keeps_the_profile():
    raw = profile().SerializeToString() + _nested_unknown_groups(3)
    assert native.fold(raw) is None
    env = events.new_event("t1", pb.ProfileUploaded(task_id="task", instance_id="i", profile_id="p", content=raw,
                                                   size=len(raw)))
    assert profile_rows(env, LIMIT).profile["totals"] == [7, 70]


@pytest.mark.parametrize("tail", [b"\x80", b"\x08", b"\x08\xff", b"\x12\x05ab", b"\x09abc", b"\x0d\x01", b"\x0e",
                                  b"\x0f", b"\xfa\xff\xff\xff\x0f\x80\x80"],
                         ids=["tag cut", "varint missing", "varint cut", "bytes past the end", "fixed64 cut",
                              "fixed32 cut", "wire type 6", "wire type 7", "length cut"])
def test_bytes_whose_wire_breaks_are_refused_by_go_in_the_python_decoders_words(tail):
    words = assert_go_refuses_alike(profile().SerializeToString() + tail)
    assert words.startswith("not a pprof protobuf: ")


@pytest.mark.parametrize("tail", [b"\x00\x01", b"\x08" + b"\x80" * 9 + b"\x7f" + b"\x0f", b"\xa3\x06\x0f",
                                  _nested_unknown_groups(101) + b"\x0f", b"\x0c"],
                         ids=["field 0", "varint upb reads, Go does not", "in a group", "after deep groups",
                              "end of no group"])
def test_a_wire_decoders_may_read_otherwise_is_left_to_python(tail):
    raw = profile().SerializeToString() + tail
    assert_go_refuses_alike(raw, may_decline=True)
    assert native.sample_types(raw) is None


def _long_tag(field: int, wire_type: int, length: int) -> bytes:
    """A tag written in `length` bytes (a varint padded with continuation bytes)."""
    tag = field << 3 | wire_type
    out = []
    for _ in range(length - 1):
        out.append(tag & 0x7F | 0x80)
        tag >>= 7
    return bytes(out + [tag])


LONG_ZERO = b"\x80\x80\x80\x80\x80\x00"  # a length of 0 in 6 bytes


def _in_field(field: int, body: bytes) -> bytes:
    return bytes([field << 3 | 2, len(body)]) + body


# A tag or a length of more than 5 bytes: upb refuses the wire, the Go runtime read it (the decoder
# fuzz found a profile Go folded, and one it refused for another fault, that Python refuses as corrupt)
@pytest.mark.parametrize("tail", [
    _long_tag(1, 2, 6) + b"\x00",                                            # a sample type, top level
    _long_tag(100, 0, 7) + b"\x00",                                          # an unknown field
    _in_field(5, _long_tag(1, 0, 6) + b"\x09"),                              # a function's id
    _in_field(4, _long_tag(1, 0, 1) + b"\x09" + _in_field(4, _long_tag(1, 0, 6) + b"\x01")),  # a line's
    _in_field(2, _in_field(3, _long_tag(1, 0, 6) + b"\x01")),                # a sample's label
    b"\x32" + LONG_ZERO,                             # a string's length
    b"\x12" + LONG_ZERO,                             # a sample's
    _in_field(4, b"\x22" + LONG_ZERO),               # a line's, in a location
    _in_field(2, b"\x12" + LONG_ZERO),               # a packed value's
    b"\xa2\x06" + LONG_ZERO,                         # an unknown field's
    _in_field(5, b"\xa2\x06" + LONG_ZERO),           # one in a function
], ids=["top level", "unknown field", "in a function", "in a location's line", "in a sample's label",
        "length of a string", "length of a sample", "length of a line", "length of packed values",
        "length of an unknown field", "length in a function"])
def test_a_tag_or_length_longer_than_5_bytes_is_refused_by_both(tail):
    words = assert_go_refuses_alike(profile().SerializeToString() + tail, may_decline=True)
    assert words.startswith("not a pprof protobuf: ")


def test_a_tag_of_5_bytes_is_read_by_both():
    raw = profile().SerializeToString() + _long_tag(100, 0, 5) + b"\x01"
    env = events.new_event("t1", pb.ProfileUploaded(task_id="task", instance_id="i", profile_id="p", content=raw,
                                                   size=len(raw)))
    assert native.fold(raw) is not None
    assert_same_rows(profile_rows(env, LIMIT), _python_rows(env, raw))


def test_with_another_python_decoder_a_corrupt_wire_is_left_to_python(monkeypatch):
    # the pure-Python decoder words each fault otherwise (`Truncated message.`...): Go cannot
    raw = profile().SerializeToString() + b"\x0f"
    monkeypatch.setattr(native.api_implementation, "Type", lambda: "python")
    native._corrupt_wire_words.cache_clear()
    try:
        assert native.sample_types(raw) is None and native.fold(raw) is None
    finally:
        native._corrupt_wire_words.cache_clear()


def test_megabytes_of_fields_then_a_bad_byte_are_refused_at_once():
    # 13 s of Python for 64 KB gzipped (2^25 fields, the bound, then a byte of wire type 7); 2^22 here
    raw = profile().SerializeToString() + b"\x78\x01" * (1 << 22) + b"\x0f"
    started = time.perf_counter()
    with pytest.raises(ProfileError, match="^not a pprof protobuf: "):
        native.sample_types(raw)
    assert time.perf_counter() - started < 1  # ~0.15 s; Python's own check ~1.6 s


AMPLIFIED = """
import resource
from proftask.pprof import native
from proftask.pprof.decode import ProfileError
from proftask.pprof.v1 import profile_pb2
p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", b"f"])
p.sample_type.add(type=1, unit=2)
p.function.add(id=1, name=3)
location = p.location.add(id=1)
for line in range(5000):
    location.line.add(function_id=1, line=line)
p.sample.add(location_id=[1] * 5000, value=[1])
raw = p.SerializeToString()
native.available()
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, resource.RLIM_INFINITY))
try:
    print(len(raw), native.fold(raw) is None)
except ProfileError as refused:
    print(len(raw), "refused:", refused)
"""


def test_a_small_profile_that_folds_into_millions_of_frames_is_refused_before_go_folds_it():
    # 40 KB (7 KB gzipped: the processor folds it in its own process), 25 million frames once
    # folded: Go ran out of memory, a fatal error that ended the process
    done = subprocess.run([sys.executable, "-c", AMPLIFIED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[:5] == ["39918", "refused:", "its", "stacks", "hold"]


RETAINED = """
from proftask.pprof import native
from proftask.pprof.v1 import profile_pb2
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 >> 20
p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", b"f"])
p.sample_type.add(type=1, unit=2)
p.function.add(id=1, name=3)
p.location.add(id=1).line.add(function_id=1, line=1)
one = profile_pb2.Profile()
one.sample.add(location_id=[1] * 30, value=[1])
raw = p.SerializeToString() + one.SerializeToString() * 300_000  # 10 MB: 300,000 samples
native.available()
before = rss_mb()
assert native.sample_types(raw) == [("samples", "count")]
print(rss_mb() - before)
"""


def test_the_check_of_a_large_upload_gives_its_memory_back():
    # the intake checks uploads in its own process: the decoded profile (~10 times its bytes)
    # stayed there until Go's next collection, minutes later
    done = subprocess.run([sys.executable, "-c", RETAINED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    assert int(done.stdout) < 50  # MB; 120 kept before



def test_a_profile_go_is_unsure_of_is_folded_by_go_as_python_reads_it():
    # A string that is not UTF-8 made the Go fold decline, and the Python fold took a tiny
    # profile 262,144 frames deep ~8 s (the frame bound, ~2 minutes), in the processor's own
    # process for a small record. Now Go folds the profile as Python reads it: the same rows.
    p = profile()
    p.string_table[6] = b"main.g\xff"  # shown as main.g\ufffd by both
    raw = p.SerializeToString() + _nested_unknown_groups(3)
    assert native.fold(raw) is None
    rows, python = rows_both_ways(profile_pb2.Profile.FromString(raw))
    assert_same_rows(rows, python())
    assert "main.g\ufffd" in rows.frame_names.column("name").to_pylist()

    deep = deep_profile(4096, 64)
    deep.string_table[3] = b"main.f\xff"
    assert native.fold(deep.SerializeToString()) is None
    body = deep.SerializeToString()
    env = events.new_event("t1", pb.ProfileUploaded(task_id="task", instance_id="i", profile_id="p", content=body,
                                                   size=len(body)))
    started = time.perf_counter()
    assert profile_rows(env, LIMIT).profile["stack_count"] == 1
    assert time.perf_counter() - started < 3  # ~0.2 s by Go; the Python fold took ~8 s


def many_stacks() -> profile_pb2.Profile:
    """60 samples of 12 functions, 1 to 6 deep; the second sample type is zero on the deepest."""
    p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", b"cpu", b"nanoseconds"])
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    for f in range(1, 13):
        p.string_table.append(f"main.f{f}".encode())
        p.function.add(id=f, name=len(p.string_table) - 1)
        p.location.add(id=f, address=0x1000 * f).line.add(function_id=f, line=f)
    for s in range(60):
        stack = [1 + (s * 7 + d * 5) % 12 for d in range(1 + s % 6)]
        p.sample.add(location_id=stack, value=(s + 1, 0 if s % 6 == 5 else 10 * s))
    return p


def test_every_part_lists_its_nodes_ascending_by_node_in_both_folds():
    # Go listed the nodes in the order of its sorted stacks and profile_rows sorted the one part
    # the task folds take; now every part comes out ascending by node, the root (0) first
    rows, python = rows_both_ways(many_stacks())
    for folded in (rows, python()):
        for part in folded.node_parts + folded.function_parts:
            ids = part["values"][0]
            assert (ids[1:] > ids[:-1]).all(), (part["granularity"], part["type_index"])
        assert [p["values"][0][0] for p in folded.node_parts] == [0] * 4
    assert_same_rows(rows, python())


def test_node_ids_the_sample_types_share_are_one_array():
    # the second type is zero on the deepest stacks: the nodes only they make are not in its part
    rows, _ = rows_both_ways(many_stacks())
    ids = [p["values"][0] for p in rows.node_parts]
    assert len(ids[1]) < len(ids[0]) and len(ids[3]) < len(ids[2])
    # every stack counts in both types: one array of ids per granularity, pickled once
    p = many_stacks()
    for s in p.sample:
        s.value[1] = s.value[0] * 10
    rows, python = rows_both_ways(p)
    ids = [p["values"][0] for p in rows.node_parts]
    assert ids[1] is ids[0] and ids[3] is ids[2] and ids[2] is not ids[0]
    assert_same_rows(rows, python())


def _typed(n_types: int, value) -> profile_pb2.Profile:
    """many_stacks' stacks with n_types sample types, value(stack, type) each."""
    base = many_stacks()
    p = profile_pb2.Profile(string_table=list(base.string_table), function=base.function, location=base.location)
    for t in range(n_types):
        p.string_table.append(f"type{t}".encode())
        p.sample_type.add(type=len(p.string_table) - 1, unit=2)
    for s, sample in enumerate(base.sample):
        p.sample.add(location_id=sample.location_id, value=[value(s, t) for t in range(n_types)])
    return p


@pytest.mark.parametrize("n_types, value", [
    (1, lambda s, t: s + 1),                                  # one sample type
    (3, lambda s, t: 0),                                      # every type zero: the root alone, ids shared
    (3, lambda s, t: 0 if t == 1 else s + 1),                 # the middle type zero: shared, then not
    (3, lambda s, t: s + 1 if t != 1 else (s % 3) - 1),       # negatives and zeros in the middle type
    (3, lambda s, t: (-1) ** s * (s + 1)),                    # opposite values summing to zero at nodes
    (2, lambda s, t: s + 1 if (s % 2) == t else 0),           # each type its own stacks, as many nodes
], ids=["one type", "all zero", "middle zero", "negatives", "cancelling", "disjoint"])
def test_the_ids_the_sample_types_share_are_the_python_folds_whatever_the_values(n_types, value):
    p = _typed(n_types, value)
    assert native.fold(p.SerializeToString()) is not None  # folded by Go, not left to Python
    rows, python = rows_both_ways(p)
    assert_same_rows(rows, python())


def test_a_profile_of_no_samples_has_the_root_alone_in_both_folds():
    p = _typed(2, lambda s, t: 1)
    del p.sample[:]
    assert native.fold(p.SerializeToString()) is not None
    rows, python = rows_both_ways(p)
    assert_same_rows(rows, python())
    assert [p["values"][0].tolist() for p in rows.node_parts] == [[0]] * 4


def test_a_large_answer_is_written_over_the_last_ones_memory_only_once_nothing_reads_that_one(monkeypatch):
    """The memory of a large answer is kept for the next: an answer whose arrays are still read
    keeps its memory, and an answer written over an earlier one's equals the answer made anew."""
    monkeypatch.setattr(native._AnswerBuffers, "MIN_BYTES", 0)  # every answer counts as large here
    monkeypatch.setattr(native, "_answers", native._AnswerBuffers())
    first = profile(values=((3, 30), (4, 40))).SerializeToString()
    second = profile(values=((5, 50), (6, 60)), locations=((2,), (1, 2))).SerializeToString()

    def seen(arrays: native.Arrays) -> dict:
        return {name: column.copy() for name, column in arrays.numbers.items()} | {
            name: arrays.strings(name) for name in arrays.texts}

    def same(a: dict, b: dict) -> bool:
        return a.keys() == b.keys() and all(
            a[k] == b[k] if isinstance(a[k], list) else (a[k].dtype == b[k].dtype and (a[k] == b[k]).all()) for k in a)

    held = native.fold(first)
    as_folded = seen(held)
    later = native.fold(second)  # the first answer's arrays are still read
    assert same(seen(held), as_folded)
    second_seen = seen(later)
    assert not same(second_seen, as_folded)
    del held, later
    again = native.fold(first)  # written where an earlier answer was
    assert same(seen(again), as_folded)
    del again
    assert same(seen(native.fold(second)), second_seen)
