"""The top table is the whole profile's, whatever maxNodes the tree is viewed at, and equals
`go tool pprof -top` flat and cum for every function and sample type (recursion counted once)."""
import re
import subprocess

import pytest

from tests.conformance.oracle import raw_sample_types, require_conformance
from tests.integration.harness import PROFTASK
from tests.integration.profiles import create_task, upload, wait_finished


PPROF_UNITS = {"nanoseconds": "ns", "bytes": "B"}
ROW = re.compile(r"^\s*(\S+)\s+\S+%\s+\S+%\s+(\S+)\s+\S+%\s+(.+)$")


def _number(text: str) -> int:
    return int(re.sub(r"[A-Za-z]+$", "", text))


def go_pprof_top(path, sample_type: str) -> dict[str, tuple[int, int]]:
    """function → (flat, cum) from `go tool pprof -top`, every row, values in the profile's unit."""
    kind, unit = sample_type.split("/")
    args = ["go", "tool", "pprof", "-top", "-nodecount=1000000", "-nodefraction=0", "-edgefraction=0",
            f"-sample_index={kind}"]
    if unit in PPROF_UNITS:
        args.append(f"-unit={PPROF_UNITS[unit]}")
    out = subprocess.run([*args, str(path)], capture_output=True, text=True, check=True).stdout.splitlines()
    start = next(i for i, line in enumerate(out) if line.strip().startswith("flat")) + 1
    rows = {}
    for line in out[start:]:
        m = ROW.match(line)
        assert m, line
        name = re.sub(r" \((?:partial-)?inline\)$", "", m.group(3))  # pprof marks inlined functions
        rows[name] = (_number(m.group(1)), _number(m.group(2)))
    return rows


CASES = ["large/pprof-large.cpu.pb.gz", "go/parca-fib.pb.gz", "go/pyroscope-heap.pb.gz"]


@pytest.fixture(scope="module")
def tasks(stack):
    ids = {}
    for name in CASES:
        events = {"events": "HEAP"} if "heap" in name else {"events": "CPU", "duration": 1}
        ids[name] = create_task(stack, ["pod-1"], **events)
        assert upload(stack, ids[name], "pod-1", require_conformance() / name).status == 202
    for task_id in ids.values():
        wait_finished(stack, task_id, ["pod-1"], timeout=180)
    return ids


@pytest.mark.parametrize("name", CASES)
def test_top_equals_go_tool_pprof_top_for_every_sample_type(stack, tasks, name):
    path = require_conformance() / name
    for sample_type in raw_sample_types(path):
        r = stack.get(f"/api/v1/pprof/tasks/{tasks[name]}/top?sampleType={sample_type}", timeout=300)
        assert r.status == 200, r
        got = {row["name"]: (row["flat"], row["cum"]) for row in r.json()["rows"] if row["flat"] or row["cum"]}
        assert got == go_pprof_top(path, sample_type), sample_type
        # pprof's own order (FlatNameOrder: flat, then name; cum parts equal names only)
        assert [row["name"] for row in r.json()["rows"] if row["flat"] or row["cum"]] == \
            list(go_pprof_top(path, sample_type)), sample_type


def test_the_cli_table_is_the_whole_profiles_at_any_max_nodes(stack, tasks):
    name = "large/pprof-large.cpu.pb.gz"
    want = go_pprof_top(require_conformance() / name, "cpu/nanoseconds")
    # the tree cut to 5,000 nodes does not change the table
    cut = stack.get(f"/api/v1/pprof/tasks/{tasks[name]}/analysis?maxNodes=5000", timeout=300).json()
    assert cut["truncated"] > 0
    out = subprocess.run([PROFTASK, "analyze", tasks[name], "--server", stack.base, "--top", "3",
                          "--max-nodes", "5000"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[2].split()[-1] == "time.Now" and "85.38%" in lines[2]  # pprof -top: 85.38% flat
    assert want["time.Now"][0] == 205_170_000_000
    assert "cut" not in out.stdout


def _paths(result: dict) -> dict[tuple[str, ...], tuple[int, int]]:
    by_id, out = {}, {}
    for e in result["tree"]["elements"]:
        path = () if e["parentId"] == "-1" else by_id[e["parentId"]] + (e["codeSignature"],)
        by_id[e["id"]] = path
        out[path] = (e["total"], e["self"])
    return out


def test_a_focus_reaches_every_frame_under_a_node_with_its_exact_values(stack, tasks):
    from urllib.parse import quote
    import json

    task_id = tasks["large/pprof-large.cpu.pb.gz"]
    full = _paths(stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis", timeout=300).json())
    cut = _paths(stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?maxNodes=5000", timeout=300).json())
    path = min((p for p in full if p and p[-1] == "main.next"), key=len)
    below = lambda paths: [p for p in paths if p[:len(path)] == path and len(p) > len(path)]  # noqa: E731
    assert len(below(full)) > 20_000 > len(below(cut))
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?maxNodes=20000&focus={quote(json.dumps(list(path)))}",
                  timeout=300)
    assert r.status == 200, r
    body = r.json()
    assert body["focus"] == list(path)
    focused = _paths(body)
    assert all(focused[p] == full[p] for p in focused)  # exact, ancestors included
    # maxNodes counts inside the focus (the focused node is one of them); the path comes on top
    assert len(below(focused)) == 20_000 - 1 and set(focused) - set(below(focused)) == \
        {path[:i] for i in range(len(path) + 1)}
    assert len([p for p in below(focused) if p not in cut]) > 10_000  # frames the first view had dropped
    assert body["truncated"] == len(below(full)) - (20_000 - 1)
    # a path that is not there names the frame
    bad = stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?focus={quote(json.dumps([*path, 'nope']))}")
    assert bad.status == 400 and 'no frame "nope"' in bad.json()["errorReason"]
    assert stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?focus=%5B1%5D").status == 400
