"""What the API and CLI show on a big profile is true: the top table is the whole profile's and
equals `go tool pprof -top`, whatever maxNodes cuts from the tree; a focus on a path reaches the
frames a cut tree dropped; the folded export has one line per distinct stack."""
import json
import os
import re
import subprocess
import urllib.parse

import pytest

from tests.conformance.oracle import oracle_tree, raw_sample_types, require_conformance
from tests.integration.harness import PROFTASK
from tests.integration.profiles import analysis, create_task, upload, wait_finished

SEP = "\x1f"
PPROF_ROW = re.compile(r"^\s*(-?\d+)(?:ns|B)?\s+\S+%\s+\S+%\s+(-?\d+)(?:ns|B)?\s+\S+%\s+(.*)$")
INLINE = re.compile(r" \((?:partial-)?inline\)$")
PPROF_LINE = re.compile(r"^(.*) \S+?:(\d+)(?::\d+)?$")


def large():
    return require_conformance() / "large" / "pprof-large.cpu.pb.gz"


def pprof_top(path, sample_type, lines=False, cum=False) -> list[tuple[str, int, int]]:
    """`go tool pprof -top` (or `-top -cum`) of every node (no node dropped), values as raw
    integers: [(name, flat, cum)] in pprof's order; at line granularity `function:line`."""
    unit = {"nanoseconds": ["-unit=ns"], "bytes": ["-unit=B"]}.get(sample_type.partition("/")[2], [])
    out = subprocess.run(["go", "tool", "pprof", "-top", "-nodecount=10000000", "-nodefraction=0",
                          "-edgefraction=0", f"-sample_index={sample_type.partition('/')[0]}", *unit,
                          *(["-lines"] if lines else []), *(["-cum"] if cum else []), str(path)],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    header = next(i for i, line in enumerate(out) if line.split()[:2] == ["flat", "flat%"])
    rows = []
    for line in out[header + 1:]:
        m = PPROF_ROW.match(line)
        assert m, f"unparsed pprof row {line!r}"
        name = INLINE.sub("", m.group(3))
        if lines:
            fm = PPROF_LINE.match(name)
            name = f"{fm.group(1)}:{fm.group(2)}"
        rows.append((name, int(m.group(1)), int(m.group(2))))
    return rows


@pytest.fixture(scope="module")
def big_task(stack):
    task_id = create_task(stack, ["big"], events="CPU", duration=1)
    assert upload(stack, task_id, "big", large()).status == 202
    wait_finished(stack, task_id, ["big"], timeout=300)
    return task_id


def top(stack, task_id, **params):
    query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/top?{query}", timeout=300)
    assert r.status == 200, r
    return r.json()


def test_top_table_is_pprofs_in_pprofs_order_whatever_max_nodes(stack, big_task):
    # test_big_profile_truth compares every sample type; here the order, ties included
    want = pprof_top(large(), "cpu/nanoseconds")
    assert len({flat for _, flat, _ in want}) < len(want)  # equal flats, ordered by name
    got = top(stack, big_task)
    assert [(r["name"], r["flat"], r["cum"]) for r in got["rows"]] == want
    assert got["total"] == oracle_tree([large()])["total"]
    # the tree the UI opens with is cut at 5,000 nodes; the top table is not
    assert analysis(stack, big_task, maxNodes=5000)["truncated"] > 0
    assert top(stack, big_task, maxNodes=5000) == got
    assert top(stack, big_task, maxNodes=0) == got  # 0: unlimited
    time_now = next(r for r in got["rows"] if r["name"] == "time.Now")
    assert (time_now["flat"], time_now["cum"]) == (205170000000, 205170000000)  # 85.38 %, as pprof says
    assert [r["name"] for r in top(stack, big_task, limit=3)["rows"]] == ["time.Now", "time.now", "main.next"]


def test_top_table_at_line_granularity_equals_go_tool_pprof_top_lines(stack, big_task):
    got = top(stack, big_task, granularity="line")
    assert [(r["name"], r["flat"], r["cum"]) for r in got["rows"]] == pprof_top(large(), "cpu/nanoseconds", lines=True)


def test_cli_analyze_prints_pprofs_top_whatever_max_nodes(stack, big_task):
    # at 5,000 nodes for every sample type, and unlimited (0) for the default one
    runs = [(sample_type, "5000") for sample_type in raw_sample_types(large())] + [("cpu/nanoseconds", "0")]
    for sample_type, max_nodes in runs:
        out = subprocess.run([PROFTASK, "analyze", big_task, "--max-nodes", max_nodes, "--top", "0", "--raw",
                              "--sample-type", sample_type, "--server", stack.base],
                             capture_output=True, text=True, timeout=300, env=dict(os.environ))
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert "more; --top N" not in out.stdout  # --top 0: all of them
        rows = []
        for line in lines[2:]:
            self_value, _pct, total, _tpct, name = line.split(maxsplit=4)
            rows.append((name, int(self_value), int(total)))
        assert rows == pprof_top(large(), sample_type), (sample_type, max_nodes)


def paths_of(result) -> dict[str, tuple[int, int]]:
    paths, out = {"0": ""}, {}
    for e in result["tree"]["elements"][1:]:
        parent = paths[e["parentId"]]
        paths[e["id"]] = e["codeSignature"] if not parent else parent + SEP + e["codeSignature"]
        out[paths[e["id"]]] = (e["total"], e["self"])
    return out


def test_focus_reaches_what_the_cut_tree_dropped(stack, big_task):
    full = oracle_tree([large()])["nodes"]
    cut = paths_of(analysis(stack, big_task, maxNodes=5000))
    # the heaviest main.next the 5,000-node tree dropped (with its subtree)
    target = max((p for p in full if p.split(SEP)[-1] == "main.next" and p not in cut), key=lambda p: full[p][0])
    subtree = [p for p in full if p == target or p.startswith(target + SEP)]
    path = target.split(SEP)
    got = analysis(stack, big_task, maxNodes=2000, focus=urllib.parse.quote(json.dumps(path)))
    assert got["focus"] == path and got["truncated"] == max(0, len(subtree) - 2000)
    elements = got["tree"]["elements"]
    assert elements[0]["total"] == oracle_tree([large()])["total"]
    # the root, the ancestors, then at most 2,000 nodes of the subtree
    assert len(elements) == len(path) + min(2000, len(subtree))
    focused = paths_of(got)
    assert all(full[p] == list(v) for p, v in focused.items())  # real values, ancestors included
    below = list(focused)[len(path) - 1:]
    assert below[0] == target and set(below) <= set(subtree) and not set(below) & set(cut)
    # the biggest subtree under main.main, cut inside at 2,000 nodes: the heaviest of it
    main = SEP.join(path[:2])
    got = analysis(stack, big_task, maxNodes=2000, focus=urllib.parse.quote(json.dumps(path[:2])))
    inside = [p for p in full if p.startswith(main + SEP)]
    assert len(got["tree"]["elements"]) == 2 + 2000 and got["truncated"] == len(inside) + 1 - 2000
    assert all(full[p] == list(v) for p, v in paths_of(got).items())

    r = stack.get(f"/api/v1/pprof/tasks/{big_task}/analysis?focus="
                  + urllib.parse.quote(json.dumps([path[0], "no.such.frame", "x"])))
    assert r.status == 400 and r.json()["code"] == "ARGUMENT_ERROR" and '"no.such.frame"' in r.json()["errorReason"]
    for bad in ("main.main", '{"a":1}', "[1]", "[\"a\""):
        r = stack.get(f"/api/v1/pprof/tasks/{big_task}/analysis?focus=" + urllib.parse.quote(bad))
        assert r.status == 400 and r.json()["code"] == "ARGUMENT_ERROR", (bad, r)


def test_folded_export_has_one_line_per_distinct_stack(stack, big_task):
    r = stack.get(f"/api/v1/pprof/tasks/{big_task}/export?format=folded", timeout=300)
    assert r.status == 200
    stacks = [line.rpartition(" ") for line in r.body.decode().splitlines()]
    assert len({s for s, _, _ in stacks}) == len(stacks)
    leaves = {p: v[1] for p, v in oracle_tree([large()])["nodes"].items() if v[1]}
    assert {s.replace(";", SEP): int(v) for s, _, v in stacks} == leaves


def test_agents_and_probes_are_answered_while_the_large_profiles_heavy_answers_render(stack, big_task):
    """Reading a large task (whole trees, top tables, every export, at once) must not hold the
    server's event loop: agents' polls and /healthz, asked all the while, are answered at once
    (with the rows and answers made on the event loop they waited 2.5-7 s; off it, 0.3-0.7 s)."""
    import concurrent.futures
    import threading
    import time

    base = f"/api/v1/pprof/tasks/{big_task}"
    # answers no other test of the module asked (the server keeps those it made)
    heavy = [f"{base}/analysis?maxNodes=9999999", f"{base}/analysis?granularity=line&maxNodes=9999999",
             f"{base}/top?limit=9999999", f"{base}/top?granularity=line&limit=9999999",
             f"{base}/export?format=pprof", f"{base}/export?format=folded", f"{base}/export?format=speedscope",
             f"/api/v1/pprof/diff?baseTaskId={big_task}&compareTaskId={big_task}&granularity=line"]
    heavy *= 2  # each twice: the answers a team opening one task at once asks
    done, waits = threading.Event(), []

    def probe(path):
        while not done.is_set():
            started = time.monotonic()
            status = stack.get(path).status
            waits.append((time.monotonic() - started, path, status))

    probes = [threading.Thread(target=probe, args=(path,)) for path in
              ("/healthz", "/api/v1/pprof/agent/commands?service=probe&serviceInstance=probe-1")]
    for t in probes:
        t.start()
    try:
        with concurrent.futures.ThreadPoolExecutor(len(heavy)) as readers:
            statuses = list(readers.map(lambda path: stack.get(path, timeout=300).status, heavy))
    finally:
        done.set()
        for t in probes:
            t.join()
    assert statuses == [200] * len(heavy)
    assert len(waits) > 10 and {status for *_, status in waits} == {200}
    assert max(waits) < (2.0,), sorted(waits)[-3:]
