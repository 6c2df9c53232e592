"""Exports: pprof that go tool pprof opens with the same totals, folded, speedscope."""
import gzip
import subprocess

import pytest

from proftask.pprof.encode import encode_profile
from proftask.pprof.v1 import profile_pb2
from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.profiles import analysis, as_oracle_shape, create_task, upload, wait_finished



@pytest.fixture(scope="module")
def merged_task(stack):
    base = require_conformance()
    files = [base / "go" / "pyroscope-heap.pb.gz", base / "go" / "parca-many-1644509296350592000.pb.gz"]
    task_id = create_task(stack, ["a", "b"])
    for instance, path in zip(["a", "b"], files, strict=False):
        assert upload(stack, task_id, instance, path).status == 202
    wait_finished(stack, task_id, ["a", "b"])
    return task_id, files


def export(stack, task_id, **params):
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/export?{query}")
    assert r.status == 200, r
    return r.body


def test_pprof_export_opens_in_go_tool_pprof_with_the_same_tree(stack, merged_task, tmp_path):
    task_id, files = merged_task
    out = tmp_path / "merged.pb.gz"
    out.write_bytes(export(stack, task_id, format="pprof"))
    top = subprocess.run(["go", "tool", "pprof", "-top", str(out)], capture_output=True, text=True)
    assert top.returncode == 0, top.stderr
    for sample_type in (None, "alloc_objects/count", "inuse_objects/count", "alloc_space/bytes"):
        for granularity in ("function", "line"):
            assert oracle_tree([out], sample_type, granularity) == oracle_tree(files, sample_type, granularity)
            assert as_oracle_shape(analysis(stack, task_id, sampleType=sample_type, granularity=granularity)) \
                == oracle_tree([out], sample_type, granularity)


def _lines_top(files) -> list[str]:
    """`go tool pprof -lines -top` rows, every one: `function file:line` with its values. An
    export writes each frame as a location of its own, so pprof's `(inline)` and
    `(partial-inline)` marks are not kept."""
    out = subprocess.run(["go", "tool", "pprof", "-lines", "-top", "-nodecount=100000", "-nodefraction=0",
                          *map(str, files)], capture_output=True, text=True, check=True).stdout.splitlines()
    rows = out[out.index(next(r for r in out if "flat%" in r)) + 1:]
    return [row.removesuffix(" (inline)").removesuffix(" (partial-inline)") for row in rows]


def _function_file_line(row: str) -> tuple[str, str, str]:
    """A -lines -top row as (values and function, file, line)."""
    head, where = row.rsplit(" ", 1)
    file, _, line = where.rpartition(":")
    return head, file, line


def test_pprof_export_names_each_function_s_source_file(stack, merged_task, tmp_path):
    """go tool pprof -lines and -list find the source by the file a function names: the export
    keeps the files of the uploaded profiles (before m0008 it named none). A tenant's frames are
    one by name, so a function whose profiles name two files (runtime.allocm here, from two
    machines' Go installs) is named by one of them: the first in byte order of those named with
    the frames exported (tests/readmodel/test_migrate_old_data.py)."""
    task_id, files = merged_task
    named: dict[str, set[str]] = {}  # function → the files the profiles name for it
    for original in files:
        p = profile_pb2.Profile.FromString(gzip.decompress(original.read_bytes()))
        for f in p.function:
            named.setdefault(p.string_table[f.name].decode(), set()).add(p.string_table[f.filename].decode())
    assert named["runtime.allocm"] == {"runtime/proc.go", "/opt/homebrew/Cellar/go/1.17.6/libexec/src/runtime/proc.go"}
    for instance, original in zip(["a", "b"], files, strict=True):
        out = tmp_path / f"{instance}.pb.gz"
        out.write_bytes(export(stack, task_id, format="pprof", instanceIds=instance))
        exported, expected = _lines_top([out]), _lines_top([original])
        assert len(exported) == len(expected)
        for row, want in zip(exported, expected, strict=True):
            (head, file, line), (want_head, want_file, want_line) = _function_file_line(row), _function_file_line(want)
            assert (head, line) == (want_head, want_line)
            assert file == want_file or file in named[head.split()[-1]], row


