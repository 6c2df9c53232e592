"""The flame-graph tree from per-node sums: pre-order elements, children by descending total
(then name), and `maxNodes` truncation that never keeps a node without its parent. Pure.

Columnar (numpy): a merged tree can have ~10^6 nodes, too many for per-node Python objects.
"""
from __future__ import annotations

import dataclasses
import json

import numpy as np

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
    def empty(cls) -> "NodeColumns":
        z = np.zeros(1, dtype=np.int64)
        return cls(np.zeros(1, np.uint64), np.zeros(1, np.uint64), z.copy(), z.copy(), z.copy(), z.copy(), ["root"])


def _parent_rows(c: NodeColumns) -> np.ndarray:
    order = np.argsort(c.node)
    pos = np.searchsorted(c.node, c.parent, sorter=order)
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


def _positions(c: NodeColumns, parent_rows: np.ndarray, name_rank: np.ndarray,
               rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row's position in the pre-order of `rows` (children by descending total, then
    name; -1 for rows left out) and the size of its subtree among `rows`."""
    n = len(c.node)
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
    return pre, size


def preorder(c: NodeColumns, max_nodes: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows in pre-order (children by descending total, then name), each row's parent position
    in that order (-1 for the root), and how many nodes max_nodes dropped."""
    parent_rows = _parent_rows(c)
    name_rank = _name_ranks(c.names)
    n = len(c.node)
    dropped = 0
    rows = np.arange(n)
    if max_nodes and n > max_nodes:
        keep = _kept_rows(c, parent_rows, name_rank, max_nodes)
        dropped = n - int(keep.sum())
        rows = np.flatnonzero(keep)
    pre = _positions(c, parent_rows, name_rank, rows)[0]
    ordered = rows[np.argsort(pre[rows])]
    parent_pos = np.where(c.depth[ordered] == 0, -1, pre[np.maximum(parent_rows[ordered], 0)])
    return ordered, parent_pos, dropped


def preorder_spans(c: NodeColumns) -> tuple[np.ndarray, np.ndarray]:
    """Per row of the whole tree: its pre-order position and its subtree's size, so the
    subtree of row r is the rows whose position is in [pre[r], pre[r] + size[r])."""
    return _positions(c, _parent_rows(c), _name_ranks(c.names), np.arange(len(c.node)))


def elements_json(c: NodeColumns, max_nodes: int = 0) -> tuple[str, int, int]:
    """The elements array as JSON text ([{id, parentId, codeSignature, total, self}, ...]),
    the number of elements, and how many nodes max_nodes dropped."""
    ordered, parent_pos, dropped = preorder(c, max_nodes)
    return render_elements(c, ordered, parent_pos), len(ordered), dropped


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
        template += ',"%s":%%s' % key
    template += "}"
    return "[" + ",".join(template % row for row in zip(*columns)) + "]"


class FocusNotFound(ValueError):
    """A focus path names a frame that is not a child of the path before it."""

    def __init__(self, frame: str, position: int):
        super().__init__(frame)
        self.frame, self.position = frame, position


def focus_preorder(c: NodeColumns, path: list[str], max_nodes: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """preorder() of the subtree at `path` (codeSignatures from the root's child down): the
    root and the path's ancestors first, with their real sums, then the focused node and its
    subtree in pre-order, max_nodes applied inside the subtree only (the focused node counts,
    the ancestors do not). Raises FocusNotFound for the first frame of the path that is missing."""
    if not path:
        return preorder(c, max_nodes)
    parent_rows = _parent_rows(c)
    rows_of_name: dict[str, list[int]] = {}
    for i, name in enumerate(c.names):
        rows_of_name.setdefault(name, []).append(i)
    chain = [int(np.flatnonzero(c.depth == 0)[0])]
    for position, frame in enumerate(path):
        indexes = rows_of_name.get(frame)
        found = (np.flatnonzero((parent_rows == chain[-1]) & np.isin(c.name, indexes))
                 if indexes else np.empty(0, np.int64))
        if not len(found):
            raise FocusNotFound(frame, position)
        chain.append(int(found[np.argmax(c.total[found])]))
    focus = chain[-1]
    in_subtree = np.zeros(len(c.node), dtype=bool)
    in_subtree[focus] = True
    order = np.argsort(c.depth, kind="stable")
    depths = c.depth[order]
    for d in range(int(c.depth[focus]) + 1, int(depths[-1]) + 1):
        level = order[np.searchsorted(depths, d):np.searchsorted(depths, d, side="right")]
        in_subtree[level] = in_subtree[parent_rows[level]]
    sub = np.flatnonzero(in_subtree)
    s = NodeColumns(c.node[sub], c.parent[sub], c.depth[sub] - c.depth[focus], c.name[sub], c.total[sub],
                    c.self_value[sub], c.names)
    ordered, parent_pos, dropped = preorder(s, max_nodes)
    above = len(chain) - 1  # the root and the ancestors
    parent_pos = np.where(parent_pos < 0, above - 1, parent_pos + above)
    return (np.concatenate([np.asarray(chain[:-1], dtype=np.int64), sub[ordered]]),
            np.concatenate([np.arange(-1, above - 1, dtype=np.int64), parent_pos]), dropped)
