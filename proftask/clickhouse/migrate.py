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


# Each replay's start (finished 0) and end (finished 1). Not a read model: replay keeps it, and a
# server refuses to start while the last replay has not ended (its tables are partial).
REPLAYS_TABLE = """
CREATE TABLE IF NOT EXISTS proftask_replays (
    at DateTime64(6) DEFAULT now64(6),
    finished UInt8
) ENGINE = ReplacingMergeTree ORDER BY at
"""


def _bookkeeping_table(ddl: str, table: str, cluster: str | None) -> str:
    if not cluster:
        return ddl
    return (ddl.replace(f"{table} (", f"{table} ON CLUSTER {cluster} (")
            .replace("ENGINE = ReplacingMergeTree", "ENGINE = ReplicatedReplacingMergeTree("
                     f"'/clickhouse/tables/{{shard}}/{{database}}/{table}', '{{replica}}')"))


def migrations_table(cluster: str | None) -> str:
    return _bookkeeping_table(MIGRATIONS_TABLE, "proftask_migrations", cluster)


class ReplayUnfinished(RuntimeError):
    """The last `proftask replay` into this ClickHouse did not end: its tables hold part of the history."""


async def mark_replay(ch: ClickHouse, cluster: str | None, finished: bool) -> None:
    await ch.command(_bookkeeping_table(REPLAYS_TABLE, "proftask_replays", cluster))
    await ch.insert("proftask_replays", [(int(finished),)], ["finished"])


async def require_no_unfinished_replay(ch: ClickHouse) -> None:
    """Raises ReplayUnfinished when a replay started and never ended (killed, or failed)."""
    if not (await ch.rows("EXISTS TABLE proftask_replays"))[0][0]:
        return
    rows = await ch.rows("SELECT argMax(finished, at), toString(max(at)) FROM proftask_replays")
    if rows and rows[0][1] != "1970-01-01 00:00:00.000000" and not rows[0][0]:
        raise ReplayUnfinished(f"the replay started at {rows[0][1]} did not finish, so ClickHouse holds only "
                               "part of the history: run it again (make replay, or proftask replay), then start")


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