def test_folded_export_is_the_tree(stack, merged_task):
    task_id, files = merged_task
    for granularity in ("function", "line"):
        text = export(stack, task_id, format="folded", granularity=granularity, sampleType="inuse_space").decode()
        nodes, total = {}, 0
        for line in text.splitlines():
            stack_text, value = line.rsplit(" ", 1)
            frames, v = stack_text.split(";"), int(value)
            total += v
            for depth in range(1, len(frames) + 1):
                nodes.setdefault("\x1f".join(frames[:depth]), [0, 0])[0] += v
            nodes["\x1f".join(frames)][1] += v
        expected = oracle_tree(files, "inuse_space", granularity)
        assert total == expected["total"] and nodes == expected["nodes"]


def test_speedscope_export(stack, merged_task):
    import json
    task_id, files = merged_task
    doc = json.loads(export(stack, task_id, format="speedscope"))
    (profile,) = doc["profiles"]
    assert doc["$schema"] == "https://www.speedscope.app/file-format-schema.json"
    assert profile["type"] == "sampled" and profile["unit"] == "bytes"
    assert sum(profile["weights"]) == oracle_tree(files)["total"] == profile["endValue"]
    assert all(0 <= i < len(doc["shared"]["frames"]) for s in profile["samples"] for i in s)


def test_instance_filter_and_bad_format(stack, merged_task, tmp_path):
    task_id, files = merged_task
    out = tmp_path / "a.pb.gz"
    out.write_bytes(export(stack, task_id, format="pprof", instanceIds="a"))
    assert oracle_tree([out]) == oracle_tree(files[:1])
    assert stack.get(f"/api/v1/pprof/tasks/{task_id}/export?format=svg").status == 400


def _raw_header(path) -> list[str]:
    """`go tool pprof -raw`'s header: PeriodType, Period, Time, Duration."""
    out = subprocess.run(["go", "tool", "pprof", "-raw", str(path)], capture_output=True, text=True, check=True).stdout
    return out.split("Samples:")[0].splitlines()


def test_pprof_export_of_cpu_profiles_says_when_and_how_long_as_go_tool_pprof_merges_them(stack, tmp_path):
    """The merge's earliest start and summed duration (pprof's `Duration: 3.10s, Total samples = …
    (x%)`), for each choice of instances; one instance's export says its own."""
    base = require_conformance() / "go"
    files = {"old": base / "pprof-sample.cpu.pb.gz", "new": base / "pyroscope-cpu.pb.gz"}
    task_id = create_task(stack, list(files), events="CPU", duration=1)
    for instance, path in files.items():
        assert upload(stack, task_id, instance, path).status == 202
    wait_finished(stack, task_id, list(files))
    for chosen in (["old", "new"], ["new"]):
        out = tmp_path / f"{'-'.join(chosen)}.pb.gz"
        out.write_bytes(export(stack, task_id, format="pprof", instanceIds=",".join(chosen)))
        merged = tmp_path / f"go-{'-'.join(chosen)}.pb.gz"
        merged.write_bytes(subprocess.run(["go", "tool", "pprof", "-proto", *(str(files[i]) for i in chosen)],
                                          capture_output=True, check=True).stdout)
        assert _raw_header(out) == _raw_header(merged)
        got, want = profile_pb2.Profile(), profile_pb2.Profile()
        got.ParseFromString(gzip.decompress(out.read_bytes()))
        want.ParseFromString(gzip.decompress(merged.read_bytes()))
        assert (got.time_nanos, got.duration_nanos, got.period) == (want.time_nanos, want.duration_nanos, want.period)
    assert "Duration: 3.10" in "\n".join(_raw_header(tmp_path / "old-new.pb.gz"))


