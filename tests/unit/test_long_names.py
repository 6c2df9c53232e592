"""A long function name costs its length, once: pprof's remove_matching cut each group out and
searched again from its start (O(len²): 6.5 s for a 1 MB name), and every function sharing the
name paid it again (a 260-byte gzipped profile of 40 functions of one 100 KB name took 2.6 s to
fold, 1,000 of a 1 MB name hours). Same names as before, in Python and in Go."""
from __future__ import annotations

import random
import time

from proftask.pprof import native
from proftask.pprof.fold import fold_stacks
from proftask.pprof.names import display_name, remove_matching
from proftask.pprof.v1 import profile_pb2


def pprof_remove_matching(name: str, start: str, end: str) -> str:
    """The loop of pprof's symbolizer (and of proftask before), for reference."""
    nesting = first = current = 0
    while True:
        indexes = [i for i in (name.find(start, current), name.find(end, current)) if i != -1]
        if not indexes:
            return name
        current = min(indexes)
        if name[current] == start:
            nesting += 1
            if nesting == 1:
                first = current
        else:
            nesting -= 1
            if nesting < 0:
                return name
            if nesting == 0:
                name = name[:first] + name[current + 1:]
                current = first - 1
        current += 1


def test_remove_matching_answers_what_pprofs_loop_answers():
    rng = random.Random(14)
    names = ["", "a", "()", "a(b)c", "a(b)c)d", "a(b(c)d", "((a)", "a)(b", "f<int>::g(x)", "x<<y>"]
    names += ["".join(rng.choice("ab()<>:") for _ in range(rng.randrange(12))) for _ in range(20_000)]
    for name in names:
        for start, end in (("(", ")"), ("<", ">")):
            assert remove_matching(name, start, end) == pprof_remove_matching(name, start, end), name


def profile(functions: int, name: bytes) -> profile_pb2.Profile:
    p = profile_pb2.Profile(string_table=[b"", b"samples", b"count", name])
    p.sample_type.add(type=1, unit=2)
    for i in range(functions):
        p.function.add(id=i + 1, name=3, system_name=3)
        p.location.add(id=i + 1).line.add(function_id=i + 1, line=1)
        p.sample.add(location_id=[i + 1], value=[1])
    return p


def test_functions_sharing_a_megabyte_name_fold_in_linear_time_in_go_and_python():
    unclosed = b"a::" + b"(" * 1_000_000  # old: ~6.5 s per function, in each fold
    p = profile(3, unclosed)
    started = time.perf_counter()
    folded = native.fold(p.SerializeToString())
    assert folded is not None and sorted(folded.strings("frame_name"), key=len) == [unclosed.decode(), unclosed.decode() + ":1"]
    stacks = fold_stacks(p)
    assert stacks.frames == [(unclosed.decode(), 1, False)]
    assert time.perf_counter() - started < 5  # generous: ~0.1 s; pprof's loop took ~40 s
    assert display_name("a::f(int)<T>(x)", "a::f(int)<T>(x)") == "a::f"
