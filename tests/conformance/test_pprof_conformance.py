"""decode + fold against go tool pprof (the oracle) on every real file of the corpus."""
import pathlib

import pytest

from proftask.pprof.decode import ProfileError, decompress, parse_profile
from proftask.pprof.fold import FoldedProfile, UnknownSampleType, fold_stacks, frame_name, select_sample_type
from tests.conformance.oracle import CONFORMANCE, oracle_files, oracle_tree, raw_sample_types, require_conformance

LIMIT = 512 * 1024 * 1024


def load(path: pathlib.Path) -> FoldedProfile:
    return fold_stacks(parse_profile(decompress(path.read_bytes(), LIMIT)))


def _stacks(fp):
    """Each folded stack (frame indexes root→leaf) with its values."""
    off = fp.stack_offsets
    for i in range(fp.stack_count):
        yield tuple(fp.stack_frames[off[i]:off[i + 1]].tolist()), fp.values[i].tolist()


def tree_from_folded(profiles, sample_type, granularity):
    """Per node path: [total, self] — the oracle's shape, from our folded stacks."""
    nodes, grand, chosen = {}, 0, None
    for fp in profiles:
        idx = select_sample_type(fp.sample_types, fp.default_index, sample_type)
        chosen = chosen or fp.sample_types[idx]
        for frames, values in _stacks(fp):
            v = values[idx]
            if v == 0:
                continue
            grand += v
            path = ""
            for depth, f in enumerate(frames):
                name = frame_name(fp.frames[f], granularity)
                path = name if depth == 0 else path + "\x1f" + name
                node = nodes.setdefault(path, [0, 0])
                node[0] += v
            if frames:
                nodes[path][1] += v
    return {"sampleType": chosen, "total": grand, "nodes": nodes}


def ids(files):
    return [f"{p.parent.name}/{p.name}" for p in files]


FILES = oracle_files() if CONFORMANCE.is_dir() else []


@pytest.mark.parametrize("path", FILES, ids=ids(FILES))
def test_every_sample_type_both_granularities_match_the_oracle(path):
    folded = load(path)
    assert folded.sample_types == raw_sample_types(path)
    for sample_type in [None, *folded.sample_types]:
        for granularity in ("function", "line"):
            assert tree_from_folded([folded], sample_type, granularity) == \
                oracle_tree([path], sample_type, granularity), (sample_type, granularity)


def test_merge_of_the_ten_parca_many_profiles_matches():
    files = sorted((require_conformance() / "go").glob("parca-many-*"))
    assert len(files) == 10
    folded = [load(p) for p in files]
    for sample_type in (None, "alloc_objects", "inuse_space/bytes"):
        assert tree_from_folded(folded, sample_type, "function") == oracle_tree(files, sample_type, "function")


def test_line_granularity_uses_the_line_not_the_column():
    path = require_conformance() / "go" / "pprof-sample.cpu.pb.gz"
    names = set(tree_from_folded([load(path)], None, "line")["nodes"])
    assert "runtime.main:185" in names  # `go tool pprof -raw` prints proc.go:185:0 (line:column)
    assert not any(n.startswith("runtime.main:0") for n in names)
    # the oracle read as file:line[:column] agrees
    assert any(n.split("\x1f")[-1] == "runtime.main:185" for n in oracle_tree([path], None, "line")["nodes"])


def test_function_id_zero_is_refused_with_the_reason():
    path = require_conformance() / "edge" / "pyroscope-dotnet-function-id-0.pb.gz"
    with pytest.raises(ProfileError, match="reserved ID=0"):
        load(path)


def test_invalid_utf8_is_replaced():
    folded = load(require_conformance() / "edge" / "pyroscope-invalid_utf8.pb.gz")
    names = [f[0] for f in folded.frames]
    assert any("\ufffd" in n for n in names)
    assert all(isinstance(n, str) for n in names)


def test_unknown_sample_type_lists_the_available():
    folded = load(require_conformance() / "go" / "pprof-sample.cpu.pb.gz")
    with pytest.raises(UnknownSampleType, match="samples/count, cpu/nanoseconds") as refused:
        select_sample_type(folded.sample_types, folded.default_index, "wall")
    assert refused.value.extra == {"sampleTypes": ["samples/count", "cpu/nanoseconds"]}


def test_values_whose_sums_leave_64_bits_are_refused_not_wrapped():
    from proftask.pprof.encode import encode_profile

    big = 2**63 - 1
    body = encode_profile(["samples/count"], "samples/count", "", 0,
                          [([("main.f", 1, False)], [big]), ([("main.f", 1, False)], [big]),
                           ([("main.g", 2, False)], [5])])
    with pytest.raises(ProfileError, match="sum to 18446744073709551619"):
        parse_profile(decompress(body, LIMIT))
    # a positive and a negative of the largest magnitude fit: no subset of them sums beyond either
    ok = encode_profile(["samples/count"], "samples/count", "", 0,
                        [([("main.f", 1, False)], [big]), ([("main.g", 2, False)], [-big])])
    assert len(parse_profile(decompress(ok, LIMIT)).sample) == 2


def test_threadcreate_profile_shows_unnamed_frames_as_pprof_does():
    """Go's threadcreate profile (runtime/pprof, Go 1.26: `pprof.Lookup("threadcreate").WriteTo(f, 0)`,
    the call skywalking-go makes) is 32-frame chains of a location whose line names no function:
    `0xffffffffffffffff :0:0` in `go tool pprof -raw`: each a frame named "", as the shared
    oracle (the DESIGN's reference tree) reads it, not the location's address."""
    path = pathlib.Path(__file__).resolve().parents[1] / "conformance" / "go-threadcreate.pb.gz"
    folded = load(path)
    assert folded.sample_types == raw_sample_types(path) == ["threadcreate/count"]
    for granularity in ("function", "line"):
        tree = tree_from_folded([folded], None, granularity)
        assert tree == oracle_tree([path], None, granularity)
        frames = {f for node in tree["nodes"] for f in node.split("\x1f")}
        assert frames == {"" if granularity == "function" else ":0"}, frames
        assert max(node.count("\x1f") + 1 for node in tree["nodes"]) == 32