def test_folded_export_keeps_a_go_generic_name_holding_a_semicolon_one_frame(stack):
    generic = "main.Work[go.shape.struct { A int; B string }]"  # as Go 1.18+ names the instantiation
    body = encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 10_000_000,
                          [([("runtime.main", 0, False), ("main.main", 0, False), (generic, 0, False)], [30_000_000]),
                           ([("runtime.main", 0, False), ("main.main", 0, False)], [10_000_000])])
    task_id = create_task(stack, ["g-1"], events="CPU", duration=1)
    assert upload(stack, task_id, "g-1", body).status == 202
    wait_finished(stack, task_id, ["g-1"])
    lines = [line.rsplit(" ", 1) for line in export(stack, task_id, format="folded").decode().splitlines()]
    assert [(stack_text.split(";"), int(v)) for stack_text, v in lines] == [
        (["runtime.main", "main.main"], 10_000_000),
        (["runtime.main", "main.main", "main.Work[go.shape.struct { A int, B string }]"], 30_000_000)]
    assert analysis(stack, task_id)["tree"]["elements"][-1]["codeSignature"] == generic  # the analysis keeps it whole


@pytest.mark.parametrize("naming", ["second", "first"])
def test_a_merge_defaults_to_the_type_a_profile_names_wherever_that_profile_comes(stack, tmp_path, naming):
    """Go's heap profile names no default sample type, its allocs profile names alloc_space: pprof
    merges them to alloc_space, whichever file comes first (combineHeaders takes the first default
    named). proftask took the first instance's, inuse_space when the heap profile's came first."""
    types = ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"]
    stacks = [([("main.main", 1, False), ("main.alloc", 7, False)], [3, 300, 1, 100]),
              ([("main.main", 1, False), ("main.keep", 9, False)], [2, 800, 2, 800])]
    heap, allocs = tmp_path / "heap.pb.gz", tmp_path / "allocs.pb.gz"
    heap.write_bytes(encode_profile(types, "", "space/bytes", 524288, stacks))  # gzipped
    allocs.write_bytes(encode_profile(types, "alloc_space", "space/bytes", 524288, stacks))
    files = [heap, allocs] if naming == "second" else [allocs, heap]
    task_id = create_task(stack, ["a", "b"])
    for instance, path in zip(["a", "b"], files, strict=True):
        assert upload(stack, task_id, instance, path).status == 202
    wait_finished(stack, task_id, ["a", "b"])
    merged = subprocess.run(["go", "tool", "pprof", "-raw", *map(str, files)], capture_output=True, text=True,
                            check=True).stdout.splitlines()
    (pprofs_default,) = [t.removesuffix("[dflt]") for t in merged[merged.index("Samples:") + 1].split()
                         if t.endswith("[dflt]")]
    assert pprofs_default == "alloc_space/bytes"
    answer = analysis(stack, task_id)
    assert answer["sampleType"] == pprofs_default
    # the oracle reads each file alone, each by its own default unless told the merge's
    assert as_oracle_shape(answer) == oracle_tree(files, pprofs_default, "function")
    out = tmp_path / "merged.pb.gz"
    out.write_bytes(export(stack, task_id, format="pprof"))
    top = subprocess.run(["go", "tool", "pprof", "-top", str(out)], capture_output=True, text=True, check=True)
    assert "Type: alloc_space" in top.stdout


def _sample_types_line(path) -> str:
    """`go tool pprof -raw`'s sample types, the default marked [dflt]."""
    out = subprocess.run(["go", "tool", "pprof", "-raw", str(path)], capture_output=True, text=True, check=True).stdout
    lines = out.splitlines()
    return lines[lines.index("Samples:") + 1]


