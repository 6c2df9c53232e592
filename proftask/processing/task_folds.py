"""Each task's merged tree, summed as its profiles are stored: the first view of a task (its
instances' newest profiles, the default sample type, function granularity) reads one row of
`task_folds` instead of summing every profile's node values at query time (a GROUP BY over
~4M values for ten large profiles).

The row names the profiles it sums (`profile_ids`), and a query uses it only for exactly that
set, so a row that is missing, late or stale costs the GROUP BY, never a wrong number. The
processor keeps each task's sums in memory and adds each stored profile to them (numpy); when
they cannot be brought up to the task's newest profiles by adding (a processor restarted
mid-task, an instance's profile replaced by a newer upload, a task whose profiles another
processor stored), they are summed again from ClickHouse, once.
"""
from __future__ import annotations

import asyncio
import collections
import dataclasses
import logging
import time
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import pyarrow as pa

from proftask import metrics
from proftask.analysis import analysis_queries
from proftask.analysis.selection import resolve_sample_type
from proftask.clickhouse.client import ClickHouse
from proftask.core.node_table import NodeSums, add_node_values, heaviest_first
from proftask.core.spread import settled_spread
from proftask.pprof.fold import FUNCTION
from proftask.processing.profile_rows import ProfileRows

log = logging.getLogger(__name__)
GRANULARITY = FUNCTION  # what a task opens on; the line view and other types sum at query time
MAX_VALUES = 8_000_000  # node sums kept in memory over every task (24 bytes each, 20 of places, 24 of shares)
TASK_VALUES = 96  # what a task's sums cost besides their values (~2 KB of Python objects, places too), in values


@dataclasses.dataclass
class _TaskSums:
    profiles: frozenset[str]      # the profiles summed
    sums: NodeSums
    written: frozenset[str] = frozenset()  # the profiles of the row last written


class TaskFolds:
    def __init__(self, clickhouse: ClickHouse, insert_arrow: Callable[[str, pa.Table], Awaitable[None]]):
        self.clickhouse = clickhouse
        self._insert_arrow = insert_arrow
        self._sums: collections.OrderedDict[tuple[str, str, str], _TaskSums] = collections.OrderedDict()
        self._held = 0  # the cost (_cost) of the sums in _sums
        # (tenant, task) -> profiles in progress in this process (their count of expectations)
        self._in_progress: dict[tuple[str, str], collections.Counter[str]] = {}
        self._lock = asyncio.Lock()  # one task's sums are changed by one batch at a time

    def expect(self, tenant: str, task_id: str, profile_id: str) -> None:
        """A profile of the task is on its way (being folded or written): the row is written by
        the task's last profile in progress, not rewritten (~10 MB for a large tree) by each."""
        self._in_progress.setdefault((tenant, task_id), collections.Counter())[profile_id] += 1

    def settle(self, tenant: str, task_id: str, profile_id: str) -> None:
        """The profile is added (or will not be: its record went to the dead letters)."""
        counts = self._in_progress.get((tenant, task_id))
        if counts is None:
            return
        counts[profile_id] -= 1
        if counts[profile_id] <= 0:
            del counts[profile_id]
        if not counts:
            del self._in_progress[(tenant, task_id)]

    async def add(self, batch: Sequence[ProfileRows]) -> None:
        """After the batch's rows are written: each of its tasks' sums brought up to the task's
        newest profiles, and written. A failure only leaves the query to sum the profiles."""
        by_task: dict[tuple[str, str], list[ProfileRows]] = {}
        for rows in batch:
            by_task.setdefault((rows.tenant, rows.task_id), []).append(rows)
        async with self._lock:
            started = time.perf_counter()
            for (tenant, task_id), profiles in by_task.items():
                try:
                    await self._add_task(tenant, task_id, profiles)
                except Exception as e:  # noqa: BLE001 - an optimisation: the query sums the profiles
                    log.warning("task %s: its merged tree was not written (%s); analyses sum its profiles",
                                task_id, e)
            metrics.TASK_FOLD_SECONDS.inc(time.perf_counter() - started)

    async def refresh(self, tenant: str, task_id: str) -> None:
        """The task's row written if nothing of it is in progress any more (a profile it waited
        for went to the dead letters)."""
        async with self._lock:
            try:
                await self._add_task(tenant, task_id, [])
            except Exception as e:  # noqa: BLE001 - as in add
                log.warning("task %s: its merged tree was not written (%s); analyses sum its profiles", task_id, e)

    async def _add_task(self, tenant: str, task_id: str, batch: list[ProfileRows]) -> None:
        read_at = int(time.time() * 1000)  # the row's version: rows from later reads win ClickHouse's merges
        newest = await analysis_queries.latest_profiles(self.clickhouse, tenant, task_id)
        if not newest:
            return
        sample_types: list[str] = []
        for p in newest:
            sample_types += [t for t in p.sample_types if t not in sample_types]
        sample_type = resolve_sample_type(newest, sample_types, None)
        if sample_type is None:
            return
        # what an analysis of the whole task merges: profile id -> 1-based position of the type
        wanted = {p.profile_id: p.sample_types.index(sample_type) + 1 for p in newest
                  if sample_type in p.sample_types}
        key = (tenant, task_id, sample_type)
        task = self._sums.pop(key, None)
        if task is None:
            task = _TaskSums(frozenset(), NodeSums.empty())
        else:
            self._held -= _cost(task)
        for rows in batch:
            if rows.profile_id in wanted and rows.profile_id not in task.profiles:
                task.sums = await asyncio.to_thread(_added, task.sums, rows, wanted[rows.profile_id] - 1)
                task.profiles |= {rows.profile_id}
                metrics.TASK_FOLDS.labels("added").inc()
        missing = set(wanted) - task.profiles
        coming = set(self._in_progress.get((tenant, task_id), ())) - task.profiles - {r.profile_id for r in batch}
        if task.profiles - set(wanted) or missing - coming:
            # not reachable by adding what this process holds: summed again from the stored values
            # named by the profiles whose values were read (a replica may lack some yet): a row
            # naming a profile always holds its values
            sums, read = await analysis_queries.merged_node_sums(self.clickhouse, tenant, task_id, wanted,
                                                                 GRANULARITY)
            task = _TaskSums(read, sums)
            metrics.TASK_FOLDS.labels("summed_again").inc()
            if sums.places is None:
                # a node's path not visible yet (a cluster's replica): no row with wrong places,
                # and no sums kept without places; the task's next profile reads them again
                metrics.TASK_FOLDS.labels("unplaced").inc()
                return
        if coming:  # the task's profile still in progress here adds itself and writes the row
            self._keep(key, task)
            metrics.TASK_FOLDS.labels("left_to_next").inc()
            return
        # a task of one profile has its row too: opening it then reads a prefix of the row, where
        # its node values would be sorted whole and placed against the tenant's node paths
        if task.written != task.profiles and task.profiles and task.sums.places is not None:
            table = await asyncio.to_thread(_task_fold_table, tenant, task_id, sample_type, task, read_at)
            await self._insert_arrow("task_folds", table)
            task.written = task.profiles
            metrics.TASK_FOLDS.labels("written").inc()
        self._keep(key, task)

    def _keep(self, key: tuple[str, str, str], task: _TaskSums) -> None:
        self._sums[key] = task
        self._held += _cost(task)
        while self._held > MAX_VALUES and len(self._sums) > 1:  # the least recently stored tasks go first
            self._held -= _cost(self._sums.popitem(last=False)[1])


