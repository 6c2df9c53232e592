"""How a node's share spreads across the instances of a task: in how many it appears, and the
lowest and highest share of that instance's total it takes. A path that is 40 % of one pod and
absent from nine others is an outlier, not a fleet-wide hot path. Pure."""
from __future__ import annotations

import dataclasses

import numpy as np

from proftask.core.flamegraph import ROOT_NODE


@dataclasses.dataclass
class Spread:
    instances: np.ndarray  # int: instances where the node has a non-zero total
    share_min: np.ndarray  # float: lowest share of an instance's total (0 where absent)
    share_max: np.ndarray  # float
    instance_count: int    # instances with any value of the sample type


def instance_spread(nodes: np.ndarray, node_totals: list[tuple[str, int, int]], roots: dict[str, int]) -> Spread:
    """nodes: the node ids to report on; node_totals: (instance, node, total) rows; roots: each
    instance's total. Instances with a zero total (no value of this sample type) are left out."""
    instances = sorted(i for i, total in roots.items() if total != 0)
    column = {i: k for k, i in enumerate(instances)}
    row = {int(n): k for k, n in enumerate(nodes.tolist())}
    shares = np.zeros((len(nodes), len(instances)))
    for instance, node, total in node_totals:
        if instance in column and node in row:
            shares[row[node], column[instance]] = total / roots[instance]
    if ROOT_NODE in row:
        shares[row[ROOT_NODE], :] = 1.0
    if not instances:
        zeros = np.zeros(len(nodes))
        return Spread(zeros.astype(np.int64), zeros, zeros, 0)
    return Spread((shares != 0).sum(axis=1), shares.min(axis=1), shares.max(axis=1), len(instances))
