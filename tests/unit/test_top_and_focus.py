"""The top table from the whole tree (pprof's flat and cum) and the focused subtree."""
import json
import random

import pytest

from proftask.core.flamegraph import UnknownFocus, focus_rows, focused, preorder, render_elements
from proftask.core.top import sort_rows, top_table
from tests.unit.test_flamegraph import columns_from_paths, decoded


def tree_of(stacks):
    paths = {(): [0, 0]}
    for stack, v in stacks:
        paths[()][0] += v
        for d in range(1, len(stack) + 1):
            paths.setdefault(stack[:d], [0, 0])[0] += v
        paths[stack][1] += v
    return {p: tuple(v) for p, v in paths.items()}


def pprof_top(stacks):
    """pprof's definition, per sample: flat to the leaf, cum once to every distinct frame."""
    flat, cum = {}, {}
    for stack, v in stacks:
        flat[stack[-1]] = flat.get(stack[-1], 0) + v
        for name in set(stack):
            cum[name] = cum.get(name, 0) + v
            flat.setdefault(name, 0)
    return {n: (flat[n], cum[n]) for n in cum}


def random_stacks(seed, names="abcdefg"):
    rnd = random.Random(seed)
    return [(tuple(rnd.choice(names) for _ in range(rnd.randint(1, 8))), rnd.randint(1, 50)) for _ in range(400)]


def test_top_equals_pprofs_flat_and_cum_on_recursive_trees():
    for seed in range(20):
        stacks = random_stacks(seed)
        rows = top_table(columns_from_paths(tree_of(stacks)))
        assert {r.name: (r.flat, r.cum) for r in rows} == pprof_top(stacks), seed


def test_recursion_counts_once_per_sample():
    stacks = [(("main", "walk", "walk", "walk"), 7), (("main", "walk"), 2), (("main",), 1), (("walk",), 4)]
    rows = top_table(columns_from_paths(tree_of(stacks)))
    assert [(r.name, r.flat, r.cum) for r in rows] == [("walk", 13, 13), ("main", 1, 10)]


def test_line_granularity_rows_are_lines_and_a_recursive_line_counts_once():
    stacks = [(("main:3", "walk:10", "walk:12", "walk:10"), 5), (("main:3", "walk:12"), 2), (("main:4",), 1)]
    rows = top_table(columns_from_paths(tree_of(stacks)))
    assert [(r.name, r.flat, r.cum) for r in rows] == [
        ("walk:10", 5, 5), ("walk:12", 2, 7), ("main:4", 1, 1), ("main:3", 0, 7)]


def test_order_is_pprofs_flat_then_name():
    stacks = [(("b", "x"), 5), (("a", "x"), 5), (("z",), 5), (("c",), 9)]
    rows = top_table(columns_from_paths(tree_of(stacks)))
    assert [r.name for r in rows] == ["x", "c", "z", "a", "b"]
    assert [r.name for r in sort_rows(rows, "cum")] == ["x", "c", "a", "b", "z"]


def test_an_empty_tree_has_no_rows():
    assert top_table(columns_from_paths({(): (0, 0)})) == []


def focused_tree(c, path, max_nodes=0):
    f = focused(c, focus_rows(c, path))
    ordered, parent_pos, dropped = preorder(f, max_nodes + len(path) if max_nodes else 0)
    elements = json.loads(render_elements(f, ordered, parent_pos))
    by_id, out = {}, []
    for e in elements:
        p = () if e["parentId"] == "-1" else by_id[e["parentId"]] + (e["codeSignature"],)
        by_id[e["id"]] = p
        out.append((p, e["total"], e["self"]))
    return out, dropped


def test_focus_keeps_the_ancestors_real_and_cuts_inside_the_subtree():
    for seed in range(10):
        paths = tree_of(random_stacks(seed, "abcd"))
        c = columns_from_paths(paths)
        full, _ = decoded(c)
        target = max((p for p in paths if len(p) == 3), key=lambda p: paths[p][0])
        subtree = [(p, t, s) for p, t, s in full if p[:3] == target]
        got, dropped = focused_tree(c, list(target))
        assert got[:3] == [((), *paths[()]), (target[:1], *paths[target[:1]]), (target[:2], *paths[target[:2]])]
        assert got[3:] == subtree and dropped == 0
        cut, dropped = focused_tree(c, list(target), max_nodes=5)
        assert len(cut) == 3 + min(5, len(subtree)) and dropped == max(0, len(subtree) - 5)
        assert cut[3][0] == target and all(n in subtree for n in cut[3:])


def test_focus_on_a_missing_frame_names_it():
    c = columns_from_paths(tree_of([(("main", "a"), 1)]))
    with pytest.raises(UnknownFocus, match='no frame "b" under "main"'):
        focus_rows(c, ["main", "b", "c"])
    with pytest.raises(UnknownFocus):
        focus_rows(c, ["a"])  # a is not a child of the root


def test_line_rows_sort_as_pprofs_function_file_line_text():
    stacks = [(("f190:246",), 5), (("f1903:1959",), 5), (("f190:1959",), 5)]
    rows = top_table(columns_from_paths(tree_of(stacks)), "line")
    assert [r.name for r in rows] == ["f190:1959", "f190:246", "f1903:1959"]
