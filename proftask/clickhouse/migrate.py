"""Apply pending migrations in order and record them."""
from __future__ import annotations

import logging

from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrations import CopyRows, all_migrations, op_statements

log = logging.getLogger(__name__)

MIGRATIONS_TABLE = """
CREATE TABLE IF NOT EXISTS proftask_migrations (
    version UInt32,
    name String,
    applied_at DateTime DEFAULT now()
) ENGINE = ReplacingMergeTree ORDER BY version
"""


def bookkeeping_table(ddl: str, table: str, cluster: str | None) -> str:
    """A table of proftask's own records, not a read model: as written, or replicated ON CLUSTER."""
    if not cluster:
        return ddl
    return (ddl.replace(f"{table} (", f"{table} ON CLUSTER {cluster} (")
            .replace("ENGINE = ReplacingMergeTree", "ENGINE = ReplicatedReplacingMergeTree("
                     f"'/clickhouse/tables/{{shard}}/{{database}}/{table}', '{{replica}}')"))


def migrations_table(cluster: str | None) -> str:
    return bookkeeping_table(MIGRATIONS_TABLE, "proftask_migrations", cluster)


async def applied_versions(ch: ClickHouse, cluster: str | None = None) -> set[int]:
    await ch.command(migrations_table(cluster))
    return {row[0] for row in await ch.rows("SELECT version FROM proftask_migrations FINAL")}


async def migrate(ch: ClickHouse, cluster: str | None = None) -> list[int]:
    """Apply the pending migrations (to one server, or ON CLUSTER `cluster`); returns their versions."""
    done = await applied_versions(ch, cluster)
    applied = []
    for migration in all_migrations():
        if migration.version in done:
            continue
        for op in migration.forwards:
            if isinstance(op, CopyRows) and not await _all_exist(ch, op.reads):
                # a run cut short after it dropped what this copy reads: the copy was done
                log.info("migration %04d_%s: %s already copied (%s dropped)", migration.version, migration.name,
                         op.table, ", ".join(op.reads))
                continue
            for statement in op_statements(op, cluster):
                await ch.command(statement)
        await ch.insert("proftask_migrations", [(migration.version, migration.name)], ["version", "name"])
        log.info("applied migration %04d_%s", migration.version, migration.name)
        applied.append(migration.version)
    return applied


async def _all_exist(ch: ClickHouse, tables: tuple[str, ...]) -> bool:
    for table in tables:
        if not (await ch.rows(f"EXISTS TABLE {table}"))[0][0]:
            return False
    return True


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
