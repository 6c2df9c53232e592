"""How a node's share spreads across the instances of a task: in how many it appears, and the
lowest and highest share of that instance's total it takes. A path that is 40 % of one pod and
absent from nine others is an outlier, not a fleet-wide hot path. Pure."""
from __future__ import annotations

import dataclasses

import numpy as np

from proftask.core.flamegraph import ROOT_NODE
from proftask.core.node_table import NodeShares, sorted_lookup


@dataclasses.dataclass
class Spread:
    instances: np.ndarray  # int: instances where the node has a non-zero total
    share_min: np.ndarray  # float: lowest share of an instance's total (0 where absent)
    share_max: np.ndarray  # float
    instance_count: int    # instances with any value of the sample type

    def taken(self, rows: np.ndarray) -> Spread:
        """The spread of the nodes at rows, in their order."""
        return Spread(self.instances[rows], self.share_min[rows], self.share_max[rows], self.instance_count)


def instance_spread(nodes: np.ndarray, row_instance: np.ndarray, row_node: np.ndarray, row_total: np.ndarray,
                    instance_totals: list[tuple[str, int]]) -> Spread:
    """nodes: the node ids to report on; a row per (instance, node) with that node's total in the
    instance (row_instance: a position in instance_totals, the instances with their totals).
    Instances with a zero total (no value of this sample type) are left out."""
    nodes = np.asarray(nodes, dtype=np.uint64)
    kept = sorted((name, k) for k, (name, total) in enumerate(instance_totals) if total != 0)
    if not kept:
        zeros = np.zeros(len(nodes))
        return Spread(zeros.astype(np.int64), zeros, zeros, 0)
    column = np.full(len(instance_totals), -1, dtype=np.int64)  # an instance's column, by name
    column[[k for _, k in kept]] = np.arange(len(kept))
    root_total = np.array([instance_totals[k][1] for _, k in kept], dtype=np.int64)
    order = np.argsort(nodes, kind="stable")
    at, present = sorted_lookup(nodes[order], np.asarray(row_node))
    row_instance = np.asarray(row_instance, dtype=np.int64)
    col = column[row_instance] if len(row_instance) else np.zeros(0, dtype=np.int64)
    found = (col >= 0) & present
    shares = np.zeros((len(nodes), len(kept)))
    shares[order[at[found]], col[found]] = np.asarray(row_total, dtype=np.int64)[found] / root_total[col[found]]
    shares[nodes == ROOT_NODE, :] = 1.0
    return Spread((shares != 0).sum(axis=1), shares.min(axis=1), shares.max(axis=1), len(kept))


def settled_spread(node: np.ndarray, shares: NodeShares) -> Spread:
    """The spread of summed profiles from their shares (aligned with node, the root among them):
    what instance_spread makes of the same profiles' node totals, one profile an instance. An
    instance without the node takes 0 into the lowest and highest share."""
    present = np.asarray(shares.present, dtype=np.int64)
    root = np.flatnonzero(np.asarray(node) == ROOT_NODE)
    count = int(present[root[0]]) if len(root) else 0  # every counted profile has its root
    if count == 0:
        zeros = np.zeros(len(present))
        return Spread(zeros.astype(np.int64), zeros, zeros, 0)
    everywhere = present == count
    low = np.where(present == 0, 0.0, np.where(everywhere, shares.low, np.minimum(shares.low, 0.0)))
    high = np.where(present == 0, 0.0, np.where(everywhere, shares.high, np.maximum(shares.high, 0.0)))
    return Spread(present, low, high, count)
