"""A merged profile's period, start and duration, as `go tool pprof` merges them (profile.Merge),
on real CPU profiles of three Go versions."""
import gzip
import itertools
import subprocess

import pytest

from proftask.pprof.encode import Timing, encode_profile
from proftask.pprof.v1 import profile_pb2
from tests.conformance.oracle import require_conformance

CPU = ("go/pprof-sample.cpu.pb.gz", "go/pyroscope-cpu.pb.gz", "go/pyroscope-go.cpu.labels.pprof")


def _header(data: bytes) -> profile_pb2.Profile:
    p = profile_pb2.Profile()
    p.ParseFromString(gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data)
    return p


def _timing(p: profile_pb2.Profile) -> Timing:
    return Timing(p.period, p.time_nanos, p.duration_nanos)


@pytest.mark.parametrize("names", [*itertools.combinations(CPU, 2), CPU], ids=lambda n: "+".join(n))
def test_the_merge_of_real_profiles_has_the_timing_go_tool_pprof_gives_it(names):
    files = [require_conformance() / name for name in names]
    merged = subprocess.run(["go", "tool", "pprof", "-proto", *map(str, files)], capture_output=True, check=True).stdout
    expected = _timing(_header(merged))
    assert expected.duration_nanos > 0 and expected.time_nanos > 0
    for order in itertools.permutations(files):
        assert Timing.merged(_timing(_header(f.read_bytes())) for f in order) == expected


def test_an_unsaid_start_is_not_the_earliest_and_nothing_merged_says_nothing():
    # pprof documents "the earliest nonzero one"; its loop takes a 0 met after a start (order-dependent)
    assert Timing.merged([Timing(10, 5, 2), Timing(20, 0, 3)]) == Timing(20, 5, 5)
    assert Timing.merged([Timing(20, 0, 3), Timing(10, 5, 2)]) == Timing(20, 5, 5)
    assert Timing.merged([Timing(), Timing()]) == Timing()
    assert Timing.merged([]) == Timing()


def test_durations_summing_past_64_bits_are_held_at_its_bound_and_still_encode():
    """Two instances' durations of 2^62 ns each made the pprof export a 500 (protobuf refused
    the sum); pprof's own sum wraps round to a negative duration."""
    merged = Timing.merged([Timing(10, 5, 2**62), Timing(10, 6, 2**62)])
    assert merged == Timing(10, 5, 2**63 - 1)
    assert Timing.merged([Timing(10, 5, -(2**63)), Timing(10, 6, -1)]).duration_nanos == -(2**63)
    exported = _header(encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", merged.period,
                                      [], time_nanos=merged.time_nanos, duration_nanos=merged.duration_nanos))
    assert exported.duration_nanos == 2**63 - 1
