"""The flame-graph tree from per-node sums: pre-order elements, children by descending total
(then name), and `maxNodes` truncation that never keeps a node without its parent. Pure.

Columnar (numpy): a merged tree can have ~10^6 nodes, too many for per-node Python objects.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from proftask.core.echo import echo

ROOT_NODE = 0


@dataclasses.dataclass
class NodeColumns:
    """One entry per node, the root included (depth 0, node ROOT_NODE)."""
    node: np.ndarray    # uint64 path hash
    parent: np.ndarray  # uint64 path hash of the parent (any value for the root)
    depth: np.ndarray   # int64, 0 for the root
    name: np.ndarray    # int64 index into names
    total: np.ndarray   # int64
    self_value: np.ndarray  # int64
    names: list[str]

    @classmethod
    def empty(cls) -> NodeColumns:
        z = np.zeros(1, dtype=np.int64)
        return cls(np.zeros(1, np.uint64), np.zeros(1, np.uint64), z.copy(), z.copy(), z.copy(), z.copy(), ["root"])


def parent_rows_of(c: NodeColumns) -> np.ndarray:
    """Each node's parent as a row index (-1 for the root)."""
    order = np.argsort(c.node)
    pos = np.searchsorted(c.node[order], c.parent)  # on the sorted copy: `sorter=` is ~20x slower
    parent_rows = order[np.minimum(pos, len(order) - 1)]
    root = c.depth == 0
    parent_rows[root] = -1
    if not np.array_equal(c.node[parent_rows[~root]], c.parent[~root]):
        raise ValueError("a node's parent is missing from the node sums")
    return parent_rows


def _name_ranks(names: list[str]) -> np.ndarray:
    ranks = np.empty(len(names), dtype=np.int64)
    ranks[sorted(range(len(names)), key=names.__getitem__)] = np.arange(len(names))
    return ranks


def _kept_rows(c: NodeColumns, parent_rows: np.ndarray, name_rank: np.ndarray, max_nodes: int) -> np.ndarray:
    """Heaviest first, shallower first on ties; a node only when its parent is kept."""
    order = np.lexsort((name_rank[c.name], c.depth, -c.total))  # the root has the largest total, depth 0
    keep = np.zeros(len(c.node), dtype=bool)
    if not (c.total[c.depth > 0] < 0).any() and not (c.self_value < 0).any():
        # Non-negative values: a parent's total is at least its child's, and on a tie it sorts
        # first, so the first max_nodes are ancestor-closed.
        keep[order[:max_nodes]] = True
        return keep
    count = 0
    for row in order:  # negative values (delta profiles): check each node's parent
        if count >= max_nodes:
            break
        if c.depth[row] == 0 or keep[parent_rows[row]]:
            keep[row] = True
            count += 1
    return keep


def preorder(c: NodeColumns, max_nodes: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows in pre-order (children by descending total, then name), each row's parent position
    in that order (-1 for the root), and how many nodes max_nodes dropped."""
    parent_rows = parent_rows_of(c)
    name_rank = _name_ranks(c.names)
    n = len(c.node)
    dropped = 0
    rows = np.arange(n)
    if max_nodes and n > max_nodes:
        keep = _kept_rows(c, parent_rows, name_rank, max_nodes)
        dropped = n - int(keep.sum())
        rows = np.flatnonzero(keep)
    depth = c.depth[rows]
    # sibling order: by parent, then total descending, then name
    sib = rows[np.lexsort((name_rank[c.name[rows]], -c.total[rows], parent_rows[rows]))]
    size = np.zeros(n, dtype=np.int64)
    size[rows] = 1
    max_depth = int(depth.max()) if len(depth) else 0
    by_depth = [rows[depth == d] for d in range(max_depth + 1)]
    for d in range(max_depth, 0, -1):  # subtree sizes, bottom-up
        np.add.at(size, parent_rows[by_depth[d]], size[by_depth[d]])
    # position among the preorder: parent's + 1 + sizes of the earlier siblings
    sib_parent = parent_rows[sib]
    sib_size = size[sib]
    csum = np.cumsum(sib_size) - sib_size
    group_start = np.r_[True, sib_parent[1:] != sib_parent[:-1]]
    starts = np.maximum.accumulate(np.where(group_start, np.arange(len(sib)), 0))
    before = np.empty(n, dtype=np.int64)
    before[sib] = csum - csum[starts]
    pre = np.full(n, -1, dtype=np.int64)
    for d in range(max_depth + 1):
        level = by_depth[d]
        if d == 0:
            pre[level] = 0
        else:
            pre[level] = pre[parent_rows[level]] + 1 + before[level]
    ordered = rows[np.argsort(pre[rows])]
    parent_pos = np.where(c.depth[ordered] == 0, -1, pre[np.maximum(parent_rows[ordered], 0)])
    return ordered, parent_pos, dropped


def render_elements(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray,
                    extra: dict[str, np.ndarray] | None = None) -> str:
    """Pre-ordered rows as JSON text; `extra` adds per-element fields (aligned with `ordered`).
    Built as text: one dict per node would cost more than the query."""
    escaped = [json.dumps(n, ensure_ascii=False) for n in c.names]
    names = [escaped[i] for i in c.name[ordered].tolist()]
    if names:
        names[0] = '"root"'
    columns = [range(len(ordered)), parent_pos.tolist(), names, c.total[ordered].tolist(),
               c.self_value[ordered].tolist()]
    template = '{"id":"%d","parentId":"%d","codeSignature":%s,"total":%d,"self":%d'
    for key, values in (extra or {}).items():
        columns.append([json.dumps(v) for v in values.tolist()])
        template += ',"' + key + '":%s'
    template += "}"
    return "[" + ",".join(template % row for row in zip(*columns, strict=False)) + "]"


class UnknownFocus(ValueError):
    """A focus path that is not in the tree; str() names the first frame not found."""


def focus_rows(c: NodeColumns, path: list[str]) -> np.ndarray:
    """The rows of a focus on `path` (frame names from the root's child down): the root, the
    ancestors on the path, the focused node and its whole subtree. Raises UnknownFocus."""
    parent_rows = parent_rows_of(c)
    index = {name: i for i, name in enumerate(c.names)}
    current = int(np.flatnonzero(c.depth == 0)[0])
    on_path = [current]
    for depth, name in enumerate(path, start=1):
        wanted = index.get(name)
        found = (np.flatnonzero((parent_rows == current) & (c.name == wanted)) if wanted is not None
                 else np.empty(0, dtype=np.int64))
        if len(found) == 0:
            where = echo(" > ".join(path[:depth - 1]), 300) if depth > 1 else "the root"
            raise UnknownFocus(f"focus: no frame {echo(name)} under {where}")
        current = int(found[0])
        on_path.append(current)
    keep = np.zeros(len(c.node), dtype=bool)
    keep[on_path] = True
    inside = np.zeros(len(c.node), dtype=bool)
    inside[current] = True
    for depth in range(int(c.depth[current]) + 1, int(c.depth.max()) + 1):
        level = np.flatnonzero(c.depth == depth)
        inside[level] = inside[parent_rows[level]]
    return np.flatnonzero(keep | inside)


def focused(c: NodeColumns, rows: np.ndarray) -> NodeColumns:
    return NodeColumns(c.node[rows], c.parent[rows], c.depth[rows], c.name[rows], c.total[rows],
                       c.self_value[rows], c.names)
