"""The diff of two instance sets and the per-instance spread of each node, against the oracle."""
import pytest

from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.profiles import create_task, upload, wait_finished

SEP = "\x1f"


def by_path(elements, fields):
    paths, out = {"0": ""}, {}
    for e in elements[1:]:
        parent = paths[e["parentId"]]
        paths[e["id"]] = path = e["codeSignature"] if not parent else parent + SEP + e["codeSignature"]
        out[path] = tuple(e[f] for f in fields)
    return out


@pytest.fixture(scope="module")
def two_programs(stack):
    a = require_conformance() / "go/pprof-sample.cpu.pb.gz"
    b = require_conformance() / "go/pyroscope-cpu.pb.gz"
    task_id = create_task(stack, ["pod-a", "pod-b"], events="CPU", duration=1)
    upload(stack, task_id, "pod-a", a)
    upload(stack, task_id, "pod-b", b)
    wait_finished(stack, task_id, ["pod-a", "pod-b"])
    return task_id, oracle_tree([a], sample_type="cpu"), oracle_tree([b], sample_type="cpu")


def test_diff_of_two_instance_sets_has_each_sides_exact_sums(stack, two_programs):
    task_id, a, b = two_programs
    r = stack.get(f"/api/v1/pprof/diff?baseTaskId={task_id}&baseInstanceIds=pod-a&compareInstanceIds=pod-b"
                  "&sampleType=cpu")
    assert r.status == 200, r
    diff = r.json()
    assert (diff["base"]["total"], diff["compare"]["total"]) == (a["total"], b["total"])
    assert diff["base"]["instanceIds"] == ["pod-a"] and diff["compare"]["instanceIds"] == ["pod-b"]
    nodes = by_path(diff["tree"]["elements"], ("baseTotal", "baseSelf", "compareTotal", "compareSelf"))
    assert set(nodes) == set(a["nodes"]) | set(b["nodes"])
    for path, (bt, bs, ct, cs) in nodes.items():
        assert [bt, bs] == a["nodes"].get(path, [0, 0]) and [ct, cs] == b["nodes"].get(path, [0, 0]), path


def test_diff_errors(stack, two_programs):
    task_id, _, _ = two_programs
    assert stack.get("/api/v1/pprof/diff").status == 400
    r = stack.get(f"/api/v1/pprof/diff?baseTaskId={task_id}&compareTaskId=nope")  # an argument: 400 naming it
    assert r.status == 400 and r.json()["errorReason"] == 'task "nope" not found', r
    heap = create_task(stack, ["pod-h"])
    upload(stack, heap, "pod-h", require_conformance() / "go/pyroscope-heap.pb.gz")
    wait_finished(stack, heap, ["pod-h"])
    r = stack.get(f"/api/v1/pprof/diff?baseTaskId={task_id}&compareTaskId={heap}")
    assert r.status == 400 and "unknown sample type" in r.json()["errorReason"]


def test_instance_spread_marks_a_path_of_one_instance(stack, two_programs):
    task_id, a, b = two_programs
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?sampleType=cpu&maxNodes=20000&instanceStats=true")
    assert r.status == 200, r
    result = r.json()
    assert result["instanceCount"] == 2
    root = result["tree"]["elements"][0]
    assert (root["instances"], root["shareMin"], root["shareMax"]) == (2, 1.0, 1.0)
    nodes = by_path(result["tree"]["elements"], ("instances", "shareMin", "shareMax"))
    only_a = [p for p in a["nodes"] if p not in b["nodes"]]
    assert only_a
    for path in only_a:
        share = a["nodes"][path][0] / a["total"]
        assert nodes[path] == (1, 0.0, pytest.approx(share, abs=1e-6)), path
    both = [p for p in a["nodes"] if p in b["nodes"]]
    for path in both:
        shares = sorted([a["nodes"][path][0] / a["total"], b["nodes"][path][0] / b["total"]])
        assert nodes[path] == (2, pytest.approx(shares[0], abs=1e-6), pytest.approx(shares[1], abs=1e-6))


def test_instance_stats_need_a_bounded_tree(stack, two_programs):
    task_id, _, _ = two_programs
    assert stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?instanceStats=maybe").status == 400
