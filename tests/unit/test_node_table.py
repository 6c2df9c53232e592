"""A profile folded at ingest: its node table is the tree of its stacks (paths from the root
with total and self) and its function table pprof's flat and cum; tables of several profiles
sum to the tables of their merge. Stacks whose value is zero make no node, as in pprof."""
import random

import numpy as np

from proftask.core.node_table import StackFold
from tests.unit.test_top_and_focus import pprof_top, tree_of

FRAME_IDS = {name: 1000 + i for i, name in enumerate("abcdefg")}


def _fold(stacks):
    offsets = np.cumsum([0] + [len(s) for s, _ in stacks])
    flat = np.array([FRAME_IDS[f] for s, _ in stacks for f in s], dtype=np.uint64)
    return StackFold(offsets, flat), np.array([v for _, v in stacks], dtype=np.int64)


def _paths(table):
    """node table → {path of names: (total, self)}, following parents up to the root."""
    by_node = {int(n): i for i, n in enumerate(table.node.tolist())}
    names = {v: k for k, v in FRAME_IDS.items()}
    out = {}
    for i in range(len(table.node)):
        path, j = [], i
        while table.depth[j] > 0:
            path.append(names[int(table.frame_id[j])])
            j = by_node[int(table.parent[j])]
        assert len(path) == table.depth[i]
        out[tuple(reversed(path))] = (int(table.total[i]), int(table.self_value[i]))
    return out


def random_stacks(seed, zero_share=0.0, negative=False):
    rnd = random.Random(seed)
    stacks = []
    for _ in range(300):
        stack = tuple(rnd.choice("abcdefg") for _ in range(rnd.randint(0, 8)))
        v = 0 if rnd.random() < zero_share else rnd.randint(-50 if negative else 1, 50)
        stacks.append((stack, v))
    return stacks


def _merged(stacks):
    out = {}
    for s, v in stacks:
        out[s] = out.get(s, 0) + v
    return list(out.items())


def test_the_node_table_is_the_tree_of_the_stacks_without_their_zero_valued_ones():
    for seed in range(15):
        stacks = _merged(random_stacks(seed, zero_share=0.3, negative=seed % 3 == 0))
        fold, values = _fold(stacks)
        want = tree_of([(s, v) for s, v in stacks if v != 0])
        want[()] = (sum(v for _, v in stacks), sum(v for s, v in stacks if not s))
        assert _paths(fold.nodes(values)) == want


def test_the_function_table_is_pprofs_flat_and_cum_counting_recursion_once():
    for seed in range(15):
        stacks = _merged(random_stacks(seed, zero_share=0.2))
        fold, values = _fold(stacks)
        table = fold.functions(values)
        names = {v: k for k, v in FRAME_IDS.items()}
        got = {names[int(f)]: (int(fl), int(c)) for f, fl, c in zip(table.frame_id, table.flat, table.cum, strict=False)}
        assert got == pprof_top([(s, v) for s, v in stacks if v != 0 and s])


def test_node_tables_of_two_profiles_sum_to_the_table_of_their_merge():
    a, b = _merged(random_stacks(1)), _merged(random_stacks(2))
    sums = {}
    for stacks in (a, b):
        fold, values = _fold(stacks)
        for path, (total, self_value) in _paths(fold.nodes(values)).items():
            t, s = sums.get(path, (0, 0))
            sums[path] = (t + total, s + self_value)
    fold, values = _fold(_merged(a + b))
    assert _paths(fold.nodes(values)) == sums


def test_one_deep_stack_beside_a_million_short_ones_folds_in_linear_time():
    # The Python fold (a profile the Go fold declines) hashed depth by depth over every stack:
    # 20,000 deep × 1M stacks was ~7 s, 2M deep × 2M stacks (within the frame bound) hours.
    import time
    deep, short = 20_000, 1_000_000
    lengths = np.r_[deep, np.ones(short, dtype=np.int64)]
    offsets = np.r_[0, np.cumsum(lengths)]
    frames = np.r_[np.full(deep, 7), np.arange(short) % 1000].astype(np.uint64)
    started = time.perf_counter()
    fold = StackFold(offsets, frames)
    assert time.perf_counter() - started < 3  # ~0.6 s; the depth-by-depth loop took ~7 s
    table = fold.nodes(np.ones(len(lengths), dtype=np.int64))
    assert len(table.node) == 1 + deep + 999  # the root, the deep path, and the short stacks' frames but 7
    assert int(table.depth.max()) == deep
