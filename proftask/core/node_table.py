"""Folding a profile's stacks, once, into what analyses need (pure, numpy):

- its node table: per node (a path of frames from the root, named by a hash of that path) the
  parent's hash, the frame, the depth, self and total. A merged tree's node values are the sums
  of the profiles' node values, so a merge is one GROUP BY node;
- its function table: per frame, flat (samples ending in it) and cum (samples holding it,
  counted once per sample however often it recurs), pprof's `-top` columns, which sum across
  profiles too.

As the query-time fold did, a stack only makes nodes (and functions) where its value for the
sample type is not zero, as in pprof; the root (node 0, depth 0) is always there.
"""
from __future__ import annotations

import dataclasses

import numpy as np

ROOT = np.uint64(0)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a bijection of uint64 that spreads every input bit."""
    x = x ^ (x >> np.uint64(30))
    x = x * _M1
    x = x ^ (x >> np.uint64(27))
    x = x * _M2
    return x ^ (x >> np.uint64(31))


def path_hash(parent: np.ndarray, frame: np.ndarray) -> np.ndarray:
    """The hash of a path from its parent path's hash and its last frame id (uint64 arrays)."""
    with np.errstate(over="ignore"):
        return _mix(_mix(parent + _GOLDEN) ^ frame)


@dataclasses.dataclass
class NodeTable:
    """One sample type's nodes of one profile, the root (node 0, depth 0) first."""
    node: np.ndarray      # uint64
    parent: np.ndarray    # uint64 (0 for the root and its children)
    depth: np.ndarray     # int64
    frame_id: np.ndarray  # uint64 (0 for the root)
    self_value: np.ndarray  # int64
    total: np.ndarray     # int64


@dataclasses.dataclass
class FunctionTable:
    """One sample type's functions (frames) of one profile, each present in some stack."""
    frame_id: np.ndarray  # uint64
    flat: np.ndarray      # int64
    cum: np.ndarray       # int64


