"""Apply pending migrations in order and record them."""
from __future__ import annotations

import logging

from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrations import all_migrations

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS proftask_migrations (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree ORDER BY version
"""


async def applied_versions(ch: ClickHouse) -> set[int]:
    await ch.command(MIGRATIONS_TABLE)
    return {row[0] for row in await ch.rows("SELECT version FROM proftask_migrations FINAL")}


async def migrate(ch: ClickHouse) -> list[int]:
    """Returns the versions applied now."""
    done = await applied_versions(ch)
    applied = []
    for migration in all_migrations():
        if migration.version in done:
            continue
        for statement in migration.forwards:
            await ch.command(statement)
        await ch.insert("proftask_migrations", [(migration.version, migration.name)], ["version", "name"])
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration.version)
    return applied


async def drop_read_models(ch: ClickHouse) -> list[str]:
    """Drop every table the migrations created, and the record of them (for replay)."""
    dropped = []
    for migration in reversed(all_migrations()):
        for table in migration.tables:
            await ch.command(f"DROP TABLE IF EXISTS {table}")
            dropped.append(table)
    await ch.command("DROP TABLE IF EXISTS proftask_migrations")
    return dropped
