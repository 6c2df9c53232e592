"""Finished analyses, kept by what determines them. A stored profile never changes (a new upload
is a new profile id), so an entry keyed by the exact profile ids stays right forever; the byte
budget alone decides what is forgotten."""
from __future__ import annotations

import collections

from proftask import metrics

DEFAULT_BUDGET = 256 * 1024 * 1024


class AnalysisCache:
    def __init__(self, budget_bytes: int = DEFAULT_BUDGET):
        self.budget = budget_bytes
        self.size = 0
        self._entries: collections.OrderedDict[tuple, bytes] = collections.OrderedDict()

    def get(self, key: tuple) -> bytes | None:
        body = self._entries.get(key)
        if body is not None:
            self._entries.move_to_end(key)
        metrics.ANALYSIS_CACHE.labels("hit" if body is not None else "miss").inc()
        return body

    def put(self, key: tuple, body: bytes) -> None:
        if len(body) > self.budget // 4:
            return  # one huge tree must not evict everything else
        old = self._entries.pop(key, None)
        if old is not None:
            self.size -= len(old)
        self._entries[key] = body
        self.size += len(body)
        while self.size > self.budget:
            _, evicted = self._entries.popitem(last=False)
            self.size -= len(evicted)
