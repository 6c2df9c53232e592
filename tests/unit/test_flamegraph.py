import json
import random

import numpy as np

from proftask.core.flamegraph import NodeColumns, preorder, render_elements


def columns_from_paths(paths: dict[tuple[str, ...], tuple[int, int]]) -> NodeColumns:
    """paths: node path → (total, self); the root is ()."""
    names = sorted({p[-1] for p in paths if p} | {"root"})
    h = {(): 0}
    for p in sorted(paths, key=len):
        if p:
            h[p] = hash(p) & 0xFFFFFFFFFFFFFFFF or 1
    rows = list(paths)
    return NodeColumns(
        node=np.array([h[p] for p in rows], dtype=np.uint64),
        parent=np.array([h[p[:-1]] if p else 0 for p in rows], dtype=np.uint64),
        depth=np.array([len(p) for p in rows], dtype=np.int64),
        name=np.array([names.index(p[-1] if p else "root") for p in rows], dtype=np.int64),
        total=np.array([paths[p][0] for p in rows], dtype=np.int64),
        self_value=np.array([paths[p][1] for p in rows], dtype=np.int64),
        names=names,
    )


def reference(paths):
    """Pre-order, children by (-total, name), as a list of (path, total, self)."""
    out = []

    def visit(p):
        out.append((p, *paths[p]))
        kids = [q for q in paths if len(q) == len(p) + 1 and q[:-1] == p]
        for q in sorted(kids, key=lambda q: (-paths[q][0], q[-1])):
            visit(q)

    visit(())
    return out


def decoded(c, max_nodes=0):
    ordered, parent_pos, dropped = preorder(c, max_nodes)
    elements = json.loads(render_elements(c, ordered, parent_pos))
    assert len(elements) == len(ordered)
    by_id, out = {}, []
    for e in elements:
        path = () if e["parentId"] == "-1" else by_id[e["parentId"]] + (e["codeSignature"],)
        by_id[e["id"]] = path
        out.append((path, e["total"], e["self"]))
    assert [e["id"] for e in elements] == [str(i) for i in range(len(elements))]
    return out, dropped


def random_tree(seed, negative=False):
    rnd = random.Random(seed)
    paths = {(): [0, 0]}
    for _ in range(300):
        stack = tuple(rnd.choice("abcdefg") for _ in range(rnd.randint(1, 6)))
        v = rnd.randint(-5 if negative else 1, 20) or 1
        paths[()][0] += v
        for d in range(1, len(stack) + 1):
            paths.setdefault(stack[:d], [0, 0])[0] += v
        paths[stack][1] += v
    return {p: tuple(v) for p, v in paths.items()}


def test_preorder_matches_the_reference_on_random_trees():
    for seed in range(20):
        paths = random_tree(seed, negative=seed % 4 == 0)
        got, dropped = decoded(columns_from_paths(paths))
        assert got == reference(paths) and dropped == 0


def test_ties_are_broken_by_name():
    paths = {(): (6, 0), ("b",): (3, 3), ("a",): (3, 3)}
    assert [p for p, *_ in decoded(columns_from_paths(paths))[0]] == [(), ("a",), ("b",)]


def test_max_nodes_keeps_the_heaviest_and_their_ancestors():
    for seed in range(10):
        paths = random_tree(seed, negative=seed % 2 == 1)
        for max_nodes in (1, 2, 10, 50):
            got, dropped = decoded(columns_from_paths(paths), max_nodes)
            kept = {p for p, *_ in got}
            assert len(kept) == min(max_nodes, len(paths)) or seed % 2 == 1
            assert len(got) + dropped == len(paths)
            assert all(p[:-1] in kept for p in kept if p)  # never an orphan
            if seed % 2 == 0:  # non-negative: exactly the heaviest
                heaviest = sorted(paths, key=lambda p: (-paths[p][0], len(p), p[-1] if p else ""))[:max_nodes]
                assert kept == set(heaviest)


def test_empty_tree_is_the_root_alone():
    got, dropped = decoded(NodeColumns.empty())
    assert got == [((), 0, 0)] and dropped == 0


def test_names_are_escaped_json():
    paths = {(): (1, 0), ('<script>"\\\n',): (1, 1)}
    got, _ = decoded(columns_from_paths(paths))
    assert got[1][0] == ('<script>"\\\n',)


def test_focus_keeps_the_path_and_the_whole_subtree_and_names_a_missing_frame():
    import pytest

    from proftask.core.flamegraph import UnknownFocus, focus_rows, focused

    paths = {(): (20, 0), ("main",): (20, 2), ("main", "a"): (10, 1), ("main", "a", "x"): (9, 9),
             ("main", "b"): (8, 2), ("main", "b", "x"): (6, 6)}
    c = columns_from_paths(paths)
    f = focused(c, focus_rows(c, ["main", "b"]))
    got, _ = decoded(f)
    assert [p for p, _, _ in got] == [(), ("main",), ("main", "b"), ("main", "b", "x")]
    assert got[1][1:] == (20, 2)  # ancestors keep their real values
    # maxNodes applies inside the subtree: the path is always kept
    ordered, _, dropped = preorder(f, 3 + 1)
    assert len(ordered) == 4 and dropped == 0
    with pytest.raises(UnknownFocus, match='no frame "zz" under "main > b"'):
        focus_rows(c, ["main", "b", "zz"])