def _group_sums(weights: np.ndarray, order: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Exact int64 sums of weights per group of the sorted order (groups begin at starts)."""
    if len(order) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.add.reduceat(weights[order], starts).astype(np.int64)


class StackFold:
    """The sample-type-independent part of folding a profile's stacks at one granularity."""

    def __init__(self, offsets: np.ndarray, frames: np.ndarray):
        offsets = np.asarray(offsets, dtype=np.int64)
        frames = np.asarray(frames, dtype=np.uint64)
        n = len(offsets) - 1
        lengths = np.diff(offsets)
        self.n_stacks = n
        self.lengths = lengths
        self.stack_of = np.repeat(np.arange(n, dtype=np.int64), lengths)
        position = np.arange(len(frames), dtype=np.int64) - offsets[:-1][self.stack_of]
        hashes = np.zeros(len(frames), dtype=np.uint64)
        parents = np.zeros(len(frames), dtype=np.uint64)
        max_len = int(lengths.max()) if n else 0
        # the stacks longest first: those deeper than d are a prefix, so depth d costs the stacks
        # that reach it, not all of them (one deep stack beside many short ones was quadratic)
        by_length = np.argsort(-lengths, kind="stable")
        deepest_starts = offsets[:-1][by_length]
        reaching = n - np.searchsorted(np.sort(lengths), np.arange(max_len), side="right")  # stacks deeper than d
        for d in range(max_len):  # every stack's d-th frame at once
            idx = deepest_starts[:reaching[d]] + d
            prev = hashes[idx - 1] if d else np.zeros(len(idx), dtype=np.uint64)
            parents[idx] = prev
            hashes[idx] = path_hash(prev, frames[idx])
        self.is_leaf = position == lengths[self.stack_of] - 1
        # nodes: positions grouped by their path hash
        self.node_order = np.argsort(hashes, kind="stable")
        sorted_hashes = hashes[self.node_order]
        self.node_starts = np.flatnonzero(np.r_[True, sorted_hashes[1:] != sorted_hashes[:-1]]) if len(frames) \
            else np.zeros(0, dtype=np.int64)
        first = self.node_order[self.node_starts]
        self.node = sorted_hashes[self.node_starts]
        self.parent = parents[first]
        self.depth = position[first] + 1
        self.frame_id = frames[first]
        # functions: (frame, stack) pairs, each once however often the frame recurs in the stack
        pair_order = np.lexsort((self.stack_of, frames))
        f_sorted, s_sorted = frames[pair_order], self.stack_of[pair_order]
        distinct = np.r_[True, (f_sorted[1:] != f_sorted[:-1]) | (s_sorted[1:] != s_sorted[:-1])] if len(frames) \
            else np.zeros(0, dtype=bool)
        self.pair_frame, self.pair_stack = f_sorted[distinct], s_sorted[distinct]
        self.fn_starts = np.flatnonzero(np.r_[True, self.pair_frame[1:] != self.pair_frame[:-1]]) \
            if len(self.pair_frame) else np.zeros(0, dtype=np.int64)
        self.fn_frame = self.pair_frame[self.fn_starts]
        leaf_order = np.argsort(frames, kind="stable")
        self._frames = frames
        self._leaf_order = leaf_order

    def nodes(self, values: np.ndarray) -> NodeTable:
        """values: int64 [n_stacks], one sample type."""
        values = np.asarray(values, dtype=np.int64)
        nonzero = values != 0
        v = values[self.stack_of]
        present = _group_sums(nonzero[self.stack_of].astype(np.int64), self.node_order, self.node_starts) > 0
        total = _group_sums(v, self.node_order, self.node_starts)
        self_value = _group_sums(np.where(self.is_leaf, v, 0), self.node_order, self.node_starts)
        root_total = int(values.sum())
        root_self = int(values[self.lengths == 0].sum())
        one = np.ones(1, dtype=np.int64)
        return NodeTable(
            node=np.r_[np.zeros(1, np.uint64), self.node[present]],
            parent=np.r_[np.zeros(1, np.uint64), self.parent[present]],
            depth=np.r_[np.zeros(1, np.int64), self.depth[present]],
            frame_id=np.r_[np.zeros(1, np.uint64), self.frame_id[present]],
            self_value=np.r_[one * root_self, self_value[present]],
            total=np.r_[one * root_total, total[present]],
        )

    def functions(self, values: np.ndarray) -> FunctionTable:
        values = np.asarray(values, dtype=np.int64)
        nonzero = (values != 0).astype(np.int64)
        pair_order = np.arange(len(self.pair_stack))
        cum = _group_sums(values[self.pair_stack], pair_order, self.fn_starts)
        present = _group_sums(nonzero[self.pair_stack], pair_order, self.fn_starts) > 0
        leaf_v = np.where(self.is_leaf, values[self.stack_of], 0)
        # flat per frame, aligned with fn_frame (both sorted by frame id)
        flat_all = _group_sums(leaf_v, self._leaf_order, self.fn_starts_in_positions())
        return FunctionTable(self.fn_frame[present], flat_all[present], cum[present])

    def fn_starts_in_positions(self) -> np.ndarray:
        sorted_frames = self._frames[self._leaf_order]
        return np.flatnonzero(np.r_[True, sorted_frames[1:] != sorted_frames[:-1]]) if len(sorted_frames) \
            else np.zeros(0, dtype=np.int64)


def sorted_lookup(sorted_keys: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each key is in sorted_keys (ascending) and whether it is there: `at` is an index of
    sorted_keys (clipped to its last; 0 when it is empty), `found` where sorted_keys[at] is the key."""
    if len(sorted_keys) == 0:
        return np.zeros(len(keys), np.int64), np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
    return at, sorted_keys[at] == keys


@dataclasses.dataclass
class NodePlaces:
    """Where nodes are in the tree, aligned with the nodes they place: the root's are 0s."""
    parent: np.ndarray    # uint64
    depth: np.ndarray     # uint32
    frame_id: np.ndarray  # uint64

    @classmethod
    def empty(cls) -> NodePlaces:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.uint32), np.zeros(0, np.uint64))

    def taken(self, order: np.ndarray) -> NodePlaces:
        return NodePlaces(self.parent[order], self.depth[order], self.frame_id[order])


@dataclasses.dataclass
class NodeShares:
    """How the summed profiles share each node, aligned with the nodes: in how many of them
    (those with a non-zero root total) the node's total is not zero, and the lowest and highest
    of its total over the profile's root total among those (+inf and -inf where none).
    proftask.core.spread.settled_spread makes the instance spread of them."""
    present: np.ndarray  # int64
    low: np.ndarray      # float64
    high: np.ndarray     # float64

    @classmethod
    def empty(cls) -> NodeShares:
        return cls(np.zeros(0, np.int64), np.zeros(0, np.float64), np.zeros(0, np.float64))

    @classmethod
    def of(cls, total: np.ndarray, root_total: int) -> NodeShares:
        """One profile's: its node totals over its root total (none where either is zero)."""
        if root_total == 0:  # left out, as instance_spread leaves out an instance with a zero total
            return cls(np.zeros(len(total), np.int64), np.full(len(total), np.inf), np.full(len(total), -np.inf))
        share = total / root_total  # as instance_spread divides
        if total.all():  # every node counted (so with no negative value: a node a stack made has a total)
            return cls(np.ones(len(total), np.int64), share, share)
        counted = total != 0
        return cls(counted.astype(np.int64), np.where(counted, share, np.inf), np.where(counted, share, -np.inf))


