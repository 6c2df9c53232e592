"""Writing rows to ClickHouse for the processor and for replay: retried until ClickHouse takes
them (an outage pauses the caller instead of losing events)."""
from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from proftask import metrics
from proftask.clickhouse.client import ClickHouse
from services.processor.profile_rows import (FRAME_NAME_COLUMNS, PROFILE_COLUMNS, SAMPLE_COLUMNS,
                                             STACK_COLUMNS, ProfileRows)

log = logging.getLogger(__name__)
MAX_BACKOFF_S = 10.0
CHUNK_ROWS = 20_000  # moderate inserts keep the event loop responsive (serialisation holds the GIL)


class RowWriter:
    def __init__(self, clickhouse: ClickHouse):
        self.clickhouse = clickhouse
        self.healthy = True

    async def insert(self, table: str, rows: Sequence[Sequence], columns: Sequence[str]) -> None:
        for start in range(0, len(rows), CHUNK_ROWS):
            await self._insert_chunk(table, rows[start:start + CHUNK_ROWS], columns)

    async def _insert_chunk(self, table: str, rows: Sequence[Sequence], columns: Sequence[str]) -> None:
        backoff = 0.2
        while True:
            try:
                await self.clickhouse.insert(table, rows, columns)
                self.healthy = True
                metrics.ROWS_WRITTEN.labels(table).inc(len(rows))
                return
            except Exception as e:  # noqa: BLE001 - any failure of the sink is retried
                self.healthy = False
                log.warning("writing %d rows to %s failed (%s); retrying in %.1fs", len(rows), table, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def write_profile(self, rows: ProfileRows) -> None:
        """The profile row goes last: analysis only reads profiles listed in `profiles`, so a
        profile becomes visible whole or not at all."""
        await self.insert("frame_names", rows.frame_names, FRAME_NAME_COLUMNS)
        await self.insert("stacks", rows.stacks, STACK_COLUMNS)
        await self.insert("samples", rows.samples, SAMPLE_COLUMNS)
        await self.insert("profiles", [rows.profile], PROFILE_COLUMNS)