def expected_text(c, ordered, parent_pos, extra=None):
    """The elements as json.dumps writes each one (compact, in field order)."""
    out = []
    for i, row in enumerate(ordered.tolist()):
        e = {"id": str(i), "parentId": str(int(parent_pos[i])),
             "codeSignature": "root" if i == 0 else c.names[c.name[row]],
             "total": int(c.total[row]), "self": int(c.self_value[row])}
        for key, values in (extra or {}).items():
            e[key] = values[i].item()
        out.append(json.dumps(e, separators=(",", ":"), ensure_ascii=False))
    return "[" + ",".join(out) + "]"


NAMES = ["main", 'q"uote', "back\\slash", "nul\x00byte", "tab\tnew\nline", "\x1f", "ünïcödé", "日本語",
         "emoji \U0001F525", "", "a" * 300, "</script>", "\u2028", "é" * 200 + "\n", "x" * 5000]


def test_elements_text_is_each_element_as_json_whatever_the_values(monkeypatch):
    import proftask.core.flamegraph as flamegraph
    from proftask.core.flamegraph import preorder, render_elements

    big = np.iinfo(np.int64)
    rnd = np.random.default_rng(3)
    for chunk, name_width, spliced in ((1 << 16, 256, 0.05), (7, 256, 0.05), (1, 256, 0.05), (5, 0, 1.0),
                                       (1 << 16, 12, 1.0), (3, 0, 0.0)):
        # one chunk, several, a chunk a row; names spliced in (every one when the width is 0);
        # the Python formatting when too many would be
        monkeypatch.setattr(flamegraph, "_CHUNK_ROWS", chunk)
        monkeypatch.setattr(flamegraph, "_NAME_WIDTH", name_width)
        monkeypatch.setattr(flamegraph, "_SPLICED_SHARE", spliced)
        for seed in range(8):
            c = columns_from_paths(random_tree(seed, negative=seed % 2 == 1))
            c.names = [NAMES[(i + 5 * seed) % len(NAMES)] for i in range(len(c.names))]  # all of them, over the seeds
            n = len(c.node)
            if seed == 3:  # the extremes of int64
                c.total[1:4] = [big.min, big.max, -1]
                c.self_value[1:4] = [big.max, big.min, 10**15]
            ordered, parent_pos, _ = preorder(c, 0 if seed < 4 else 9)
            assert render_elements(c, ordered, parent_pos) == expected_text(c, ordered, parent_pos)
            k = len(ordered)
            extra = {"baseTotal": rnd.integers(-10**12, 10**12, k), "count": rnd.integers(0, 5, k).astype(np.uint64),
                     "shareMin": np.round(rnd.random(k) / 3, 6), "flag": rnd.random(k) < 0.5,
                     "tiny": np.full(k, 1e-7), "none": np.zeros(k, dtype=np.int64)}
            want = expected_text(c, ordered, parent_pos, extra)
            assert render_elements(c, ordered, parent_pos, extra) == want
            assert flamegraph.elements_buffer(c, ordered, parent_pos, extra).tobytes() == want.encode()
            assert n >= k


def test_the_elements_formatted_in_parts_join_to_the_same_text(monkeypatch):
    """A whole tree's text formatted by several jobs (threads at once in query_svc) is the
    text formatted at once, however the elements fall into the parts."""
    import proftask.core.flamegraph as flamegraph

    big = np.iinfo(np.int64)
    for seed in range(6):
        c = columns_from_paths(random_tree(seed, negative=seed % 2 == 1))
        c.names = [NAMES[(i + 5 * seed) % len(NAMES)] for i in range(len(c.names))]
        if seed == 3:  # the extremes of int64
            c.total[1:4] = [big.min, big.max, -1]
            c.self_value[1:4] = [big.max, big.min, 10**15]
        for max_nodes in (0, 1, 9):
            ordered, parent_pos, _ = preorder(c, max_nodes)
            want = expected_text(c, ordered, parent_pos).encode()
            for parts in (1, 2, 3, len(ordered), len(ordered) + 4):
                jobs = flamegraph.elements_jobs(c, ordered, parent_pos, parts)
                got = b"".join(flamegraph.elements_joined([job() for job in jobs]))
                assert got == want
                assert flamegraph.elements_buffer(c, ordered, parent_pos).tobytes() == want
    # a tree whose text could pass Arrow's 2 GiB in a part: no jobs (elements_buffer formats it)
    c = columns_from_paths(random_tree(0))
    ordered, parent_pos, _ = preorder(c, 0)
    monkeypatch.setattr(flamegraph, "_PART_BYTES", 10)
    assert flamegraph.elements_jobs(c, ordered, parent_pos, 2) is None


