"""m0004 applies to a data directory the earlier migrations made, rows and all."""
from __future__ import annotations

import asyncio

import pytest

from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.cluster_ddl import migration_ddl
from proftask.clickhouse.migrate import MIGRATIONS_TABLE, migrate

pytestmark = pytest.mark.readmodel


def test_a_data_directory_of_the_first_three_migrations_gains_the_folded_tables(tmp_path):
    async def run():
        ch = ClickHouse(f"chdb://{tmp_path}")
        await ch.open()
        try:
            await ch.command(MIGRATIONS_TABLE)
            for version, name, statements in migration_ddl():  # what an older proftask applied
                if version <= 3:
                    for statement in statements:
                        await ch.command(statement)
                    await ch.insert("proftask_migrations", [(version, name)], ["version", "name"])
            await ch.insert("profiles", [("acme", "t-1", "pod-1", "p-1", 1, ["samples/count"], 0, [5], "", 0, 1, 1,
                                          "e-1")],
                            ["tenant", "task_id", "instance_id", "profile_id", "uploaded_at", "sample_types",
                             "default_index", "totals", "period_type", "period", "size_bytes", "stack_count",
                             "event_id"])
            assert await migrate(ch) == [4]
            assert await migrate(ch) == []
            assert await ch.rows("SELECT profile_id FROM profiles") == [("p-1",)]
            assert await ch.rows("SELECT count() FROM nodes") == [(0,)]
            assert await ch.rows("SELECT count() FROM functions") == [(0,)]
        finally:
            await ch.close()

    asyncio.run(run())
