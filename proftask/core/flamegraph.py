"""The flame-graph tree from per-node sums: pre-order elements, children by descending total
(then name), and `maxNodes` truncation that never keeps a node without its parent. Pure.

Columnar (numpy): a merged tree can have ~10^6 nodes, too many for per-node Python objects.
"""
from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING
from json.encoder import encode_basestring

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from proftask.core.echo import echo

if TYPE_CHECKING:
    from proftask.core.spread import Spread

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
    spread: Spread | None = None  # per node, how the instances share it (a task's merged tree holds it)

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


def _kept_rows(c: NodeColumns, name_rank: np.ndarray, max_nodes: int) -> np.ndarray:
    """The root, then the heaviest, shallower first on ties, then by name, then by node id (the
    path's hash: not the row, whose order is ClickHouse's and may differ after a restart); a node
    only when its parent is kept. The kept rows, ascending."""
    if not (c.total[c.depth > 0] < 0).any() and not (c.self_value < 0).any():
        # Non-negative values: a parent's total is at least its child's, and on a tie it sorts
        # first, so the first max_nodes are ancestor-closed. Those above the max_nodes-th total
        # are in; of those equal to it, the first by (depth, name, node) fill the rest.
        threshold = -np.partition(-c.total, max_nodes - 1)[max_nodes - 1]
        above = c.total > threshold
        tied = np.flatnonzero(c.total == threshold)
        tied = tied[np.lexsort((c.node[tied], name_rank[c.name[tied]], c.depth[tied]))][:max_nodes - int(above.sum())]
        above[tied] = True
        rows = np.flatnonzero(above)
        # inside a focus, the root and the path keep their real totals, which values outside the
        # focus (a delta profile's negative ones) can leave below the focused subtree's
        if (c.depth[rows] == 0).any() and np.isin(c.parent[rows][c.depth[rows] > 0], c.node[rows]).all():
            return rows
    # Negative values (delta profiles), or ancestors lighter than their descendants: a node
    # weighs at most its lightest ancestor below the root, so that a parent sorts before its
    # children and the first max_nodes, the root first, are ancestor-closed.
    parent_rows = parent_rows_of(c)
    weight = c.total.copy()
    levels = _levels(c.depth)
    for level in levels[2:]:
        weight[level] = np.minimum(weight[level], weight[parent_rows[level]])
    order = np.lexsort((c.node, name_rank[c.name], c.depth, -weight, c.depth > 0))
    return np.sort(order[:max_nodes])


def _stable_order_of_small_ints(values: np.ndarray) -> np.ndarray:
    """np.argsort(values, kind="stable") for non-negative ints below 2**32, as one or two radix
    passes over 16-bit digits (numpy radix-sorts 16-bit keys; wider ones go to timsort)."""
    if len(values) == 0 or int(values.max()) < 1 << 16:
        return np.argsort(values.astype(np.uint16), kind="stable")
    low = np.argsort((values & 0xFFFF).astype(np.uint16), kind="stable")
    return low[np.argsort((values[low] >> 16).astype(np.uint16), kind="stable")]


def _levels(depth: np.ndarray) -> list[np.ndarray]:
    """Rows by depth: levels[d] holds the rows at depth d, ascending."""
    if len(depth) == 0:
        return []
    max_depth = int(depth.max())
    order = _stable_order_of_small_ints(depth) if max_depth < 1 << 32 else np.argsort(depth, kind="stable")
    bounds = np.r_[0, np.cumsum(np.bincount(depth, minlength=max_depth + 1))]
    return [order[bounds[d]:bounds[d + 1]] for d in range(max_depth + 1)]


def _parent_rows_by_level(node: np.ndarray, parent: np.ndarray, levels: list[np.ndarray],
                          below: int = 0) -> np.ndarray:
    """parent_rows_of, looking each node's parent up among the nodes one level up (small sorted
    arrays: the binary searches stay in cache); only for the levels below depth `below`."""
    parent_rows = np.full(len(node), -1, dtype=np.int64)
    for d in range(below + 1, len(levels)):
        up, here = levels[d - 1], levels[d]
        if len(here) == 0:
            continue
        if len(up) == 0:
            raise ValueError("a node's parent is missing from the node sums")
        by_node = np.argsort(node[up])
        found = up[by_node[np.minimum(np.searchsorted(node[up][by_node], parent[here]), len(up) - 1)]]
        if not np.array_equal(node[found], parent[here]):
            raise ValueError("a node's parent is missing from the node sums")
        parent_rows[here] = found
    return parent_rows


