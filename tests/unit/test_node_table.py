"""A profile folded at ingest: its node table is the tree of its stacks (paths from the root
with total and self) and its function table pprof's flat and cum; tables of several profiles
sum to the tables of their merge. Stacks whose value is zero make no node, as in pprof."""
import random

import numpy as np

from proftask.core.node_table import NodePlaces, NodeSums, NodeTable, StackFold, add_node_values, heaviest_first
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


def _summed(tables, shuffle_seed=None):
    """The tables added up as the processor sums a task's profiles, each with its places."""
    sums = NodeSums.empty()
    for t in tables:
        order = np.arange(len(t.node))
        if shuffle_seed is not None:  # nodes in any order
            random.Random(shuffle_seed).shuffle(order)
        sums = add_node_values(sums, t.node[order], t.self_value[order], t.total[order],
                               NodePlaces(t.parent[order], t.depth[order].astype(np.uint32), t.frame_id[order]))
    return sums


def _as_table(sums):
    p = sums.places
    return NodeTable(sums.node, p.parent, p.depth.astype(np.int64), p.frame_id, sums.self_value, sums.total)


def test_placed_sums_of_two_profiles_are_the_tree_of_their_merge_whatever_the_order():
    for seed in range(6):
        a, b = _merged(random_stacks(10 + seed)), _merged(random_stacks(20 + seed))
        tables = [_fold(s)[0].nodes(_fold(s)[1]) for s in (a, b)]
        merged_fold, merged_values = _fold(_merged(a + b))
        want = _paths(merged_fold.nodes(merged_values))
        assert _paths(_as_table(_summed(tables))) == want
        assert _paths(_as_table(_summed(reversed(tables), shuffle_seed=seed))) == want


def test_a_profile_without_places_leaves_the_sums_without_them():
    table = _fold(_merged(random_stacks(3)))[0].nodes(_fold(_merged(random_stacks(3)))[1])
    sums = add_node_values(_summed([table]), table.node, table.self_value, table.total)
    assert sums.places is None and int(sums.total[0]) == 2 * int(table.total[0])
    # and stay so: a placed profile after it cannot place the nodes only the other one had
    sums = add_node_values(sums, *(x for x in (table.node, table.self_value, table.total)),
                           NodePlaces(table.parent, table.depth.astype(np.uint32), table.frame_id))
    assert sums.places is None


def test_every_prefix_of_the_heaviest_first_order_holds_its_nodes_ancestors():
    # what the first view takes from a task's row: the heaviest k nodes and their ancestors, which
    # ORDER BY total DESC LIMIT k WITH TIES gives, are the row's first k and those tied with the k-th
    for seed in range(6):
        sums = _summed([_fold(s)[0].nodes(_fold(s)[1]) for s in (_merged(random_stacks(30 + seed)),)])
        order = heaviest_first(sums)
        node, parent, total = sums.node[order], sums.places.parent[order], sums.total[order]
        position = {int(n): i for i, n in enumerate(node.tolist())}
        for i in range(1, len(node)):
            if int(node[i]) != 0:
                assert position[int(parent[i])] < i  # the root's children have parent 0: the root
        for k in (1, 2, 5, 17, len(node)):
            kth = total[min(k, len(node)) - 1]
            kept = int((total >= kth).sum())
            assert set(node[:kept].tolist()) == {int(n) for n, t in zip(sums.node, sums.total, strict=True) if t >= kth}


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


def test_shares_summed_as_profiles_are_added_give_the_spread_each_node_looked_up_gives():
    """A task's merged tree keeps each node's spread across its instances (m0009): added one
    profile at a time, in any order, the same instances, lowest and highest share as looking
    each node up in every profile (instance_spread) — with a node some lack, negative values,
    an instance with nothing of the sample type, and one holding the very nodes of another."""
    from proftask.core.spread import instance_spread, settled_spread

    for seed in range(8):
        stacks = [_merged(random_stacks(40 + seed + k, zero_share=0.2, negative=seed % 2 == 1)) for k in range(3)]
        # the very nodes of the first with other shares, added next
        stacks.insert(1, [(s, 3 * v + (v > 0) - (v < 0)) for s, v in stacks[0]])
        stacks.append([(("a",), 0)])             # nothing of the sample type: left out
        tables = [_fold(s)[0].nodes(_fold(s)[1]) for s in stacks]
        roots = [int(t.total[t.node == 0][0]) for t in tables]
        for order in (range(len(tables)), reversed(range(len(tables)))):
            sums = NodeSums.empty()
            for k in order:
                t = tables[k]
                sums = add_node_values(sums, t.node, t.self_value, t.total,
                                       NodePlaces(t.parent, t.depth.astype(np.uint32), t.frame_id), roots[k])
            got = settled_spread(sums.node, sums.shares)
            rows = [(k, n, v) for k, t in enumerate(tables)
                    for n, v in zip(t.node.tolist(), t.total.tolist(), strict=True) if n != 0]
            want = instance_spread(sums.node, np.array([k for k, _, _ in rows]),
                                   np.array([n for _, n, _ in rows], np.uint64), np.array([v for _, _, v in rows]),
                                   [(f"pod-{k}", r) for k, r in enumerate(roots)])
            assert got.instance_count == want.instance_count == sum(r != 0 for r in roots)
            assert got.instances.tolist() == want.instances.tolist()
            assert got.share_min.tolist() == want.share_min.tolist()
            assert got.share_max.tolist() == want.share_max.tolist()
