"""Writing rows to ClickHouse for the processor and for replay: retried until ClickHouse takes
them (an outage pauses the caller instead of losing events)."""
from __future__ import annotations

import functools
import asyncio
import collections
import logging
from collections.abc import Awaitable, Callable, Sequence

import numpy as np
import pyarrow as pa

from proftask import metrics
from proftask.clickhouse.client import ClickHouse
from proftask.config import RetentionPolicy
from services.processor.profile_rows import ProfileRows

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 10.0
CHUNK_ROWS = 20_000  # moderate inserts keep the event loop responsive (serialisation holds the GIL)
KNOWN_IDS = 4_000_000  # ids of stacks and frames this process already wrote (~32 bytes each)
ARROW_CHUNK_ROWS = 500_000
# Task-scoped tables: their rows carry the tenant's retention_days, stamped here from its policy
# (stacks and frame_names are shared by every profile of a tenant and are not expired row by row).
RETAINED = frozenset({"tasks", "task_logs", "profiles", "samples", "nodes", "functions"})


class KnownIds:
    """Rows already written by this process, by their whole key (tenant, id), newest kept:
    instances of one fleet share most of their stacks, so most of a profile's stacks need not
    be written again. The key is the table's key: the same stack of another tenant is another
    row, which this process has not written. Forgetting a key only costs a rewrite, which the
    tables fold."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        # (tenant number << 64) | id: one int per key, no tuple, no collision between tenants
        self._keys: collections.OrderedDict[int, None] = collections.OrderedDict()
        self._tenant_numbers: dict[str, int] = {}

    def _base(self, tenant: str) -> int:
        number = self._tenant_numbers.setdefault(tenant, len(self._tenant_numbers))
        return number << 64

    def unknown_mask(self, tenant: str, ids: np.ndarray) -> np.ndarray:
        base = self._base(tenant)
        return np.fromiter(((base | int(i)) not in self._keys for i in ids), dtype=bool, count=len(ids))

    def add(self, tenant: str, ids) -> None:
        base = self._base(tenant)
        for i in ids:
            self._keys[base | int(i)] = None
        while len(self._keys) > self.capacity:
            self._keys.popitem(last=False)


class RowWriter:
    def __init__(self, clickhouse: ClickHouse, retention: RetentionPolicy | None = None):
        self.clickhouse = clickhouse
        self.retention = retention or RetentionPolicy()
        self.healthy = True
        self._known_stacks = KnownIds(KNOWN_IDS)
        self._known_frames = KnownIds(KNOWN_IDS)

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

    async def insert_arrow(self, table: str, arrow_table) -> None:
        if table in RETAINED and arrow_table.num_rows:  # one tenant per table: one profile's rows
            days = self.retention.days_for(arrow_table.column("tenant")[0].as_py())
            arrow_table = arrow_table.append_column("retention_days", pa.array([days] * arrow_table.num_rows,
                                                                                pa.uint16()))
        for start in range(0, arrow_table.num_rows, ARROW_CHUNK_ROWS):
            chunk = arrow_table.slice(start, ARROW_CHUNK_ROWS)
            await self._retry(table, chunk.num_rows, functools.partial(self.clickhouse.insert_arrow, table, chunk))

    async def write_profile(self, rows: ProfileRows) -> None:
        """The profile row goes last: analysis only reads profiles listed in `profiles`, so a
        profile becomes visible whole or not at all."""
        frame_ids = np.fromiter((r["frame_id"] for r in rows.frame_names), dtype=np.uint64,
                                count=len(rows.frame_names))
        new_frames = self._known_frames.unknown_mask(rows.tenant, frame_ids)
        await self.insert("frame_names", [r for r, new in zip(rows.frame_names, new_frames, strict=False) if new])
        self._known_frames.add(rows.tenant, frame_ids[new_frames])
        new_stacks = self._known_stacks.unknown_mask(rows.tenant, rows.stack_ids)
        if new_stacks.any():
            await self.insert_arrow("stacks", rows.stacks_table(new_stacks))
        self._known_stacks.add(rows.tenant, rows.stack_ids[new_stacks])
        await self.insert_arrow("samples", rows.samples_table())
        await self.insert_arrow("nodes", rows.nodes_table())
        await self.insert_arrow("functions", rows.functions_table())
        await self.insert("profiles", [rows.profile])