def test_preorder_does_not_depend_on_the_row_order():
    from proftask.core.flamegraph import NodeColumns

    rnd = np.random.default_rng(5)
    for seed in range(10):
        paths = random_tree(seed, negative=seed % 3 == 0)
        c = columns_from_paths(paths)
        for _ in range(3):
            p = rnd.permutation(len(c.node))
            shuffled = NodeColumns(c.node[p], c.parent[p], c.depth[p], c.name[p], c.total[p], c.self_value[p],
                                   c.names)
            got, dropped = decoded(shuffled)
            assert got == reference(paths) and dropped == 0
            if seed % 3:  # non-negative: the same heaviest whatever the order
                assert decoded(shuffled, 25) == decoded(c, 25)


def test_focus_in_a_delta_profile_whose_ancestors_are_lighter_than_the_focus_keeps_the_path():
    """A delta profile: outside the focus a frame shrank (negative), so the root and the focus's
    ancestors weigh less than the focused subtree, whose values are all positive. maxNodes inside
    that focus keeps the root and the path on top, as with any other tree (it raised "a node's
    parent is missing": a 500 for ?focus=…&maxNodes=…)."""
    from proftask.core.flamegraph import focus_rows, focused

    paths = {(): (-3, 0), ("main",): (1, 0), ("main", "a"): (5, 0), ("main", "a", "x"): (3, 3),
             ("main", "a", "y"): (2, 2), ("main", "z"): (-4, -4), ("gc",): (-4, -4)}
    c = columns_from_paths(paths)
    for focus in (["main"], ["main", "a"]):
        f = focused(c, focus_rows(c, focus))
        ordered, parent_pos, dropped = preorder(f, len(focus) + 2)
        got = [(p, t, s) for p, t, s in decoded(f, len(focus) + 2)[0]]
        assert [p for p, _, _ in got][:len(focus) + 1] == [(), *[tuple(focus[:i + 1]) for i in range(len(focus))]]
        assert got[0][1:] == (-3, 0) and len(ordered) == len(focus) + 2 and dropped == len(f.node) - len(ordered)
        assert parent_pos[0] == -1 and all(0 <= parent_pos[i] < i for i in range(1, len(ordered)))


def test_elements_with_a_graphql_selection_hold_its_fields_in_its_order():
    """What GraphQL answers for a selection of PprofStackElement (aliases, a field twice,
    __typename): the values of render_elements under the selection's keys, in its order."""
    from proftask.core.flamegraph import ELEMENT_FIELDS, render_element_fields
    for seed in range(4):
        c = columns_from_paths(random_tree(seed, negative=seed % 2 == 1))
        c.names[0] = 'quote " back\\slash \u00e9 \U0001F600 nul \x00'
        ordered, parent_pos, _ = preorder(c)
        plain = json.loads(render_elements(c, ordered, parent_pos))
        same = render_element_fields(c, ordered, parent_pos, [(f, f) for f in ELEMENT_FIELDS], "PprofStackElement")
        assert json.loads(same) == plain
        selection = [("self", "self"), ("n", "id"), ("__typename", "__typename"), ("name", "codeSignature"),
                     ("up", "parentId"), ("t", "total"), ("t2", "total")]
        answered = json.loads(render_element_fields(c, ordered, parent_pos, selection, "PprofStackElement"))
        assert [list(e) for e in answered] == [[key for key, _ in selection]] * len(plain)
        assert answered == [{"self": e["self"], "n": e["id"], "__typename": "PprofStackElement",
                             "name": e["codeSignature"], "up": e["parentId"], "t": e["total"], "t2": e["total"]}
                            for e in plain]
        assert json.loads(render_element_fields(c, ordered, parent_pos, [("k", "__typename")], "T")) == \
            [{"k": "T"}] * len(plain)
        assert json.loads(render_element_fields(c, ordered, parent_pos, [])) == [{}] * len(plain)


def test_the_nodes_kept_at_a_tie_of_the_same_name_and_depth_do_not_depend_on_the_row_order():
    """ClickHouse returns a merge's rows in any order (another after a restart or a replay):
    of tied nodes of one name and depth under different parents, the cut keeps the same ones."""
    for sign in (1, -1):  # -1: a delta profile's negative values take the other path
        paths = {(): (6, 0), ("a",): (3, 1), ("b",): (3, 1)}
        for parent in ("a", "b"):
            paths[(parent, "x")] = (sign, sign)
            paths[(parent, "y")] = (2 - sign, 2 - sign) if sign > 0 else (3, 3)
        c = columns_from_paths(paths)
        kept = set()
        for seed in range(30):
            p = np.random.default_rng(seed).permutation(len(c.node))
            shuffled = NodeColumns(c.node[p], c.parent[p], c.depth[p], c.name[p], c.total[p], c.self_value[p],
                                   c.names)
            kept.add(frozenset(path for path, *_ in decoded(shuffled, 6)[0]))
        assert len(kept) == 1, kept
