"""Writing rows to ClickHouse for the processor and for replay: retried until ClickHouse takes
them (an outage pauses the caller instead of losing events)."""
from __future__ import annotations

import functools
import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import pyarrow as pa

from proftask import metrics
from proftask.clickhouse.client import ClickHouse
from proftask.config import RetentionPolicy
from proftask.core.node_table import sorted_lookup
from proftask.processing.profile_rows import ProfileRows
from proftask.processing.task_folds import TaskFolds

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 10.0
CHUNK_ROWS = 20_000  # moderate inserts keep the event loop responsive (serialisation holds the GIL)
KNOWN_IDS = 4_000_000  # ids of stacks and frames this process already wrote (8 bytes each)
ARROW_CHUNK_ROWS = 500_000
# Task-scoped tables: their rows carry the tenant's retention_days, stamped here from its policy
# (stacks and frame_names are shared by every profile of a tenant and are not expired row by row).
RETAINED = frozenset({"tasks", "task_logs", "profiles", "samples", "node_values", "function_values",
                      "task_folds"})
KNOWN_NODES = 8_000_000  # node paths this process already wrote (8 bytes each)


class KnownKeys:
    """Rows already written by this process (stacks, frames, node paths), by their key within a
    tenant, as a sorted numpy array per tenant: instances of one fleet share most of their
    stacks and nodes, so most of a profile's need not be written again, and a large profile has
    ~10^6 nodes, too many to look up one by one. The same key of another tenant is another row,
    which this process has not written. Past the capacity the oldest tenants are forgotten,
    which only costs a rewrite (the tables fold it)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._nodes: dict[str, np.ndarray] = {}  # tenant -> sorted unique node hashes

    def unknown_mask(self, tenant: str, nodes: np.ndarray) -> np.ndarray:
        known = self._nodes.get(tenant)
        if known is None:
            return np.ones(len(nodes), dtype=bool)
        return ~sorted_lookup(known, nodes)[1]

    def add(self, tenant: str, nodes: np.ndarray) -> None:
        if len(nodes) == 0:
            return
        # sorted runs (the known nodes, each granularity's nodes as folded): a stable sort merges
        # them in linear time, where union1d would sort from scratch
        merged = np.sort(np.concatenate([self._nodes.pop(tenant, np.zeros(0, np.uint64)), nodes]), kind="stable")
        merged = merged[np.r_[True, merged[1:] != merged[:-1]]] if len(merged) else merged
        while self._nodes and sum(map(len, self._nodes.values())) + len(merged) > self.capacity:
            self._nodes.pop(next(iter(self._nodes)))
        self._nodes[tenant] = merged[-self.capacity:]


class RowWriter:
    def __init__(self, clickhouse: ClickHouse, retention: RetentionPolicy | None = None):
        self.clickhouse = clickhouse
        self.retention = retention or RetentionPolicy()
        self.healthy = True
        self._known_stacks = KnownKeys(KNOWN_IDS)
        self._known_frames = KnownKeys(KNOWN_IDS)
        self._known_files = KnownKeys(KNOWN_IDS)  # (frame, file) pairs: ProfileRows.function_file_keys
        self._known_nodes = KnownKeys(KNOWN_NODES)
        self.task_folds = TaskFolds(clickhouse, self.insert_arrow_once)

    async def _retry(self, table: str, n_rows: int, write: Callable[[], Awaitable[None]]) -> None:
        backoff = 0.2
        while True:
            try:
                await write()
                self.healthy = True
                metrics.ROWS_WRITTEN.labels(table).inc(n_rows)
                return
            except Exception as e:  # noqa: BLE001 - any failure of the sink is retried
                self.healthy = False
                log.warning("writing %d rows to %s failed (%s); retrying in %.1fs", n_rows, table, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def insert(self, table: str, named_rows: Sequence[dict]) -> None:
        """Rows as dicts of named columns, every row with the same columns."""
        if not named_rows:
            return
        columns = list(named_rows[0])
        rows = [[r[c] for c in columns] for r in named_rows]
        if table in RETAINED:  # each row's tenant decides its retention
            tenant_at = columns.index("tenant")
            rows = [[*r, self.retention.days_for(r[tenant_at])] for r in rows]
            columns.append("retention_days")
        for start in range(0, len(rows), CHUNK_ROWS):
            chunk = rows[start:start + CHUNK_ROWS]
            await self._retry(table, len(chunk), functools.partial(self.clickhouse.insert, table, chunk, columns))

    def _stamped(self, table: str, arrow_table: pa.Table) -> pa.Table:
        """A task-scoped table of ONE tenant's rows with that tenant's retention_days."""
        if table in RETAINED and arrow_table.num_rows:
            days = self.retention.days_for(arrow_table.column("tenant")[0].as_py())
            arrow_table = arrow_table.append_column("retention_days", pa.array([days] * arrow_table.num_rows,
                                                                                pa.uint16()))
        return arrow_table

    async def insert_arrow_once(self, table: str, arrow_table: pa.Table) -> None:
        """One try, for rows nothing is lost without (a task's merged tree: the query sums the
        profiles instead); a failure raises instead of holding up the batches behind it."""
        await self.clickhouse.insert_arrow(table, self._stamped(table, arrow_table))
        metrics.ROWS_WRITTEN.labels(table).inc(arrow_table.num_rows)

    async def insert_arrow(self, table: str, arrow_table: pa.Table | Sequence[pa.Table]) -> None:
        """One Arrow table, or several (each of one tenant, e.g. one per profile) inserted as one:
        a ClickHouse insert costs far more than its rows do, so a batch goes in at once."""
        parts = [self._stamped(table, t) for t in ([arrow_table] if isinstance(arrow_table, pa.Table)
                                                    else arrow_table) if t.num_rows]
        if not parts:
            return
        # the profiles' tables side by side, nothing copied: ClickHouse.insert_arrow makes them one
        # in its executor (combined on the event loop, a batch's node values took ~0.05 s a large
        # profile)
        arrow_table = parts[0] if len(parts) == 1 else pa.concat_tables(parts)
        for start in range(0, arrow_table.num_rows, ARROW_CHUNK_ROWS):
            chunk = arrow_table.slice(start, ARROW_CHUNK_ROWS)
            await self._retry(table, chunk.num_rows, functools.partial(self.clickhouse.insert_arrow, table, chunk))

    async def write_profile(self, rows: ProfileRows) -> None:
        await self.write_profiles([rows])

    async def write_profiles(self, batch: Sequence[ProfileRows],
                             written: Callable[[], Awaitable[None]] | None = None) -> None:
        """A batch of profiles, each table in one insert. The profile rows go last: analysis only
        reads profiles listed in `profiles`, so a profile becomes visible whole or not at all.
        Stacks and frames this process wrote before, or another profile of the batch carries,
        are written once. Then `written` is awaited (the processor tells the tasks their profiles
        are stored), and each task's merged tree takes them in (task_folds.py): an analysis
        meanwhile sums the profiles, so the tasks do not wait ~0.1-0.4 s a large tree for it."""
        if not batch:
            return
        for rows in batch:
            self.task_folds.expect(rows.tenant, rows.task_id, rows.profile_id)
        try:
            await self._write_profiles(batch)
        finally:
            for rows in batch:
                self.task_folds.settle(rows.tenant, rows.task_id, rows.profile_id)
        if written is not None:
            try:
                await written()
            except Exception:
                # the rows are written: the tasks' trees take them in still (another profile of a
                # task may have left its row to this one), and the batch is taken again
                await self.task_folds.add(batch)
                raise
        await self.task_folds.add(batch)

    async def _write_profiles(self, batch: Sequence[ProfileRows]) -> None:
        frames: list[pa.Table] = []
        stacks: list[pa.Table] = []
        written_frames: list[tuple[str, np.ndarray]] = []
        written_stacks: list[tuple[str, np.ndarray]] = []
        files: list[pa.Table] = []
        written_files: list[tuple[str, np.ndarray]] = []
        known_stacks: list[bool] = []  # per profile: every stack of it written before this batch
        seen_frames, seen_stacks, seen_files = KnownKeys(KNOWN_IDS), KnownKeys(KNOWN_IDS), KnownKeys(KNOWN_IDS)
        for rows in batch:
            file_keys = rows.function_file_keys
            new_files = self._known_files.unknown_mask(rows.tenant, file_keys) & _unseen(seen_files, rows.tenant,
                                                                                          file_keys)
            if new_files.any():
                files.append(rows.function_files.filter(pa.array(new_files)))
            written_files.append((rows.tenant, file_keys[new_files]))
            frame_ids = rows.frame_names.column("frame_id").to_numpy()
            new_frames = self._known_frames.unknown_mask(rows.tenant, frame_ids) & _unseen(seen_frames, rows.tenant,
                                                                                          frame_ids)
            if new_frames.any():
                frames.append(rows.frame_names.filter(pa.array(new_frames)))
            written_frames.append((rows.tenant, frame_ids[new_frames]))
            unknown_stacks = self._known_stacks.unknown_mask(rows.tenant, rows.stack_ids)
            known_stacks.append(not unknown_stacks.any())
            new_stacks = unknown_stacks & _unseen(seen_stacks, rows.tenant, rows.stack_ids)
            if new_stacks.any():
                stacks.append(rows.stacks_table(new_stacks))
            written_stacks.append((rows.tenant, rows.stack_ids[new_stacks]))
        await self.insert_arrow("frame_names", frames)
        for tenant, ids in written_frames:
            self._known_frames.add(tenant, ids)
        await self.insert_arrow("function_files", files)
        for tenant, keys in written_files:
            self._known_files.add(tenant, keys)
        await self.insert_arrow("stacks", stacks)
        new_paths = self._new_node_paths([rows for rows, known in zip(batch, known_stacks, strict=True) if not known])
        await self.insert_arrow("node_paths", [table for _, table in new_paths])
        for tenant, table in new_paths:
            self._known_nodes.add(tenant, table.column("node").to_numpy())
        # known only once their node paths are written too: a profile whose stacks are all known
        # has every node path written (a node is a prefix of some stack), and skips looking up
        # its ~10^6 nodes (0.04 s), which a fleet's instances, sharing their stacks, mostly do
        for tenant, ids in written_stacks:
            self._known_stacks.add(tenant, ids)
        await self.insert_arrow("samples", [rows.samples_table() for rows in batch])
        await self.insert_arrow("node_values", [rows.node_values_table() for rows in batch])
        await self.insert_arrow("function_values", [rows.function_values_table() for rows in batch])
        await self.insert("profiles", [rows.profile for rows in batch])

    def _new_node_paths(self, batch: Sequence[ProfileRows]) -> list[tuple[str, pa.Table]]:
        """The batch's node paths this process has not written (a path both granularities share
        may come twice: node_paths folds it)."""
        out = []
        # nodes taken from earlier profiles of the batch, sorted: looked up as the known ones are
        # (np.isin hashed two large profiles' ~850k nodes each in 0.6-0.9 s, on the event loop)
        seen = KnownKeys(KNOWN_NODES)
        for rows in batch:
            nodes = (rows.node_paths or {}).get("node", np.zeros(0, np.uint64))
            keep = self._known_nodes.unknown_mask(rows.tenant, nodes) & seen.unknown_mask(rows.tenant, nodes)
            if keep.any():
                out.append((rows.tenant, rows.node_paths_table(keep)))
                seen.add(rows.tenant, nodes[keep])
        return out


def _unseen(seen: KnownKeys, tenant: str, ids: np.ndarray) -> np.ndarray:
    """True where an id is not in `seen` (nor earlier in ids); adds them to `seen`."""
    first = np.zeros(len(ids), dtype=bool)
    first[np.unique(ids, return_index=True)[1]] = True
    mask = first & seen.unknown_mask(tenant, ids)
    seen.add(tenant, ids[mask])
    return mask
