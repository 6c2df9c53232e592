"""The read-model tier: processor rows → RowWriter → embedded ClickHouse → query_svc's SQL,
in this process, without Kafka or HTTP. chDB allows one data directory per process, so the
whole tier shares one (and one event loop to drive the async client)."""
from __future__ import annotations

import asyncio

import pytest

from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrate import migrate


@pytest.fixture(scope="session")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="session")
def clickhouse(loop, tmp_path_factory):
    ch = ClickHouse(f"chdb://{tmp_path_factory.mktemp('chdb')}")
    loop.run_until_complete(ch.open())
    loop.run_until_complete(migrate(ch))
    yield ch
    loop.run_until_complete(ch.close())
