import json

import numpy as np
import pytest

from proftask.core.diff import diff_columns, diff_elements_json
from proftask.core.spread import instance_spread
from tests.unit.test_flamegraph import columns_from_paths

BASE = {(): (100, 0), ("main",): (100, 0), ("main", "parse"): (60, 60), ("main", "gc"): (40, 40)}
# twice the samples, parse's share down from 60 % to 25 %, a new function
COMPARE = {(): (200, 0), ("main",): (200, 0), ("main", "parse"): (50, 50), ("main", "gc"): (80, 80),
           ("main", "compress"): (70, 70)}


def decoded_diff(base, compare, max_nodes=0):
    d = diff_columns(columns_from_paths(base), columns_from_paths(compare))
    text, n, dropped = diff_elements_json(d, max_nodes)
    by_id, out = {}, {}
    for e in json.loads(text):
        path = () if e["parentId"] == "-1" else by_id[e["parentId"]] + (e["codeSignature"],)
        by_id[e["id"]] = path
        out[path] = (e["baseTotal"], e["baseSelf"], e["compareTotal"], e["compareSelf"])
    return d, out, dropped


def test_diff_is_the_union_with_both_sides_sums():
    d, nodes, dropped = decoded_diff(BASE, COMPARE)
    assert dropped == 0 and (d.base_root, d.compare_root) == (100, 200)
    assert nodes[("main", "parse")] == (60, 60, 50, 50)
    assert nodes[("main", "compress")] == (0, 0, 70, 70)  # new in compare
    assert nodes[()] == (100, 0, 200, 0)


def test_diff_layout_weight_is_the_sum_of_shares_and_keeps_ancestors():
    d, nodes, _ = decoded_diff(BASE, COMPARE)
    weights = dict(zip(d.tree.node.tolist(), d.tree.total.tolist(), strict=False))
    root_weight = weights[0]
    assert root_weight == pytest.approx(2 * 10**12)
    # maxNodes keeps the heaviest by combined share, never a child without its parent
    _, kept, dropped = decoded_diff(BASE, COMPARE, max_nodes=3)
    assert dropped == 2 and set(kept) == {(), ("main",), ("main", "parse")}  # 0.6+0.25 beats 0.4+0.4


def test_diff_of_a_removed_function():
    _, nodes, _ = decoded_diff(COMPARE, BASE)
    assert nodes[("main", "compress")] == (70, 70, 0, 0)


def test_diff_with_an_empty_side():
    _, nodes, _ = decoded_diff({(): (0, 0)}, BASE)
    assert nodes[("main",)] == (0, 0, 100, 0)


def test_instance_spread_tells_an_outlier_from_a_fleet_wide_path():
    nodes = np.array([22, 0, 11], dtype=np.uint64)
    instances = [("pod-3", 50), ("pod-1", 100), ("pod-empty", 0), ("pod-2", 100)]
    # pod-1, pod-2, pod-3: 30 % everywhere; 22: 80 % of one pod; pod-empty has no value of the type
    rows = np.array([[1, 11, 30], [3, 11, 30], [0, 11, 15], [0, 22, 40], [2, 11, 0], [1, 33, 5]])
    s = instance_spread(nodes, rows[:, 0], rows[:, 1].astype(np.uint64), rows[:, 2], instances)
    assert s.instance_count == 3
    assert s.instances.tolist() == [1, 3, 3]
    assert s.share_min.tolist() == [0.0, 1.0, 0.3]
    assert s.share_max.tolist() == [0.8, 1.0, 0.3]


def test_instance_spread_without_instances():
    s = instance_spread(np.array([0], dtype=np.uint64), np.zeros(0), np.zeros(0, np.uint64), np.zeros(0), [])
    assert s.instance_count == 0 and s.instances.tolist() == [0]


def test_top_table_counts_recursion_once_and_sorts_as_pprof():
    from proftask.core.top import top_table
    from tests.unit.test_flamegraph import columns_from_paths

    c = columns_from_paths({
        (): (20, 0),
        ("main",): (20, 1),
        ("main", "walk"): (9, 2),
        ("main", "walk", "walk"): (7, 3),
        ("main", "walk", "walk", "leaf"): (4, 4),
        ("main", "leaf"): (6, 4),
        ("main", "leaf", "walk"): (2, 2),  # walk under leaf: its own outermost walk
        ("main", "zed"): (4, 4),
    })
    rows = [(r.name, r.flat, r.cum) for r in top_table(c)]
    # flat desc, then cum desc, then name: leaf (8, 10) and walk (7, 11) and zed (4, 4) ...
    assert rows == [("leaf", 8, 10), ("walk", 7, 11), ("zed", 4, 4), ("main", 1, 20)]


def test_top_table_of_an_empty_tree():
    from proftask.core.flamegraph import NodeColumns
    from proftask.core.top import top_table

    assert top_table(NodeColumns.empty()) == []
