"""The top table: per function (or function:line), flat and cum, pprof's rules. Pure.

flat(f) = the self values of every node named f; cum(f) = the totals of the nodes named f that
have no ancestor named f, so a recursive function counts once per sample (pprof's cum). Computed
from the whole tree (never a maxNodes cut), so it equals `go tool pprof -top`.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

import numpy as np

from proftask.core.flamegraph import NodeColumns, preorder_spans


@dataclasses.dataclass
class FunctionRow:
    name: str
    self_value: int = 0
    total: int = 0


def top_rows(c: NodeColumns, granularity: str = "function") -> list[FunctionRow]:
    """Every function (or function:line) of the tree with its flat and cum, in `go tool pprof
    -top` order (sort_rows). Vectorised: a 425k-node tree takes well under a second."""
    if len(c.node) <= 1:
        return []
    names, key_of_index = np.unique(np.asarray(c.names, dtype=object), return_inverse=True)
    key = key_of_index.astype(np.int64)[c.name]  # per row: index into `names` (equal strings merged)
    pre, size = preorder_spans(c)
    rows = np.flatnonzero(c.depth > 0)
    key, pre_r, end_r = key[rows], pre[rows], pre[rows] + size[rows]
    flat = np.zeros(len(names), dtype=np.int64)
    np.add.at(flat, key, c.self_value[rows])
    # A node is outermost for its name unless an earlier (pre-order) node of that name spans it.
    # Subtrees nest or are disjoint, so "spans it" = the running maximum of the ends of the earlier
    # nodes of the same name passes its position. Names are kept apart by an offset per name.
    order = np.lexsort((pre_r, key))
    span = int(end_r.max()) + 1
    group = key[order]
    running = np.maximum.accumulate(group * span + end_r[order])
    first = np.r_[True, group[1:] != group[:-1]]
    before = np.r_[0, running[:-1]] - group * span
    outermost = np.empty(len(order), dtype=bool)
    outermost[order] = first | (before <= pre_r[order])
    cum = np.zeros(len(names), dtype=np.int64)
    np.add.at(cum, key[outermost], c.total[rows][outermost])
    present = np.zeros(len(names), dtype=bool)
    present[key] = True
    return sort_rows([FunctionRow(str(names[i]), int(flat[i]), int(cum[i])) for i in np.flatnonzero(present)],
                     granularity=granularity)


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
    """pprof's orders: `flat` (-top, FlatNameOrder: flat descending, then name) or `cum`
    (-top -cum, CumNameOrder: cum descending, then name)."""
    if by == "cum":
        return sorted(rows, key=lambda r: (-abs(r.total), pprof_name_key(r.name, granularity), -abs(r.self_value)))
    return sorted(rows, key=lambda r: (-abs(r.self_value), pprof_name_key(r.name, granularity), -abs(r.total)))


def top_json(rows: list[FunctionRow], limit: int = 0) -> list[dict]:
    return [{"name": r.name, "flat": r.self_value, "cum": r.total} for r in (rows[:limit] if limit else rows)]


def top_functions(elements: Iterable[dict]) -> list[FunctionRow]:
    """The same table from analysis elements ([{id, parentId, codeSignature, total, self}] in
    pre-order); exact only for an uncut tree (the web UI's topFunctions mirrors it)."""
    rows: dict[str, FunctionRow] = {}
    path: list[tuple[str, str]] = []  # (id, name) of the current node's ancestors
    on_path: dict[str, int] = {}
    for e in elements:
        if e["parentId"] == "-1":
            continue  # the root
        while path and path[-1][0] != e["parentId"]:
            on_path[path.pop()[1]] -= 1
        name = e["codeSignature"]
        row = rows.setdefault(name, FunctionRow(name))
        row.self_value += e["self"]
        if not on_path.get(name):
            row.total += e["total"]
        on_path[name] = on_path.get(name, 0) + 1
        path.append((e["id"], name))
    return list(rows.values())
