"""A profile's drop_frames and keep_frames, which `go tool pprof` applies as it reads a profile
(RemoveUninteresting): both folds cut the same frames, and the tree equals the oracle's."""
from __future__ import annotations

import gzip
import subprocess
import sys
import textwrap

import pytest

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof import native
from proftask.pprof.decode import decompress, parse_profile
from proftask.pprof.fold import fold_stacks
from proftask.pprof.prune import simplify_func
from proftask.pprof.v1 import profile_pb2
from proftask.processing.profile_rows import _python_rows, profile_rows
from tests.conformance.oracle import oracle_tree
from tests.conformance.same_rows import assert_same_rows
from tests.conformance.test_pprof_conformance import tree_from_folded

LIMIT = 64 * 1024 * 1024
NAMES = ["main.main", "main.f", ".main.g(int, string)", "main.h", "runtime.mallocgc", "main.k"]


def profile(drop: str, keep: str = "") -> profile_pb2.Profile:
    """main.main → main.f → main.g (h inlined into g at one location) → mallocgc, and two shorter
    stacks; functions 1.. are NAMES, location 3 holds h (leaf) inlined into g."""
    strings = ["", "samples", "count", *NAMES, drop, keep]
    p = profile_pb2.Profile(string_table=[s.encode() for s in strings])
    p.sample_type.add(type=1, unit=2)
    for i, _ in enumerate(NAMES, start=1):
        p.function.add(id=i, name=2 + i, system_name=2 + i)
    p.drop_frames = strings.index(drop) if drop else 0
    p.keep_frames = len(strings) - 1 if keep else 0
    p.location.add(id=1, address=0x10).line.add(function_id=1, line=10)  # main.main
    p.location.add(id=2, address=0x20).line.add(function_id=2, line=20)  # main.f
    loc = p.location.add(id=3, address=0x30)
    loc.line.add(function_id=4, line=40)  # main.h, inlined (leaf first)
    loc.line.add(function_id=3, line=30)  # main.g
    p.location.add(id=4, address=0x40).line.add(function_id=5, line=50)  # runtime.mallocgc
    p.location.add(id=5, address=0x50).line.add(function_id=6, line=60)  # main.k
    p.sample.add(location_id=[4, 3, 2, 1], value=[7])
    p.sample.add(location_id=[3, 2, 1], value=[5])
    p.sample.add(location_id=[5, 1], value=[3])
    p.sample.add(location_id=[2, 1], value=[2])
    return p


CASES = {
    "g and beneath": (r"main\.g", ""),
    "its argument list aside": ("main.g", ""),
    "an inlined callee only": (r"main\.h", ""),
    "the allocator": (r"runtime\..*", ""),
    "the root stays": (r"main\.main|main\.k", ""),
    "kept": (r"main\..*", r"main\.main|main\.f"),
    "a regexp that does not compile cuts nothing": (r"main.(", ""),
    "a keep that does not compile cuts nothing": (r"main\..*", r"main.("),
    "nothing to drop": ("", r"main\.f"),
    "a flag up front": (r"(?i)MAIN\.G", ""),
    "pprof's anchors around an alternation": (r"runtime)|(zzz", ""),
}


def renamed(drop: str) -> profile_pb2.Profile:
    """main → mid → a C++ method named as a C++ profiler writes it (Name = SystemName, which
    pprof's symbolizer shows without its arguments and templates), and main → mid → a function
    with a SystemName only (which pprof shows as its name)."""
    strings = ["", "samples", "count", "main", "mid", "std::vector<int>::push_back(int const&)", "runtime.mallocgc",
               drop]
    p = profile_pb2.Profile(string_table=[s.encode() for s in strings], drop_frames=len(strings) - 1)
    p.sample_type.add(type=1, unit=2)
    p.function.add(id=1, name=3, system_name=3)
    p.function.add(id=2, name=4, system_name=4)
    p.function.add(id=3, name=5, system_name=5)
    p.function.add(id=4, name=0, system_name=6)
    for i in range(1, 5):
        p.location.add(id=i, address=0x10 * i).line.add(function_id=i, line=i)
    p.sample.add(location_id=[3, 2, 1], value=[5])
    p.sample.add(location_id=[4, 2, 1], value=[2])
    p.sample.add(location_id=[2, 1], value=[1])
    return p


