"""The top table, pprof's `-top`: per function (or function:line), flat = the values of the
samples whose stack ends in it, cum = the values of the samples whose stack holds it, counted
once per sample however often it recurs. Pure.

It is computed from the whole tree (every node, before `maxNodes` cuts it): a node's total is
the sum over the samples through it, so cum(f) is the sum of the totals of the nodes named f
that have no ancestor named f, and flat(f) the sum of their selfs. Columnar, since a merged
tree can have ~10^6 nodes."""
from __future__ import annotations

import dataclasses

import numpy as np

from proftask.core.flamegraph import NodeColumns, parent_rows_of


@dataclasses.dataclass(frozen=True)
class FunctionRow:
    name: str
    flat: int
    cum: int


def outermost_of_their_name(c: NodeColumns, parent_rows: np.ndarray) -> np.ndarray:
    """True for each non-root node with no ancestor of the same name. Walks every node's
    ancestors level by level, in numpy: the work is the sum of the nodes' depths."""
    outermost = c.depth > 0
    active = np.flatnonzero(c.depth > 1)  # nodes with an ancestor below the root
    ancestor = parent_rows[active]
    while len(active):
        same = c.name[ancestor] == c.name[active]
        outermost[active[same]] = False
        go_on = ~same & (c.depth[ancestor] > 1)
        active, ancestor = active[go_on], parent_rows[ancestor[go_on]]
    return outermost


def top_table(c: NodeColumns, granularity: str = "function") -> list[FunctionRow]:
    """Every function (or function:line) of the tree, in `go tool pprof -top` order (sort_rows)."""
    parent_rows = parent_rows_of(c)
    below_root = c.depth > 0
    flat = np.zeros(len(c.names), dtype=np.int64)
    cum = np.zeros(len(c.names), dtype=np.int64)
    np.add.at(flat, c.name[below_root], c.self_value[below_root])
    outer = outermost_of_their_name(c, parent_rows)
    np.add.at(cum, c.name[outer], c.total[outer])
    present = np.unique(c.name[below_root])
    rows = [FunctionRow(c.names[i], int(flat[i]), int(cum[i])) for i in present.tolist()]
    return sort_rows(rows, "flat", granularity)


def pprof_name_key(name: str, granularity: str = "function") -> str:
    """What pprof compares names by. At line granularity pprof prints `function file:line` and
    compares that text; `function:line` sorts the same way as `function line` (one file per
    function), not as written (`f1903:9` would pass before `f190:2`)."""
    if granularity == "line":
        function, sep, line = name.rpartition(":")
        if sep and line.lstrip("-").isdigit():
            return function + " " + line
    return name


def sort_rows(rows: list[FunctionRow], by: str = "flat", granularity: str = "function") -> list[FunctionRow]:
    """pprof's orders, as its graph package sorts: `flat` is `-top` (FlatNameOrder: flat
    descending, then NAME, then cum; checked against go tool pprof 1.26, where two functions of
    equal flat come by name whatever their cum), `cum` is `-top -cum` (CumNameOrder: cum
    descending, then name, then flat)."""
    if by == "cum":
        return sorted(rows, key=lambda r: (-abs(r.cum), pprof_name_key(r.name, granularity), -abs(r.flat)))
    return sorted(rows, key=lambda r: (-abs(r.flat), pprof_name_key(r.name, granularity), -abs(r.cum)))
