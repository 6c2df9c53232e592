"""A profile whose decoding costs far more memory than its bytes is refused before it is decoded:
16 MB of empty samples (15 KB gzipped) took ~811 MB in the Go check, inside the server, then 1.4 GB
in upb; at the 256 MiB decompressed limit a ~250 KB upload took ~13 GB (proftask.pprof.decode
check_wire_counts, native/fold/wire.go)."""
from __future__ import annotations

import asyncio
import dataclasses
import gzip
import os
import subprocess
import sys
import time

import pytest

from proftask.config import load_settings
from proftask.cpu_pool import CpuPool
from proftask.ingest.intake import ProfileIntake
from proftask.ingest.upload import Spool
from proftask.pprof import decode, native
from proftask.pprof.decode import (MAX_WIRE_ENTRIES, MAX_WIRE_NUMBERS, ProfileError,
                                   check_wire_counts, parse_profile)
from proftask.pprof.v1 import profile_pb2
from tests.conformance.same_rows import assert_go_refuses_alike

CHECK = """
import gzip, resource, sys, time
from proftask.ingest.upload import check_profile
from proftask.pprof import decode, native
from proftask.pprof.decode import ProfileError
from proftask.pprof.v1 import profile_pb2
p = profile_pb2.Profile(string_table=[b"", b"samples", b"count"])
p.sample_type.add(type=1, unit=2)
empty = {"samples": b"\\x12\\x00" * 9_000_000,  # 18 MB of empty samples
         "lines": b"\\x22\\x80\\xd1\\xca\\x08" + b"\\x22\\x00" * 9_000_000}  # one location (18 MB) of 9M empty lines
def peak_mb():  # VmHWM: this program's peak (ru_maxrss keeps a forking parent's, ~1.2 GB for a pytest worker)
    return next(int(line.split()[1]) for line in open('/proc/self/status') if line.startswith('VmHWM')) >> 10
body = gzip.compress(p.SerializeToString() + empty[sys.argv[1]], 1)
native.available()
resource.setrlimit(resource.RLIMIT_AS, (3 << 30, resource.RLIM_INFINITY))  # the Go runtime reserves some
start = time.monotonic()
try:
    check_profile(body, 256 << 20)
except ProfileError as e:
    print(native.available(), len(body) < 100_000, round(time.monotonic() - start, 1),
          peak_mb(), e)
"""


@pytest.mark.parametrize("native_fold", ["1", "0"])
@pytest.mark.parametrize("shape", ["samples", "lines"])
def test_millions_of_empty_entries_are_refused_before_decoding(shape, native_fold):
    env = {**os.environ, "PROFTASK_NATIVE_FOLD": native_fold}
    done = subprocess.run([sys.executable, "-c", CHECK, shape], capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    available, small, seconds, max_rss_mb, message = done.stdout.split(" ", 4)
    assert (available, small) == (str(native_fold == "1"), "True")
    assert message.strip() == ENTRIES_REFUSAL
    assert int(max_rss_mb) < 500  # ~1.4-2.2 GB before (the 16 MB inflated, Go's decoding, upb's)
    print(shape, native_fold, seconds, "s", max_rss_mb, "MB")


ENTRIES_REFUSAL = (f"profile has too many entries: more than {MAX_WIRE_ENTRIES} samples, locations, lines, labels, "
                   "functions, mappings and strings, more than proftask decodes")


async def _intake_check(body: bytes, in_memory: bool) -> tuple[float, str]:
    """The intake's check of an upload (ProfileIntake._sample_types, its CPU pool real): how long
    it took to refuse it, and why."""
    settings = dataclasses.replace(load_settings(env={}), memory_parser_enabled=in_memory)
    cpu = CpuPool(workers=1)
    await cpu.start()
    spool = Spool(in_memory)
    try:
        spool.write(body)
        spool.finish()
        intake = ProfileIntake(settings, None, None, None, cpu)  # type: ignore[arg-type]  # only the check runs
        started = time.perf_counter()
        with pytest.raises(ProfileError) as refused:
            await intake._sample_types(spool)
        return time.perf_counter() - started, str(refused.value)
    finally:
        spool.close()
        await cpu.stop()


@pytest.mark.parametrize("in_memory", [True, False], ids=["memory mode", "file mode"])
def test_the_intake_refuses_millions_of_empty_samples_at_once_in_the_python_words(in_memory):
    # 17 KB gzipped, 18 MB of empty samples: Go declined it and Python scanned it again in the
    # CPU pool to word the refusal, ~4-6 s of CPU before the 400. Go words it now.
    body = gzip.compress(_profile().SerializeToString() + b"\x12\x00" * 9_000_000, 9)
    assert len(body) < 20_000
    seconds, message = asyncio.run(_intake_check(body, in_memory))
    assert message == ENTRIES_REFUSAL
    assert seconds < 1.5, seconds  # ~0.1 s by Go; ~4-6 s when Python words it
    print("in memory" if in_memory else "spooled", f"refused in {seconds:.2f} s")
    with pytest.raises(ProfileError) as python:  # the words Python's own check gives
        check_wire_counts(decode.decompress(body, 256 << 20))
    assert str(python.value) == message


def _profile() -> profile_pb2.Profile:
    p = profile_pb2.Profile(string_table=[b"", b"samples", b"count"])
    p.sample_type.add(type=1, unit=2)
    return p


def test_packed_numbers_past_the_bound_are_refused():
    sample = profile_pb2.Profile()
    sample.sample.add(location_id=[1] * (MAX_WIRE_NUMBERS // 2 + 1), value=[1] * (MAX_WIRE_NUMBERS // 2))
    raw = _profile().SerializeToString() + sample.SerializeToString()
    with pytest.raises(ProfileError, match=f"too many numbers: more than {MAX_WIRE_NUMBERS} location ids"):
        parse_profile(raw)
    assert_go_refuses_alike(raw)


def test_fields_that_cost_nothing_decoded_are_still_bounded_for_the_scans_time(monkeypatch):
    # a location id written again and again: decoded, only the last is kept (a lower bound here:
    # the scan of 2^24 fields takes seconds)
    monkeypatch.setattr(decode, "MAX_WIRE_FIELDS", 1000)
    ids = b"\x08\x01" * 1000
    raw = _profile().SerializeToString() + b"\x22" + _varint(len(ids)) + ids
    with pytest.raises(ProfileError, match="too many fields: more than 1000 in the profile"):
        check_wire_counts(raw)


def test_the_counts_of_a_profile_are_those_of_its_wire():
    p = _profile()
    p.comment.extend([1, 2])  # packed: 2 bytes
    p.function.add(id=1, name=1)
    p.location.add(id=1).line.add(function_id=1)
    p.sample.add(location_id=[1, 1], value=[300], label=[profile_pb2.Label(key=1, str=2)])
    # entries: 3 strings, a sample type, a function, a location, a line, a sample, a label;
    # numbers: comments 2 bytes, location ids 2, value 2 (300 is 2 bytes); fields: 8 of the profile,
    # 2 of the location, 3 of the sample
    assert check_wire_counts(p.SerializeToString()) == (9, 6, 13)
    assert native.sample_types(p.SerializeToString()) == [("samples", "count")]


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out + bytes([n]))
