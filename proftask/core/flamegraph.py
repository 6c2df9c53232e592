"""The flame-graph tree from per-node sums: pre-order elements, children by descending total,
and `maxNodes` truncation that never keeps a node without its parent. Pure."""
from __future__ import annotations

import dataclasses

ROOT_NODE = 0


@dataclasses.dataclass(frozen=True)
class NodeSum:
    node: int     # path hash; ROOT_NODE for the root
    parent: int
    depth: int    # 1 for children of the root
    name: str
    total: int
    self_value: int


def keep_heaviest(nodes: list[NodeSum], max_nodes: int) -> set[int]:
    """The node ids of the heaviest `max_nodes` (root included), ancestor-closed: a node is only
    kept when its parent is. Heavier first, shallower first on ties (a parent's total is at
    least its child's for non-negative values, so this keeps whole top subtrees)."""
    kept = {ROOT_NODE}
    for n in sorted(nodes, key=lambda n: (-n.total, n.depth, n.name)):
        if len(kept) >= max_nodes:
            break
        if n.parent in kept:
            kept.add(n.node)
    return kept


def build_elements(nodes: list[NodeSum], root_total: int, root_self: int,
                   max_nodes: int = 0) -> tuple[list[dict], int]:
    """Elements [{id, parentId, codeSignature, total, self}] in pre-order, and how many nodes
    maxNodes dropped. Element ids count from "0" (the root) in pre-order."""
    if max_nodes and len(nodes) + 1 > max_nodes:
        kept = keep_heaviest(nodes, max_nodes)
        selected = [n for n in nodes if n.node in kept]
    else:
        selected = nodes
    children: dict[int, list[NodeSum]] = {}
    for n in selected:
        children.setdefault(n.parent, []).append(n)
    for siblings in children.values():
        siblings.sort(key=lambda n: (-n.total, n.name))

    elements = [{"id": "0", "parentId": "-1", "codeSignature": "root", "total": root_total, "self": root_self}]
    stack: list[tuple[NodeSum, str]] = [(n, "0") for n in reversed(children.get(ROOT_NODE, []))]
    while stack:
        n, parent_id = stack.pop()
        element_id = str(len(elements))
        elements.append({"id": element_id, "parentId": parent_id, "codeSignature": n.name,
                         "total": n.total, "self": n.self_value})
        stack.extend((c, element_id) for c in reversed(children.get(n.node, [])))
    return elements, len(nodes) - len(selected)
