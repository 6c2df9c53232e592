"""The analysis use case, whatever asks for it: select the task's profiles, answer from the
cache when the same question was asked of the same profiles, else query ClickHouse and build
the tree (or pprof's -top table). The HTTP routes parse parameters and render; this decides.

The cache keeps rendered answers (services/query_svc/views.py spells them): a merged tree's
JSON text costs as much to build as its query, and a stored profile never changes, so an answer
keyed by the exact profile ids stays right forever (analysis_cache.py).
"""
from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING

import numpy as np

from proftask.clickhouse.client import ClickHouse
from proftask.core.flamegraph import (NodeColumns, UnknownFocus, elements_buffer, elements_joined, elements_jobs,
                                      focus_rows, focused, preorder)
from proftask.core.spread import Spread, instance_spread
from proftask.core.top import sort_rows
from proftask.errors import Invalid
from proftask.analysis import analysis_queries
from services.query_svc import views
from services.query_svc.analysis_cache import AnalysisCache
from proftask.analysis.selection import Selection, select
from proftask.analysis.answer_threads import off_loop

if TYPE_CHECKING:
    from proftask.task_view import TaskView

MAX_STATS_NODES = 20_000  # instanceStats looks each kept node up per instance
# From this many elements, the text is formatted in two halves at once (~0.145 -> ~0.08 s for
# a 425k-node tree when both cores are free); a first view's few thousand are not worth it.
PARALLEL_ELEMENTS = 50_000


@dataclasses.dataclass(frozen=True)
class Question:
    """What a tree or a top table is asked of: the task, its instances (none: all), the sample
    type (None: the default) and the granularity."""
    tenant: str
    task_id: str
    instance_ids: frozenset[str] = frozenset()
    sample_type: str | None = None
    granularity: str = "function"


class Analyses:
    def __init__(self, clickhouse: ClickHouse, tasks: TaskView | None, cache: AnalysisCache):
        self.clickhouse = clickhouse
        self.tasks = tasks  # the Kafka truth for tasks ClickHouse has no row of yet
        self.cache = cache

    async def select(self, q: Question, missing_status: int = 404) -> Selection:
        return await select(self.clickhouse, self.tasks, q.tenant, q.task_id, set(q.instance_ids),
                            q.sample_type, q.granularity, missing_status)

    async def columns(self, sel: Selection, with_spread: bool = False) -> NodeColumns:
        """The selection's whole merged tree (with_spread: with its spread across instances
        where the task's merged tree holds it)."""
        if not sel.value_index:
            return NodeColumns.empty()
        return await analysis_queries.node_columns(self.clickhouse, sel.tenant, sel.task_id,
                                                   sel.value_index, sel.granularity, sel.sample_type, with_spread)

    async def tree(self, q: Question, max_nodes: int = 0, with_stats: bool = False,
                   focus: tuple[str, ...] | None = None) -> bytes:
        """The flame-graph answer: at most max_nodes nodes (0: all; inside a focus the root and
        the path come on top), per-instance shares with with_stats. Raises Invalid for a focus
        that is not in the tree or instance stats over too many nodes."""
        sel = await self.select(q)
        key = (sel.cache_key, max_nodes, with_stats, focus)
        body = self.cache.get(key)
        if body is None:
            body = await self._tree(sel, max_nodes, with_stats, focus)
            self.cache.put(key, body)
        return body

    async def _tree(self, sel: Selection, max_nodes: int, with_stats: bool,
                    focus: tuple[str, ...] | None) -> bytes:
        heaviest = None
        if max_nodes and focus is None and sel.value_index:  # the cut tree: only its nodes are read
            heaviest = await analysis_queries.heaviest_node_columns(
                self.clickhouse, sel.tenant, sel.task_id, sel.value_index, sel.granularity, max_nodes,
                sel.sample_type, with_stats)
        columns, node_count = heaviest if heaviest is not None else (await self.columns(sel, with_stats), None)
        if focus is not None:
            try:
                columns = focused(columns, await off_loop(focus_rows, columns, list(focus)))
            except UnknownFocus as e:
                raise Invalid(str(e)) from None
        # maxNodes counts inside a focus: the root and the ancestors on its path come on top
        kept = max_nodes + len(focus) if max_nodes and focus else max_nodes
        ordered, parent_pos, truncated = await off_loop(preorder, columns, kept)
        if node_count is not None:  # the nodes the query left out were dropped too
            truncated = node_count - len(ordered)
        extra, instance_count = None, None
        if with_stats:
            extra, instance_count = await self._instance_stats(sel, columns, ordered)
        jobs = None if extra or len(ordered) < PARALLEL_ELEMENTS else await off_loop(
            elements_jobs, columns, ordered, parent_pos, 2)
        elements: np.ndarray | list[memoryview]
        if jobs:  # a whole tree's text formatted by two threads at once
            elements = elements_joined(list(await asyncio.gather(*(off_loop(job) for job in jobs))))
        else:
            elements = await off_loop(elements_buffer, columns, ordered, parent_pos, extra)
        # a whole tree's answer is ~40 MB joined: not on the event loop (nor anything else a
        # large profile makes long, or concurrent reads hold agents' polls and /healthz for seconds)
        return await off_loop(views.analysis_body, sel, truncated, focus, instance_count, elements)

    async def _instance_stats(self, sel: Selection, columns: NodeColumns,
                              ordered: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
        nodes = columns.node[ordered]
        if len(nodes) > MAX_STATS_NODES:
            raise Invalid(f"instanceStats covers at most {MAX_STATS_NODES} nodes; "
                          f"this tree has {len(nodes)}: set maxNodes")
        if columns.spread is not None:  # the task's merged tree holds it (all its instances, in a focus too)
            spread = columns.spread.taken(ordered)
            return self._spread_fields(spread), spread.instance_count
        if sel.value_index:
            totals, roots = await analysis_queries.profile_node_totals(
                self.clickhouse, sel.tenant, sel.task_id, sel.value_index, sel.granularity, nodes.tolist())
        else:
            totals, roots = analysis_queries.ProfileNodeTotals.empty(), {}
        by_profile = {p.profile_id: p.instance_id for p in sel.profiles}
        spread = await off_loop(
            instance_spread, nodes, totals.profile, totals.node, totals.total,
            [(by_profile[p], roots.get(p, 0)) for p in totals.profile_ids])
        return self._spread_fields(spread), spread.instance_count

    @staticmethod
    def _spread_fields(spread: Spread) -> dict[str, np.ndarray]:
        return {"instances": spread.instances, "shareMin": np.round(spread.share_min, 6),
                "shareMax": np.round(spread.share_max, 6)}

    async def top(self, q: Question, limit: int = 0) -> bytes:
        """pprof's -top of the whole merged profile (every node, whatever maxNodes the tree is
        viewed at), sorted by flat; the first `limit` rows (0: all)."""
        sel = await self.select(q)
        key = ("top", sel.cache_key, limit)
        body = self.cache.get(key)
        if body is None:
            rows, total = ([], 0) if not sel.value_index else await analysis_queries.top_rows(
                self.clickhouse, sel.tenant, sel.task_id, sel.value_index, sel.granularity)
            rows = await off_loop(sort_rows, rows, "flat", sel.granularity)
            body = await off_loop(views.top_body, sel, total, rows, limit)
            self.cache.put(key, body)
        return body
