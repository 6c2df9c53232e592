"""A profile whose distinct stacks hold more than MAX_STACK_FRAMES frames is refused, by the
Python check and the Go one alike, in the same words; at the bound both take it. A 40 KB profile can spell 25 million frames, whose fold runs out of memory."""
from __future__ import annotations

import gzip
import re

import pytest

from proftask.ingest.upload import check_profile
from proftask.pprof import native
from proftask.pprof.decode import (MAX_FRAME_VALUES, MAX_NAME_BYTES, MAX_STACK_FRAMES, ProfileError, name_bytes,
                                   parse_profile, stack_frames)
from proftask.pprof.v1 import profile_pb2
from tests.conformance.same_rows import assert_go_refuses_alike

LIMIT = 64 * 1024 * 1024


def deep(lines: int, times: int, first_id: int = 1, stacks: int = 1) -> profile_pb2.Profile:
    """One location of `lines` inlined lines, `times` in a stack, in `stacks` samples (one stack)."""
    p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", b"main.f"])
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=3, system_name=3)
    location = p.location.add(id=first_id)
    for line in range(lines):
        location.line.add(function_id=1, line=line)
    for _ in range(stacks):
        p.sample.add(location_id=[first_id] * times, value=[1])
    return p


def at_bound(extra: int, first_id: int) -> profile_pb2.Profile:
    """MAX_STACK_FRAMES + extra frames: twice the same deep stack (counted once), and `extra`
    stacks of one address (a location without lines is one frame)."""
    p = deep(4096, MAX_STACK_FRAMES // 4096, first_id, stacks=2)
    for i in range(extra):
        p.location.add(id=first_id + 1 + i, address=0x1000)
        p.sample.add(location_id=[first_id + 1 + i], value=[1])
    return p


@pytest.fixture(autouse=True)
def library():
    assert native.available(), "the Go fold is not built: `make install` builds it"


def test_the_hostile_40_kb_profile_is_refused_with_its_count_and_the_bound():
    raw = deep(5000, 5000).SerializeToString()
    assert len(raw) < 40_000
    words = assert_go_refuses_alike(raw)
    with pytest.raises(ProfileError, match=f"25000000 frames .* more than the {MAX_STACK_FRAMES} proftask folds"):
        check_profile(gzip.compress(raw), LIMIT, by_go=False)
    with pytest.raises(ProfileError, match=re.escape(words)):
        check_profile(gzip.compress(raw), LIMIT)


@pytest.mark.parametrize("first_id", [1, 2**40], ids=["dense ids", "sparse ids"])
def test_both_checks_take_a_profile_at_the_bound_and_refuse_one_past_it(first_id):
    assert MAX_STACK_FRAMES == 1 << 22  # native/fold/fold.go MaxStackFrames (its test checks the same)
    at = at_bound(0, first_id).SerializeToString()
    assert stack_frames(parse_profile(at)) == MAX_STACK_FRAMES
    assert native.sample_types(at) == [("samples", "count")]
    past = at_bound(1, first_id).SerializeToString()
    assert f"{MAX_STACK_FRAMES + 1} frames" in assert_go_refuses_alike(past)


def test_frames_are_counted_per_distinct_location_list_lines_counted():
    p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", b"main.f"])
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=3, system_name=3)
    p.location.add(id=1).line.add(function_id=1, line=1)
    two = p.location.add(id=2)
    two.line.add(function_id=1, line=2)
    two.line.add(function_id=1, line=3)
    p.location.add(id=3, address=0x1000)  # no lines: its address, one frame
    for ids in ([1, 2], [1, 2], [2, 1], [3], []):
        p.sample.add(location_id=ids, value=[1])
    assert stack_frames(p) == 3 + 3 + 1


def many_types(extra: int) -> profile_pb2.Profile:
    """MAX_FRAME_VALUES / 64 + extra frames of 64 sample types: one stack of a location of 4,096
    inlined lines 64 times, and `extra` stacks of one address."""
    p = deep(4096, MAX_FRAME_VALUES // 64 // 4096)
    p.sample_type.extend([p.sample_type[0]] * 63)
    p.sample[0].value[:] = [1] * 64
    for i in range(extra):
        p.location.add(id=2 + i, address=0x1000)
        p.sample.add(location_id=[2 + i], value=[1] * 64)
    return p


def test_frames_times_sample_types_are_bounded_alike_in_both_checks():
    # 29 KB, 2^22 frames (at MAX_STACK_FRAMES) of 64 types: was accepted, and its fold took ~28 GB
    assert MAX_FRAME_VALUES == 1 << 24  # native/fold/fold.go MaxFrameValues
    at = many_types(0).SerializeToString()
    assert stack_frames(parse_profile(at)) * 64 == MAX_FRAME_VALUES
    assert native.sample_types(at) == [("samples", "count")] * 64
    past = many_types(1).SerializeToString()
    assert_go_refuses_alike(past)
    with pytest.raises(ProfileError, match=f"{MAX_FRAME_VALUES // 64 + 1} frames .* each of its 64 sample types: "
                                           f"{MAX_FRAME_VALUES + 64} values, more than the {MAX_FRAME_VALUES}"):
        check_profile(gzip.compress(past), LIMIT)


def long_name(lines: int) -> profile_pb2.Profile:
    """A 64 KiB function name on `lines` lines of distinct numbers, and no sample at all."""
    p = deep(lines, 0)
    p.string_table[3] = b"f" * (64 * 1024)
    return p


def test_the_bytes_of_function_names_are_bounded_alike_in_both_checks():
    # 6 KB gzipped, 4,096 lines of a 64 KiB name: was accepted, and folded into 256 MB of frame names
    assert MAX_NAME_BYTES == 1 << 26  # native/fold/fold.go MaxNameBytes
    at = long_name(MAX_NAME_BYTES // (64 * 1024)).SerializeToString()
    assert name_bytes(parse_profile(at)) == MAX_NAME_BYTES
    assert native.sample_types(at) == [("samples", "count")]
    past = long_name(MAX_NAME_BYTES // (64 * 1024) + 1).SerializeToString()
    assert_go_refuses_alike(past)
    with pytest.raises(ProfileError, match=f"named in {MAX_NAME_BYTES + 64 * 1024} bytes .* more than the "
                                           f"{MAX_NAME_BYTES} proftask folds"):
        check_profile(gzip.compress(past), LIMIT)


def test_a_line_counts_the_longer_of_its_functions_name_and_system_name():
    p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", b"main.f", b"main.f.abi0"])
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=3, system_name=4)
    p.function.add(id=2, name=4, system_name=0)
    location = p.location.add(id=1)
    for function_id in (1, 2, 0, 1):  # 0: no function, no name
        location.line.add(function_id=function_id, line=1)
    assert name_bytes(p) == 11 + 11 + 0 + 11
