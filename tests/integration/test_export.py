"""Exports: pprof that go tool pprof opens with the same totals, folded, speedscope."""
import subprocess

import pytest

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