def _cost(task: _TaskSums) -> int:
    """What a task's sums hold in memory, in node values (24 bytes each): a small task's
    objects, not its few values, are most of it."""
    extra = (task.sums.places is not None) + (task.sums.shares is not None)  # ~20 and 24 bytes a node
    return len(task.sums) * (1 + extra) + TASK_VALUES


def _added(sums: NodeSums, rows: ProfileRows, type_index: int) -> NodeSums:
    """The sums with the profile's nodes of a sample type and their places (for a thread)."""
    node, self_value, total = _node_part(rows, type_index)
    root = np.flatnonzero(node == 0)
    return add_node_values(sums, node, self_value, total, rows.places(GRANULARITY, node),
                           int(total[root[0]]) if len(root) else 0)


def _node_part(rows: ProfileRows, type_index: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    for part in rows.node_parts or []:
        if part["granularity"] == GRANULARITY and part["type_index"] == type_index:
            return part["values"]
    raise ValueError(f"profile {rows.profile_id} has no {GRANULARITY} nodes for sample type {type_index}")


def _task_fold_table(tenant: str, task_id: str, sample_type: str, task: _TaskSums, folded_at: int) -> pa.Table:
    """The row of a task's sums with their places, heaviest first (heaviest_first): the first
    view takes the prefix it shows, and no node is looked up in the tenant's node paths."""
    sums, places = task.sums, task.sums.places
    assert places is not None
    order = heaviest_first(sums)
    offsets = pa.array([0, len(sums)], pa.int32())

    def column(values: np.ndarray, typ: pa.DataType) -> pa.ListArray:
        return pa.ListArray.from_arrays(offsets, pa.array(values[order], typ))

    return pa.table({
        "tenant": [tenant], "task_id": [task_id], "granularity": [GRANULARITY], "sample_type": [sample_type],
        "profile_ids": pa.array([sorted(task.profiles)], pa.list_(pa.string())),
        "node_ids": column(sums.node, pa.uint64()),
        "self_values": column(sums.self_value, pa.int64()),
        "total_values": column(sums.total, pa.int64()),
        "parents": column(places.parent, pa.uint64()),
        "depths": column(places.depth, pa.uint32()),
        "frame_ids": column(places.frame_id, pa.uint64()),
        **_spread_columns(sums, order, offsets),
        "folded_at": pa.array([folded_at], pa.int64()),
    })


def _spread_columns(sums: NodeSums, order: np.ndarray, offsets: pa.Array) -> dict[str, pa.ListArray]:
    """How the task's instances share each node (m0009), in the row's order: what an analysis
    with instanceStats would look up in every profile. Empty where the sums have no shares."""
    if sums.shares is None:
        return {name: pa.array([[]], pa.list_(typ)) for name, typ in SPREAD_COLUMNS.items()}
    spread = settled_spread(sums.node, sums.shares)
    return {name: pa.ListArray.from_arrays(offsets, pa.array(values[order], typ))
            for (name, typ), values in zip(SPREAD_COLUMNS.items(), (spread.instances, spread.share_min,
                                                                   spread.share_max), strict=True)}


SPREAD_COLUMNS = {"instances": pa.uint32(), "share_mins": pa.float64(), "share_maxes": pa.float64()}
