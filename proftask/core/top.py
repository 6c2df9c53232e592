"""The top table of a flame graph: per function, self summed over its nodes and total summed
over the nodes that have no ancestor of the same name (recursion is not counted twice). Pure;
the web UI's topFunctions does the same in the browser."""
from __future__ import annotations

import dataclasses
from typing import Iterable


@dataclasses.dataclass
class FunctionRow:
    name: str
    self_value: int = 0
    total: int = 0


def top_functions(elements: Iterable[dict]) -> list[FunctionRow]:
    """elements: the analysis's pre-ordered [{id, parentId, codeSignature, total, self}]."""
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
