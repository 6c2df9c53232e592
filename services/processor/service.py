"""The processor as a component of `proftask serve`: a Faust app whose agents write the task
events into ClickHouse. At-least-once: a batch is acknowledged only after its rows are
written, and the rows fold duplicates, so redelivery changes nothing."""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiohttp import web

from proftask import events, metrics
from proftask.clickhouse.client import ClickHouse
from proftask.config import Settings
from proftask.events.v1 import events_pb2 as pb
from proftask.faust_app import create_faust_app, faust_ready
from proftask.kafka.topics import Topics
from services.processor.rows import TASK_COLUMNS, TASK_LOG_COLUMNS, task_log_rows, task_rows

log = logging.getLogger(__name__)
BATCH_SIZE = 500
BATCH_WINDOW_S = 0.2
MAX_BACKOFF_S = 10.0


class ProcessorService:
    name = "processor"

    def __init__(self, settings: Settings, topics: Topics, clickhouse: ClickHouse):
        self.settings, self.topics, self.clickhouse = settings, topics, clickhouse
        self.clickhouse_ok = False
        self._started = False
        self.app = create_faust_app(f"{settings.topic_prefix}processor", settings)
        self._add_agent(topics.tasks, "tasks-to-clickhouse", "tasks", TASK_COLUMNS, task_rows)
        self._add_agent(topics.task_events, "task-logs-to-clickhouse", "task_logs", TASK_LOG_COLUMNS,
                        task_log_rows)

    def _add_agent(self, topic_name: str, agent_name: str, table: str, columns: tuple[str, ...],
                   to_rows: Callable[[pb.Envelope], list[tuple]]) -> None:
        topic = self.app.topic(topic_name, key_type=bytes, value_type=bytes)

        async def write_rows(stream):
            async for batch in stream.take(BATCH_SIZE, within=BATCH_WINDOW_S):
                rows = []
                for value in batch:
                    try:
                        env = events.decode(value)
                    except Exception:  # noqa: BLE001 - a poison record must not stall the partition
                        log.error("%s: undecodable event skipped (%d bytes)", agent_name, len(value))
                        continue
                    metrics.EVENTS_CONSUMED.labels(agent_name, env.type).inc()
                    rows.extend(to_rows(env))
                await self._write(table, rows, columns)

        self.app.agent(topic, name=agent_name)(write_rows)

    async def _write(self, table: str, rows: list[tuple], columns: tuple[str, ...]) -> None:
        """Retries until ClickHouse takes the rows: the batch stays unacknowledged meanwhile, so
        an outage pauses the processor instead of losing events."""
        backoff = 0.2
        while True:
            try:
                await self.clickhouse.insert(table, rows, columns)
                self.clickhouse_ok = True
                metrics.ROWS_WRITTEN.labels(table).inc(len(rows))
                return
            except Exception as e:  # noqa: BLE001 - any failure of the sink is retried
                self.clickhouse_ok = False
                log.warning("writing %d rows to %s failed (%s); retrying in %.1fs", len(rows), table, e, backoff)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)

    async def start(self) -> None:
        self.clickhouse_ok = True
        self.app.finalize()
        await self.app.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.app.stop()

    def readiness(self) -> dict[str, bool]:
        return {"processor.consumer": faust_ready(self.app, self._started),
                "processor.clickhouse": self.clickhouse_ok}

    def add_routes(self, app: web.Application) -> None:
        pass
