"""Comparing two flame graphs (two tasks, or two instance sets): the union tree of both, each
node with its base and compare sums, laid out by its share of each root so that a profile of
twice the samples does not look like a regression. Pure.

Nodes are matched by path hash: frame ids are content hashes of the frame names, so the same
call path has the same node id in any task of a tenant.
"""
from __future__ import annotations

import dataclasses
import numpy as np

from proftask.core.flamegraph import NodeColumns, preorder, render_elements

# Layout weights are shares of each root (0..1 each, 0..2 summed) scaled to integers, so the
# tree code (ordering, ancestor-closed maxNodes) works on them unchanged. Flooring keeps a
# parent's weight at least its child's.
WEIGHT_SCALE = 10**12


@dataclasses.dataclass
class DiffColumns:
    tree: NodeColumns  # the union; total/self are the layout weights
    base_total: np.ndarray
    base_self: np.ndarray
    compare_total: np.ndarray
    compare_self: np.ndarray

    @property
    def base_root(self) -> int:
        return int(self.base_total[self.tree.depth == 0].sum())

    @property
    def compare_root(self) -> int:
        return int(self.compare_total[self.tree.depth == 0].sum())


def _share(values: np.ndarray, root: int) -> np.ndarray:
    return values / root if root else np.zeros(len(values))


def diff_columns(base: NodeColumns, compare: NodeColumns) -> DiffColumns:
    names = sorted(set(base.names) | set(compare.names))
    index = {n: i for i, n in enumerate(names)}
    both = [base, compare]
    node = np.concatenate([c.node for c in both])
    union, first, inverse = np.unique(node, return_index=True, return_inverse=True)
    n = len(union)
    parent = np.concatenate([c.parent for c in both])[first]
    depth = np.concatenate([c.depth for c in both])[first]
    name = np.concatenate([np.asarray([index[c.names[i]] for i in c.name.tolist()], dtype=np.int64)
                           for c in both])[first]
    sums = []
    for k, c in enumerate(both):
        rows = inverse[:len(base.node)] if k == 0 else inverse[len(base.node):]
        total, self_value = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=np.int64)
        total[rows], self_value[rows] = c.total, c.self_value
        sums.append((total, self_value))
    (bt, bs), (ct, cs) = sums
    root = depth == 0
    b_root, c_root = int(bt[root].sum()), int(ct[root].sum())
    weight = np.floor((_share(bt, b_root) + _share(ct, c_root)) * WEIGHT_SCALE).astype(np.int64)
    weight_self = np.floor((_share(bs, b_root) + _share(cs, c_root)) * WEIGHT_SCALE).astype(np.int64)
    tree = NodeColumns(node=union, parent=parent, depth=depth, name=name, total=weight,
                       self_value=weight_self, names=names)
    return DiffColumns(tree, bt, bs, ct, cs)


def diff_elements_json(d: DiffColumns, max_nodes: int = 0) -> tuple[str, int, int]:
    """Elements in pre-order, heaviest (by combined share) first, each with baseTotal, baseSelf,
    compareTotal, compareSelf (total/self are the layout weights); the number kept and dropped."""
    ordered, parent_pos, dropped = preorder(d.tree, max_nodes)
    extra = {"baseTotal": d.base_total[ordered], "baseSelf": d.base_self[ordered],
             "compareTotal": d.compare_total[ordered], "compareSelf": d.compare_self[ordered]}
    return render_elements(d.tree, ordered, parent_pos, extra), len(ordered), dropped