@dataclasses.dataclass
class NodeSums:
    """Node values summed over profiles, sorted by node: what a merged tree is made of; with
    the nodes' places when every profile summed gave them, and their shares when every profile
    summed gave its root total."""
    node: np.ndarray        # uint64, sorted, distinct
    self_value: np.ndarray  # int64
    total: np.ndarray       # int64
    places: NodePlaces | None = None
    shares: NodeShares | None = None

    @classmethod
    def empty(cls) -> NodeSums:
        return cls(np.zeros(0, np.uint64), np.zeros(0, np.int64), np.zeros(0, np.int64), NodePlaces.empty(),
                   NodeShares.empty())

    def __len__(self) -> int:
        return len(self.node)


def add_node_values(sums: NodeSums, node: np.ndarray, self_value: np.ndarray, total: np.ndarray,
                    places: NodePlaces | None = None, root_total: int | None = None) -> NodeSums:
    """The sums with one more profile's node values (its nodes distinct, in any order), and
    their places (aligned with node) if the sums have theirs, and their shares of root_total
    (the profile's total) if the sums have theirs. A node the sums lack is added: a merged tree
    holds every node of every profile, as a GROUP BY node over their values does. Exact in
    int64, and the same sums whatever the order of adding."""
    node = np.asarray(node, dtype=np.uint64)
    self_value, total = np.asarray(self_value, np.int64), np.asarray(total, np.int64)
    places = places if sums.places is not None else None
    if len(node) > 1 and not (node[1:] > node[:-1]).all():
        # sorted, the lookups below walk both arrays in order (~10x faster than random probes)
        order = np.argsort(node, kind="stable")
        node, self_value, total = node[order], self_value[order], total[order]
        places = places.taken(order) if places is not None else None
    shares = NodeShares.of(total, root_total) if sums.shares is not None and root_total is not None else None
    if len(node) == len(sums.node) and np.array_equal(node, sums.node):
        # the very nodes of the sums (a fleet of one build, one workload): added in place of
        # looked up (~3x faster for a large tree)
        shared = None if shares is None or sums.shares is None else NodeShares(
            sums.shares.present + shares.present, np.minimum(sums.shares.low, shares.low),
            np.maximum(sums.shares.high, shares.high))
        return NodeSums(sums.node, sums.self_value + self_value, sums.total + total,
                        sums.places if places is not None else None, shared)
    at = np.searchsorted(sums.node, node)
    known = at < len(sums.node)
    known[known] = sums.node[at[known]] == node[known]
    self_sum, total_sum = sums.self_value.copy(), sums.total.copy()
    # a profile's nodes are distinct, so no position is added to twice
    self_sum[at[known]] += self_value[known]
    total_sum[at[known]] += total[known]
    shared = None
    if shares is not None:  # and so sums.shares
        assert sums.shares is not None
        shared = NodeShares(sums.shares.present.copy(), sums.shares.low.copy(), sums.shares.high.copy())
        to = at[known]
        shared.present[to] += shares.present[known]
        shared.low[to] = np.minimum(shared.low[to], shares.low[known])
        shared.high[to] = np.maximum(shared.high[to], shares.high[known])
    new = ~known
    if not new.any():
        return NodeSums(sums.node, self_sum, total_sum, sums.places if places is not None else None, shared)
    into = at[new]
    merged_places = None
    if places is not None:  # and so sums.places
        assert sums.places is not None
        merged_places = NodePlaces(*(np.insert(old, into, added[new]) for old, added in (
            (sums.places.parent, places.parent), (sums.places.depth, places.depth),
            (sums.places.frame_id, places.frame_id))))
    if shared is not None:
        assert shares is not None
        shared = NodeShares(*(np.insert(old, into, added[new]) for old, added in (
            (shared.present, shares.present), (shared.low, shares.low), (shared.high, shares.high))))
    return NodeSums(np.insert(sums.node, into, node[new]), np.insert(self_sum, into, self_value[new]),
                    np.insert(total_sum, into, total[new]), merged_places, shared)


def heaviest_first(sums: NodeSums) -> np.ndarray:
    """The order of the nodes by total, heaviest first, ties by depth (then node): with no
    negative value a node is never lighter than its descendants, so every prefix of this order
    holds the ancestors of its nodes, and the heaviest k nodes with their ancestors are its
    first k (and those tied with the k-th)."""
    assert sums.places is not None, "the order needs the nodes' depths"
    return np.lexsort((sums.node, sums.places.depth, ~sums.total))  # ~total: descending, without overflow
