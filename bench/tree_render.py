"""The analysis path after the SQL, on the real large profile: NodeColumns of ten merged copies
of `large/pprof-large.cpu.pb.gz` (its node table with every value ×10, as the GROUP BY would
return it) → pre-order → elements JSON → response bytes. Times the whole tree (maxNodes=0) and
the first view (maxNodes=5000, on the heaviest-nodes cut the query returns, as query_svc does),
for the code in this tree and, as "before", proftask/core/flamegraph.py at a git ref (default
main); checks both give the same bytes.

    .venv/bin/python -m bench.tree_render [--ref main] [--repeat 5]
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import pathlib
import subprocess
import sys
import tempfile
import time
import types

import numpy as np

from proftask.core import flamegraph
from proftask.core.flamegraph import NodeColumns
from proftask.events.v1 import events_pb2 as pb
from proftask.pprof.fold import FUNCTION
from proftask.processing.profile_rows import profile_rows

ROOT = pathlib.Path(__file__).resolve().parent.parent
LARGE = ROOT.parent / "shared" / "conformance" / "large" / "pprof-large.cpu.pb.gz"
COPIES = 10
FIRST_VIEW = 5000


def merged_columns(path: pathlib.Path, copies: int) -> NodeColumns:
    env = pb.Envelope(tenant="t", event_id="e", occurred_at=1)
    up = env.profile_uploaded
    up.task_id, up.instance_id, up.profile_id, up.content = "task", "i", "p", path.read_bytes()
    rows = profile_rows(env, 1 << 30)
    default = rows.profile["default_index"]
    part = next(p for p in rows.node_parts or []
                if p["granularity"] == FUNCTION and p["type_index"] == default)
    node, self_value, total = part["values"]
    paths = rows.node_paths  # both granularities' nodes and the root: each node's place by its id
    by_node = np.argsort(paths["node"])
    at = by_node[np.searchsorted(paths["node"][by_node], node)]
    names = dict(zip(rows.frame_names.column("frame_id").to_pylist(), rows.frame_names.column("name").to_pylist(),
                     strict=True))
    unique_ids, name_index = np.unique(paths["frame_id"][at], return_inverse=True)
    rows = np.random.default_rng(0).permutation(len(node))  # GROUP BY's order: none in particular
    return NodeColumns(node=node[rows], parent=paths["parent"][at][rows],
                       depth=paths["depth"][at][rows].astype(np.int64),
                       name=name_index.astype(np.int64).reshape(-1)[rows], total=total[rows] * copies,
                       self_value=self_value[rows] * copies,
                       names=[names.get(int(f), "root") for f in unique_ids.tolist()])


def heaviest_cut(c: NodeColumns, max_nodes: int) -> NodeColumns:
    """What the heaviest-nodes query returns: the first max_nodes by (-total, depth), any tied
    with the last, their ancestors (closed already for non-negative values), in no set order."""
    order = np.lexsort((c.depth, -c.total))
    last = c.total[order[max_nodes - 1]]
    rows = np.flatnonzero(c.total >= last)
    rows = rows[np.random.default_rng(1).permutation(len(rows))]
    used, name = np.unique(c.name[rows], return_inverse=True)
    return NodeColumns(c.node[rows], c.parent[rows], c.depth[rows], name.astype(np.int64).reshape(-1),
                       c.total[rows], c.self_value[rows], [c.names[i] for i in used.tolist()])


def heavy_path(c: NodeColumns, depth: int) -> list[str]:
    """The frames down to the heaviest node at `depth` (a focus a user would click)."""
    ordered, parent_pos, _ = flamegraph.preorder(c)
    pos = int(np.flatnonzero(c.depth[ordered] == depth)[0])
    path = []
    while parent_pos[pos] >= 0:
        path.append(c.names[c.name[ordered[pos]]])
        pos = int(parent_pos[pos])
    return path[::-1]


def module_at(ref: str) -> types.ModuleType:
    text = subprocess.run(["git", "show", f"{ref}:proftask/core/flamegraph.py"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as f:
        f.write(text)
    spec = importlib.util.spec_from_file_location(f"flamegraph_{ref}", f.name)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses looks its module up
    spec.loader.exec_module(mod)
    return mod


def head(truncated: int) -> dict:
    return {"taskId": "task", "sampleType": "cpu/nanoseconds", "sampleTypes": ["samples/count", "cpu/nanoseconds"],
            "instanceIds": [f"pod-{i}" for i in range(COPIES)], "truncated": truncated}


def response(mod, c: NodeColumns, max_nodes: int, focus: list[str] | None = None) -> bytes:
    """preorder (after focus_rows, as query_svc does) + render_elements + the body as
    query_svc's with_tree makes it (str)."""
    if focus:
        c = mod.focused(c, mod.focus_rows(c, focus))
        max_nodes = max_nodes + len(focus) if max_nodes else 0
    ordered, parent_pos, truncated = mod.preorder(c, max_nodes)
    elements = mod.render_elements(c, ordered, parent_pos)
    return (json.dumps(head(truncated))[:-1] + ', "tree": {"elements": ' + elements + "}}").encode()


def response_bytes(c: NodeColumns, max_nodes: int, focus: list[str] | None = None) -> bytes:
    """The same body from elements_buffer, never a str: what query_svc sends."""
    if focus:
        c = flamegraph.focused(c, flamegraph.focus_rows(c, focus))
        max_nodes = max_nodes + len(focus) if max_nodes else 0
    ordered, parent_pos, truncated = flamegraph.preorder(c, max_nodes)
    elements = flamegraph.elements_buffer(c, ordered, parent_pos)
    return b"".join((json.dumps(head(truncated))[:-1].encode(), b', "tree": {"elements": ', elements.data, b"}}"))


def best_of(repeat: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--ref", default="main", help="git ref whose flamegraph.py is 'before'")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--profile", type=pathlib.Path, default=LARGE)
    args = ap.parse_args()
    whole = merged_columns(args.profile, COPIES)
    cut = heaviest_cut(whole, FIRST_VIEW)
    print(f"{args.profile.name} ×{COPIES}: {len(whole.node):,} nodes; maxNodes={FIRST_VIEW} cut: {len(cut.node):,} "
          f"(best of {args.repeat}; timings are noisy on a shared machine)")
    before = module_at(args.ref)
    focus = heavy_path(whole, 6)
    cases = [("whole tree, maxNodes=0", whole, 0, None),
             (f"first view, maxNodes={FIRST_VIEW} (cut columns)", cut, FIRST_VIEW, None),
             (f"maxNodes={FIRST_VIEW} over the whole columns", whole, FIRST_VIEW, None),
             (f"focus {len(focus)} deep, maxNodes={FIRST_VIEW}", whole, FIRST_VIEW, focus)]
    for label, c, max_nodes, path in cases:
        t_old, old = best_of(args.repeat, lambda c=c, m=max_nodes, f=path: response(before, c, m, f))
        t_new, new = best_of(args.repeat, lambda c=c, m=max_nodes, f=path: response(flamegraph, c, m, f))
        t_bytes, raw = best_of(args.repeat, lambda c=c, m=max_nodes, f=path: response_bytes(c, m, f))
        same = "same bytes" if old == new == raw else "DIFFERENT BYTES"
        print(f"{label:46s} before ({args.ref}) {t_old:6.3f} s   after {t_new:6.3f} s   "
              f"after, bytes body {t_bytes:6.3f} s   {len(new) / 1e6:5.1f} MB  {same}")
        if same != "same bytes":
            sys.exit(1)


if __name__ == "__main__":
    main()