@pytest.mark.parametrize("first", ["cpu only", "samples and cpu"])
def test_pprof_export_merges_the_sample_types_every_instance_has_as_go_tool_pprof_does(stack, tmp_path, first):
    """pprof merges profiles of different sample types to those they all have, in the first
    file's order (CompatibilizeSampleTypes); the export answered 409 MIXED_SAMPLE_TYPES, while
    the analysis, the top table and the other exports of the same instances answered."""
    base = require_conformance() / "go"
    cpu_only, both = base / "parca-two-stacks.pb.gz", [base / "pprof-sample.cpu.pb.gz", base / "pyroscope-cpu.pb.gz"]
    files = [cpu_only, *both] if first == "cpu only" else [*both, cpu_only]
    instances = ["i1", "i2", "i3"]  # the files in this order: proftask merges by instance id
    task_id = create_task(stack, instances, events="CPU", duration=1)
    for instance, path in zip(instances, files, strict=True):
        assert upload(stack, task_id, instance, path).status == 202
    wait_finished(stack, task_id, instances)
    out = tmp_path / "export.pb.gz"
    out.write_bytes(export(stack, task_id, format="pprof"))
    merged = tmp_path / "go.pb.gz"
    merged.write_bytes(subprocess.run(["go", "tool", "pprof", "-proto", *map(str, files)], capture_output=True,
                                      check=True).stdout)
    assert _sample_types_line(out) == _sample_types_line(merged) == "cpu/nanoseconds[dflt]"
    assert _raw_header(out) == _raw_header(merged)
    assert oracle_tree([out], None, "line") == oracle_tree([merged], None, "line")
    assert as_oracle_shape(analysis(stack, task_id)) == oracle_tree([out], None, "function")


def test_pprof_export_drops_a_type_one_instance_has_beside_the_others(stack, tmp_path):
    stacks = [([("main.main", 1, False), ("main.work", 7, False)], [5, 50, 500]),
              ([("main.main", 1, False), ("main.rest", 9, False)], [1, 10, 100])]
    two, three = tmp_path / "two.pb.gz", tmp_path / "three.pb.gz"
    two.write_bytes(encode_profile(["samples/count", "cpu/nanoseconds"], "cpu/nanoseconds", "", 0,
                                   [(frames, values[:2]) for frames, values in stacks]))
    three.write_bytes(encode_profile(["samples/count", "cpu/nanoseconds", "wall/nanoseconds"], "cpu/nanoseconds", "",
                                     0, stacks))
    task_id = create_task(stack, ["i1", "i2"], events="CPU", duration=1)
    for instance, path in (("i1", two), ("i2", three)):
        assert upload(stack, task_id, instance, path).status == 202
    wait_finished(stack, task_id, ["i1", "i2"])
    out = tmp_path / "export.pb.gz"
    out.write_bytes(export(stack, task_id, format="pprof"))
    assert _sample_types_line(out) == "samples/count cpu/nanoseconds[dflt]"
    for sample_type in ("samples/count", "cpu/nanoseconds"):
        assert oracle_tree([out], sample_type, "line") == oracle_tree([two, three], sample_type, "line")


def test_pprof_export_of_one_sample_type_in_two_units_says_why_it_cannot_merge(stack):
    stacks = [([("main.main", 1, False), ("main.work", 7, False)], [5])]
    task_id = create_task(stack, ["ms", "ns"], events="CPU", duration=1)
    for instance, unit in (("ms", "milliseconds"), ("ns", "nanoseconds")):
        body = encode_profile([f"cpu/{unit}"], f"cpu/{unit}", "", 0, stacks)
        assert upload(stack, task_id, instance, body).status == 202
    wait_finished(stack, task_id, ["ms", "ns"])
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/export?format=pprof")
    assert r.status == 409 and r.json()["code"] == "MIXED_SAMPLE_TYPES", r
    assert '"cpu/milliseconds" and "cpu/nanoseconds"' in r.json()["errorReason"]
    assert export(stack, task_id, format="pprof", instanceIds="ns")  # one unit: exported