def _preorder_all(c: NodeColumns, name_rank: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Every row of c in pre-order, and each one's parent position (-1 for the root)."""
    n = len(c.node)
    levels = _levels(c.depth)
    parent_rows = _parent_rows_by_level(c.node, c.parent, levels)
    # sibling order: by parent, then total descending, then name (then row: both sorts are stable)
    by_weight = np.lexsort((name_rank[c.name], -c.total))
    sib = by_weight[_stable_order_of_small_ints(parent_rows[by_weight] + 1)]
    size = np.ones(n, dtype=np.int64)
    for d in range(len(levels) - 1, 0, -1):  # subtree sizes, bottom-up
        np.add.at(size, parent_rows[levels[d]], size[levels[d]])
    # position among the preorder: parent's + 1 + sizes of the earlier siblings
    sib_parent = parent_rows[sib]
    csum = np.cumsum(size[sib])
    csum -= size[sib]
    group_start = np.flatnonzero(np.r_[True, sib_parent[1:] != sib_parent[:-1]]) if n else np.zeros(0, np.int64)
    before = np.empty(n, dtype=np.int64)
    before[sib] = csum - np.repeat(csum[group_start], np.diff(np.r_[group_start, n]))
    pre = np.zeros(n, dtype=np.int64)
    for d in range(1, len(levels)):
        level = levels[d]
        pre[level] = pre[parent_rows[level]] + 1 + before[level]
    ordered = np.empty(n, dtype=np.int64)
    ordered[pre] = np.arange(n)
    parent_pos = pre[parent_rows[ordered]]
    parent_pos[parent_rows[ordered] < 0] = -1
    return ordered, parent_pos


def preorder(c: NodeColumns, max_nodes: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
    """Rows in pre-order (children by descending total, then name), each row's parent position
    in that order (-1 for the root), and how many nodes max_nodes dropped."""
    name_rank = _name_ranks(c.names)
    n = len(c.node)
    if max_nodes and n > max_nodes:
        rows = _kept_rows(c, name_rank, max_nodes)
        ordered, parent_pos = _preorder_all(focused(c, rows), name_rank)
        return rows[ordered], parent_pos, n - len(rows)
    ordered, parent_pos = _preorder_all(c, name_rank)
    return ordered, parent_pos, 0


def render_elements(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray,
                    extra: dict[str, np.ndarray] | None = None) -> str:
    """Pre-ordered rows as JSON text; `extra` adds per-element fields (aligned with `ordered`).
    Built as text: one dict per node would cost more than the query."""
    text = _elements(c, ordered, parent_pos, extra)
    return text if isinstance(text, str) else str(text.data, "utf-8", "surrogatepass")


def elements_buffer(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray,
                    extra: dict[str, np.ndarray] | None = None) -> np.ndarray:
    """render_elements' text as UTF-8 bytes (uint8), for a response body without a round trip
    through str."""
    text = _elements(c, ordered, parent_pos, extra)
    return np.frombuffer(text.encode("utf-8", "surrogatepass"), dtype=np.uint8) if isinstance(text, str) else text


def _elements(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray,
              extra: dict[str, np.ndarray] | None) -> np.ndarray | str:
    """The elements text as UTF-8 bytes, or as str when it was formatted by Python (_text). The
    elements are laid out as rows of a byte matrix, one column range per field, NUL where a
    field is shorter than its range (JSON text has no raw NUL), then flattened without the
    NULs: numpy's speed, not one Python format per node."""
    n = len(ordered)
    if n == 0:
        return np.frombuffer(b"[]", dtype=np.uint8)
    names, name_index = _element_names(c, ordered)
    if not extra:
        try:
            return _elements_by_arrow(c, ordered, parent_pos, names, name_index)
        except (pa.ArrowCapacityError, pa.ArrowInvalid):  # past 2 GiB of text: the matrix below
            pass
    # The name column is as wide as 99 % of the rows' names need (at most _NAME_WIDTH bytes);
    # longer names are spliced into the text afterwards, or, when they are many, the plain
    # Python formatting is faster than a wide matrix.
    name_length = np.fromiter(map(len, names), dtype=np.int64, count=len(names))
    row_name_length = name_length[name_index]
    k = n - 1 - n // 100
    name_width = min(_NAME_WIDTH, int(np.partition(row_name_length, k)[k]))
    long_rows = np.flatnonzero(row_name_length > name_width)
    if len(long_rows) > n * _SPLICED_SHARE:
        return _text(c, ordered, parent_pos, extra)
    in_matrix = [b"" if length > name_width else name for name, length in zip(names, name_length.tolist(), strict=True)]
    fields: list[tuple[bytes, _Ints | _Texts]] = [
        (b'{"id":"', _Ints(np.arange(n))), (b'","parentId":"', _Ints(parent_pos)),
        (b'","codeSignature":', _Texts(in_matrix, name_index)), (b',"total":', _Ints(c.total[ordered])),
        (b',"self":', _Ints(c.self_value[ordered]))]
    for key, values in (extra or {}).items():
        lit = b',"' + key.encode() + b'":'
        if values.dtype.kind == "i" or (values.dtype.kind == "u" and (len(values) == 0 or values.max() < 1 << 63)):
            fields.append((lit, _Ints(values)))
        else:
            fields.append((lit, _Texts([json.dumps(v).encode() for v in values.tolist()], np.arange(n))))
    width = sum(len(lit) + f.width for lit, f in fields) + 2
    chunk = np.empty((min(n, _CHUNK_ROWS), width), dtype=np.uint8)
    col, spans = 0, []
    for lit, f in fields:  # the literals once: each chunk overwrites only the values
        chunk[:, col:col + len(lit)] = np.frombuffer(lit, dtype=np.uint8)
        spans.append((f, col + len(lit), col + len(lit) + f.width))
        col += len(lit) + f.width
    chunk[:, col:] = np.frombuffer(b"},", dtype=np.uint8)
    name_column = spans[2][1]
    parts = [np.frombuffer(b"[", dtype=np.uint8)]
    offset = 1
    splices: list[tuple[int, int]] = []  # (byte offset in the text without the long names, name)
    for lo in range(0, n, _CHUNK_ROWS):
        hi = min(n, lo + _CHUNK_ROWS)
        rows = chunk[:hi - lo]
        for f, start, end in spans:
            f.fill(rows[:, start:end], lo, hi)
        flat = rows.reshape(-1)
        text = flat != 0
        here = long_rows[(long_rows >= lo) & (long_rows < hi)]
        if len(here):
            by_row = text.reshape(rows.shape)
            row_start = np.cumsum(by_row.sum(axis=1))
            local = here - lo
            at = offset + row_start[local] - by_row[local].sum(axis=1) + by_row[local, :name_column].sum(axis=1)
            splices.extend(zip(at.tolist(), name_index[here].tolist(), strict=True))
        parts.append(flat[text])
        offset += len(parts[-1])
    parts[-1] = parts[-1][:-1]  # no comma after the last element
    parts.append(np.frombuffer(b"]", dtype=np.uint8))
    body = np.concatenate(parts)
    if not splices:
        return body
    text, pieces, previous = body.data, [], 0
    for at, name in splices:
        pieces += [text[previous:at], names[name]]
        previous = at
    pieces.append(text[previous:])
    return np.frombuffer(b"".join(pieces), dtype=np.uint8)


def _elements_by_arrow(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray, names: list[bytes],
                       name_index: np.ndarray) -> np.ndarray:
    """The elements text (no extra fields) by Arrow's compute kernels: the numbers formatted and
    each element's pieces joined in C++, one element per value of a binary array whose data
    buffer, the elements back to back, is the text (~2x faster than the byte matrix on a
    425k-node tree)."""
    text = _arrow_rows(c, ordered, parent_pos, names, name_index, 0, len(ordered))[:-1]  # no last comma
    return np.concatenate((np.frombuffer(b"[", dtype=np.uint8), text, np.frombuffer(b"]", dtype=np.uint8)))


def _element_names(c: NodeColumns, ordered: np.ndarray) -> tuple[list[bytes], np.ndarray]:
    """The names as JSON strings, "root" last, and each pre-ordered element's position in them:
    the first element is the root, named "root" whatever it is."""
    names = [encode_basestring(name).encode("utf-8", "surrogatepass") for name in c.names] + [b'"root"']
    name_index = c.name[ordered]
    name_index[0] = len(names) - 1
    return names, name_index


def _decimal(values: np.ndarray, binary: pa.DataType | None = None) -> pa.Array:
    """Integers as their decimal text, bytes of an Arrow binary type (binary by default)."""
    return pc.cast(pa.array(values), pa.string()).cast(binary or pa.binary())


def _arrow_rows(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray, names: list[bytes],
                name_index: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """Elements lo..hi of the pre-order as text, each followed by a comma."""
    name_text = pc.take(pa.array(names, pa.binary()), pa.array(name_index[lo:hi]))
    rows = ordered[lo:hi]
    joined = pc.binary_join_element_wise(
        b'{"id":"', _decimal(np.arange(lo, hi)), b'","parentId":"', _decimal(parent_pos[lo:hi]),
        b'","codeSignature":', name_text, b',"total":', _decimal(c.total[rows]), b',"self":',
        _decimal(c.self_value[rows]), b"},", b"")
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32)[joined.offset:joined.offset + len(joined) + 1]
    return np.frombuffer(joined.buffers()[2], dtype=np.uint8)[int(offsets[0]):int(offsets[-1])]


# A part's text stays well inside an Arrow binary array's 2 GiB (int32 offsets).
_PART_BYTES = 1 << 30
_ELEMENT_BYTES = 120  # an element's text past its name, numbers at their widest


def elements_jobs(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray,
                  parts: int) -> list[Callable[[], np.ndarray]] | None:
    """elements_buffer's work cut into `parts` jobs over consecutive elements, for threads to run
    at once (Arrow's kernels let go of the GIL); elements_joined puts their results together,
    the same bytes as elements_buffer. None for an empty tree or one too large for Arrow's
    arrays (elements_buffer then)."""
    n = len(ordered)
    if n == 0:
        return None
    names, name_index = _element_names(c, ordered)
    name_length = np.fromiter(map(len, names), dtype=np.int64, count=len(names))
    if (int(name_length[name_index].sum()) + n * _ELEMENT_BYTES) // parts > _PART_BYTES:
        return None
    bounds = np.linspace(0, n, parts + 1).astype(np.int64).tolist()
    return [functools.partial(_arrow_rows, c, ordered, parent_pos, names, name_index, lo, hi)
            for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo]


def elements_joined(texts: list[np.ndarray]) -> list[memoryview]:
    """The results of elements_jobs, in order, as the elements' JSON text in pieces back to back."""
    pieces = [text.data for text in texts]
    pieces[-1] = pieces[-1][:-1]  # no comma after the last element
    return [memoryview(b"["), *pieces, memoryview(b"]")]


def warm_up() -> None:
    """Render a one-node tree: Arrow's compute kernels load on first use (~0.3 s), which a
    service pays at start, not in its first answer."""
    c = NodeColumns.empty()
    elements_buffer(c, *preorder(c)[:2])


def _text(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray, extra: dict[str, np.ndarray] | None) -> str:
    """render_elements one Python format per element: for trees of mostly very long names."""
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


_NAME_WIDTH = 256  # the widest name column of the matrix, in bytes
_SPLICED_SHARE = 0.05  # of the rows, at most, whose names are spliced in; else _text
_CHUNK_ROWS = 1 << 16  # rows of the byte matrix at a time: bounded memory, fewer numpy calls


def _digit_groups() -> np.ndarray:
    """Four ASCII digits per value 0..9999 as uint32: zero-padded (0..9999), right-aligned
    with NUL padding (10000..19999: a number's leading group), and four NULs (20000)."""
    padded = "".join(f"{i:04d}" for i in range(10000))
    leading = "".join(f"{i:>4d}" for i in range(10000))
    text = (padded + leading + "    ").replace(" ", "\0").encode()
    return np.frombuffer(text, dtype=np.uint32)


_DIGITS = _digit_groups()


class _Ints:
    """An int column as decimal text (as %d writes it), right-aligned in its byte range."""

    def __init__(self, values: np.ndarray):
        v = np.asarray(values, dtype=np.int64)
        self.negative = v < 0
        # |v| as uint64 (|min int64| fits)
        self.magnitude = np.where(self.negative, -(v + 1), v).astype(np.uint64) + self.negative
        top = int(self.magnitude.max()) if len(v) else 0
        self.groups = (len(str(top)) + 3) // 4
        self.width = 4 * self.groups + int(self.negative.any())

    def fill(self, out: np.ndarray, lo: int, hi: int) -> None:
        u = self.magnitude[lo:hi]
        groups = np.empty((hi - lo, self.groups), dtype=np.uint32)
        for k in range(self.groups):  # the lowest four digits first
            rest = u // np.uint64(10000)
            index = (u - rest * np.uint64(10000)).astype(np.intp)
            index += 10000 * (rest == 0)  # the number's leading group: no zero padding
            if k:
                index += 10000 * (u == 0)  # past the number's leading group: all NUL
            groups[:, self.groups - 1 - k] = _DIGITS[index]
            u = rest
        out[:, out.shape[1] - 4 * self.groups:] = groups.view(np.uint8)
        if self.width > 4 * self.groups:
            out[:, 0] = 0
            negative = np.flatnonzero(self.negative[lo:hi])
            if len(negative):  # the sign just before the first digit
                first = np.argmax(out[negative] != 0, axis=1)
                out[negative, first - 1] = ord("-")


class _Texts:
    """A text column from a list of encoded strings and each row's index into it, left-aligned
    in its byte range."""

    def __init__(self, texts: list[bytes], index: np.ndarray):
        lengths = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
        self.width = int(lengths.max()) if len(texts) else 0
        flat = np.frombuffer(b"".join(texts), dtype=np.uint8)
        self.matrix = np.zeros((len(texts), self.width), dtype=np.uint8)
        starts = np.cumsum(lengths) - lengths
        self.matrix[np.repeat(np.arange(len(texts)), lengths),
                    np.arange(len(flat)) - np.repeat(starts, lengths)] = flat
        self.index = index

    def fill(self, out: np.ndarray, lo: int, hi: int) -> None:
        out[:] = self.matrix[self.index[lo:hi]]


class UnknownFocus(ValueError):
    """A focus path that is not in the tree; str() names the first frame not found."""


def focus_rows(c: NodeColumns, path: list[str]) -> np.ndarray:
    """The rows of a focus on `path` (frame names from the root's child down): the root, the
    ancestors on the path, the focused node and its whole subtree. Raises UnknownFocus."""
    levels = _levels(c.depth)
    index = {name: i for i, name in enumerate(c.names)}
    current = int(levels[0][0])
    on_path = [current]
    for depth, name in enumerate(path, start=1):
        wanted = index.get(name)
        level = levels[depth] if depth < len(levels) else np.empty(0, dtype=np.int64)
        found = (level[(c.parent[level] == c.node[current]) & (c.name[level] == wanted)] if wanted is not None
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
    parent_rows = _parent_rows_by_level(c.node, c.parent, levels, below=int(c.depth[current]))
    for level in levels[int(c.depth[current]) + 1:]:
        inside[level] = inside[parent_rows[level]]
    return np.flatnonzero(keep | inside)


def focused(c: NodeColumns, rows: np.ndarray) -> NodeColumns:
    spread = c.spread.taken(rows) if c.spread is not None else None  # the same nodes, the same spread
    return NodeColumns(c.node[rows], c.parent[rows], c.depth[rows], c.name[rows], c.total[rows],
                       c.self_value[rows], c.names, spread)


# An element's fields as SkyWalking's query protocol names them (PprofStackElement), in
# render_elements' order.
ELEMENT_FIELDS = ("id", "parentId", "codeSignature", "total", "self")


def render_element_fields(c: NodeColumns, ordered: np.ndarray, parent_pos: np.ndarray,
                          fields: list[tuple[str, str]], typename: str = "") -> bytes:
    """The pre-ordered elements as a JSON array whose objects hold `fields`, (response key,
    field) pairs in order, as GraphQL answers a selection of PprofStackElement (aliases, a field
    twice, `__typename` as `typename`): the values of render_elements, each object built by
    Arrow's kernels and not by a GraphQL executor, which spends ~10 µs a field (5 s on a
    425k-node tree)."""
    n = len(ordered)
    if n == 0:
        return b"[]"

    names, name_index = _element_names(c, ordered)
    wide = pa.large_binary()  # one array of every element's text: past Arrow's 2 GiB of binary
    values: dict[str, Callable[[], list]] = {
        "id": lambda: [b'"', _decimal(np.arange(n), wide), b'"'],
        "parentId": lambda: [b'"', _decimal(parent_pos, wide), b'"'],
        "codeSignature": lambda: [pc.take(pa.array(names, pa.large_binary()), pa.array(name_index))],
        "total": lambda: [_decimal(c.total[ordered], wide)],
        "self": lambda: [_decimal(c.self_value[ordered], wide)],
        "__typename": lambda: [json.dumps(typename).encode()],
    }
    pieces: list = []
    for i, (key, field) in enumerate(fields):
        pieces += [(b"{" if i == 0 else b",") + json.dumps(key).encode() + b":", *values[field]()]
    pieces.append(b"{}," if not fields else b"},")
    merged: list = []  # neighbouring constants as one
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    if all(isinstance(piece, bytes) for piece in merged):  # no column: the same object n times
        return b"[" + (merged[0] * n)[:-1] + b"]"
    joined = pc.binary_join_element_wise(*(pa.scalar(p, pa.large_binary()) if isinstance(p, bytes) else p
                                           for p in merged), pa.scalar(b"", pa.large_binary()))
    offsets = np.frombuffer(joined.buffers()[1], dtype=np.int64)[joined.offset:joined.offset + n + 1]
    text = memoryview(joined.buffers()[2])[int(offsets[0]):int(offsets[-1]) - 1]  # no last comma
    return b"".join((b"[", text, b"]"))
