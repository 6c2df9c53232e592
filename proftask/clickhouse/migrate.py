"""Apply pending migrations in order and record them."""
from __future__ import annotations

import logging

from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.cluster_ddl import migration_ddl
from proftask.clickhouse.migrations import all_migrations

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS proftask_migrations (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree ORDER BY version
"""


def migrations_table(cluster: str | None) -> str:
    if not cluster:
        return MIGRATIONS_TABLE
    return (MIGRATIONS_TABLE.replace("proftask_migrations (", f"proftask_migrations ON CLUSTER {cluster} (")
            .replace("ENGINE = ReplacingMergeTree", "ENGINE = ReplicatedReplacingMergeTree("
                     "'/clickhouse/tables/{shard}/{database}/proftask_migrations', '{replica}')"))


async def applied_versions(ch: ClickHouse, cluster: str | None = None) -> set[int]:
    await ch.command(migrations_table(cluster))
    return {row[0] for row in await ch.rows("SELECT version FROM proftask_migrations FINAL")}


async def migrate(ch: ClickHouse, cluster: str | None = None) -> list[int]:
    """Apply the pending migrations (to one server, or ON CLUSTER `cluster`); returns their versions."""
    done = await applied_versions(ch, cluster)
    applied = []
    for version, name, statements in migration_ddl(cluster):
        if version in done:
            continue
        for statement in statements:
            await ch.command(statement)
        await ch.insert("proftask_migrations", [(version, name)], ["version", "name"])
        log.info("applied migration %04d_%s", version, name)
        applied.append(version)
    return applied


async def drop_read_models(ch: ClickHouse, cluster: str | None = None) -> list[str]:
    """Drop every table the migrations created, and the record of them (for replay)."""
    on = f" ON CLUSTER {cluster}" if cluster else ""
    dropped = []
    for migration in reversed(all_migrations()):
        for table in migration.tables:
            for name in ([table, f"{table}_local"] if cluster else [table]):
                await ch.command(f"DROP TABLE IF EXISTS {name}{on}")
                dropped.append(name)
    await ch.command(f"DROP TABLE IF EXISTS proftask_migrations{on}")
    return dropped