RENAMED = {
    "as pprof shows the C++ name": r"std::vector::push_back",
    "as written, which pprof does not show": r"std::vector<int>::push_back",
    "a name from the system name": r"runtime\..*",
}


@pytest.mark.parametrize("drop", RENAMED.values(), ids=RENAMED.keys())
def test_frames_are_matched_by_the_names_pprof_shows(tmp_path, drop):
    assert_cut_as_go_tool_pprof_cuts(tmp_path, renamed(drop))


@pytest.mark.parametrize("drop, keep", CASES.values(), ids=CASES.keys())
def test_both_folds_cut_the_frames_go_tool_pprof_cuts(tmp_path, drop, keep):
    assert_cut_as_go_tool_pprof_cuts(tmp_path, profile(drop, keep))


def test_a_drop_frames_not_utf8_cuts_nothing_as_in_pprof(tmp_path):
    """Go's regexp refuses it, so pprof cuts nothing. Go declines the profile (a string not
    UTF-8); made UTF-8 for it, the regexp would compile and cut main.g."""
    p = profile(r"main\.g")
    p.string_table[p.drop_frames] = b"main\\.g|\xff"
    assert native.fold(decompress(gzip.compress(p.SerializeToString()), LIMIT)) is None
    assert_cut_as_go_tool_pprof_cuts(tmp_path, p, by_go=False)
    assert "main.main\x1fmain.f\x1f.main.g(int, string)" in tree_from_folded(
        [fold_stacks(p)], None, "function")["nodes"]


def test_a_regexp_python_would_backtrack_on_for_ever_is_read_in_linear_time():
    """(a|aa)*c against a name of 64 a's: Python's `re` takes ~1.6x longer each character (~0.9 s
    at 34), for years here; RE2, as Go, answers at once. Run apart, so that a hang fails."""
    script = textwrap.dedent('''
        from proftask.pprof.fold import fold_stacks
        from proftask.pprof.v1 import profile_pb2
        strings = ["", "samples", "count", "main.main", "a" * 64, "(a|aa)*c"]
        p = profile_pb2.Profile(string_table=[s.encode() for s in strings], drop_frames=5)
        p.sample_type.add(type=1, unit=2)
        p.function.add(id=1, name=3)
        p.function.add(id=2, name=4)
        p.location.add(id=1).line.add(function_id=1)
        p.location.add(id=2).line.add(function_id=2)
        p.sample.add(location_id=[2, 1], value=[1])
        print(len(fold_stacks(p).frames))
    ''')
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["2"]  # no c: nothing cut


def assert_cut_as_go_tool_pprof_cuts(tmp_path, p: profile_pb2.Profile, by_go: bool = True) -> None:
    body = gzip.compress(p.SerializeToString())
    path = tmp_path / "p.pb.gz"
    path.write_bytes(body)
    for granularity in ("function", "line"):
        folded = fold_stacks(parse_profile(decompress(body, LIMIT)))
        assert tree_from_folded([folded], None, granularity) == oracle_tree([path], None, granularity), granularity
    env = events.new_event("t", pb.ProfileUploaded(task_id="task", instance_id="i", profile_id="p", content=body,
                                                  size=len(body)))
    if by_go:
        assert native.fold(decompress(body, LIMIT)) is not None  # folded by Go, not left to Python
    assert_same_rows(profile_rows(env, LIMIT), _python_rows(env, decompress(body, LIMIT)))


def test_a_dropped_frame_is_gone_from_the_tree_and_its_values_stay_with_its_caller():
    folded = fold_stacks(profile(r"main\.g"))
    tree = tree_from_folded([folded], None, "function")
    assert not any("main.g" in path or "mallocgc" in path for path in tree["nodes"])
    assert tree["nodes"]["main.main\x1fmain.f"] == [14, 14]  # 7 + 5 + 2: f is the leaf now
    assert tree["total"] == 17


@pytest.mark.parametrize("name, simple", [
    ("main.g(int, string)", "main.g"), (".main.g", "main.g"), ("(anonymous namespace)::f(int)", "(anonymous namespace)::f"),
    ("std::less<int>::operator()(int)", "std::less<int>::operator()"), ("main.f", "main.f")])
def test_names_are_simplified_as_pprof_simplifies_them_before_matching(name, simple):
    assert simplify_func(name) == simple
