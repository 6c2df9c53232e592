"""A pprof export read by `go tool pprof` gives back the tree of the profiles it was made of.
proftask's frame names are pprof's display names; the export must keep pprof from rewriting
them again (its demangling heuristics strip `(...)` and `<...>` from a name whose system name
equals it)."""
import pathlib

import pytest

from proftask.pprof.encode import encode_profile
from tests.conformance.oracle import CONFORMANCE, oracle_files, oracle_tree
from tests.conformance.test_pprof_conformance import _stacks, load

FILES = oracle_files() if CONFORMANCE.is_dir() else []  # the 425k-node profile too (~8 s)


def exported(path: pathlib.Path, out: pathlib.Path) -> pathlib.Path:
    folded = load(path)
    stacks = [([folded.frames[f] for f in frames], values) for frames, values in _stacks(folded)]
    default = folded.sample_types[folded.default_index]
    out.write_bytes(encode_profile(folded.sample_types, default, "", 0, stacks))
    return out


@pytest.mark.parametrize("path", FILES, ids=[f"{p.parent.name}/{p.name}" for p in FILES])
def test_an_export_opens_in_go_tool_pprof_with_the_tree_it_was_made_of(path, tmp_path):
    out = exported(path, tmp_path / "export.pb.gz")
    for granularity in ("function", "line"):
        assert oracle_tree([out], None, granularity) == oracle_tree([path], None, granularity), granularity
