"""The read-model tier: processor rows → RowWriter → embedded ClickHouse → the analysis SQL (proftask/analysis/),
in this process, without Kafka or HTTP. chDB serves one data directory per process at a time,
so each module opens its own and closes it before the next module (or another tier) opens one."""
from __future__ import annotations

import asyncio

import pytest

from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrate import migrate


@pytest.fixture(scope="module")
def loop():
    loop = asyncio.new_event_loop()
    yield loop
    loop.close()


@pytest.fixture(scope="module")
def clickhouse(loop, tmp_path_factory):
    ch = ClickHouse(f"chdb://{tmp_path_factory.mktemp('chdb')}")
    loop.run_until_complete(ch.open())
    loop.run_until_complete(migrate(ch))
    yield ch
    loop.run_until_complete(ch.close())
