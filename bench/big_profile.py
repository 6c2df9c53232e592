"""A synthetic pprof whose gzip size is close to a target (30 MiB by default): many functions
with random names, so the bytes do not compress away. Used by the 30 MiB bench case."""
from __future__ import annotations

import gzip
import os
import random

from proftask.pprof.v1 import profile_pb2


def big_profile(target_bytes: int, seed: int = 7) -> bytes:
    """Calibrated in two passes: a small one measures the bytes per function."""
    probe = _profile(20_000, seed)
    per_function = len(probe) / 20_000
    data = _profile(int(target_bytes / per_function * 0.99), seed)
    while len(data) > target_bytes:
        data = _profile(int(target_bytes / per_function * 0.99 * target_bytes / len(data)), seed)
    return data


def _profile(n: int, seed: int) -> bytes:
    rnd = random.Random(seed)
    p = profile_pb2.Profile()
    p.string_table.extend([b"", b"samples", b"count", b"cpu", b"nanoseconds"])
    p.sample_type.add(type=1, unit=2)
    p.sample_type.add(type=3, unit=4)
    p.default_sample_type = 3
    for i in range(1, n + 1):
        p.string_table.append(b"main.f_" + os.urandom(56).hex().encode())
        p.function.add(id=i, name=len(p.string_table) - 1, system_name=len(p.string_table) - 1)
        p.location.add(id=i, address=0x400000 + i).line.add(function_id=i, line=i % 5000)
    for _ in range(n // 8):
        depth = rnd.randint(4, 24)
        p.sample.add(location_id=[rnd.randint(1, n) for _ in range(depth)], value=[1, 10_000_000])
    data = gzip.compress(p.SerializeToString(), 6)
    return data
