"""The migrations' DDL for a ClickHouse server cluster: every table becomes `<name>_local`
(Replicated*MergeTree, ON CLUSTER) plus `<name>` (Distributed over it, sharded so that a task's
rows live on one shard). Queries keep using `<name>`, so the SQL of proftask does not change.
Pure: statements in, statements out (`proftask migrate --print-ddl --cluster NAME`)."""
from __future__ import annotations

import re

from proftask.clickhouse.migrations import all_migrations

# Task-scoped tables shard by task; the shared dictionaries by their id. A multi-shard cluster
# also needs `distributed_product_mode = 'global'` for the joins (see deploy/clickhouse/README.md).
SHARD_KEYS = {
    "tasks": "cityHash64(tenant, task_id)",
    "task_logs": "cityHash64(tenant, task_id)",
    "profiles": "cityHash64(tenant, task_id)",
    "samples": "cityHash64(tenant, task_id)",
    "nodes": "cityHash64(tenant, task_id)",
    "functions": "cityHash64(tenant, task_id)",
    "stacks": "stack_id",
    "frame_names": "frame_id",
}
_CREATE = re.compile(r"CREATE TABLE IF NOT EXISTS (\w+) (\(.*\))\s*ENGINE = (\w+)(.*)", re.S)
_ALTER = re.compile(r"ALTER TABLE (\w+) (.*)", re.S)


def cluster_statements(statement: str, cluster: str) -> list[str]:
    sql = " ".join(statement.split())
    if m := _CREATE.fullmatch(sql):
        table, columns, engine, rest = m.groups()
        local = f"{table}_local"
        path = f"'/clickhouse/tables/{{shard}}/{{database}}/{local}', '{{replica}}'"
        return [f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {cluster} {columns} "
                f"ENGINE = Replicated{engine}({path}){rest}",
                f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER {cluster} AS {local} "
                f"ENGINE = Distributed({cluster}, currentDatabase(), {local}, {SHARD_KEYS[table]})"]
    if m := _ALTER.fullmatch(sql):
        table, change = m.groups()
        out = [f"ALTER TABLE {table}_local ON CLUSTER {cluster} {change}"]
        if change.startswith("ADD COLUMN"):  # the Distributed table shows the column too
            out.append(f"ALTER TABLE {table} ON CLUSTER {cluster} {change}")
        return out
    raise ValueError(f"no cluster form for: {sql[:80]}")


def migration_ddl(cluster: str | None = None) -> list[tuple[int, str, list[str]]]:
    """(version, name, statements) of every migration, for one server or for `cluster`."""
    out = []
    for m in all_migrations():
        statements = [" ".join(s.split()) for s in m.forwards]
        if cluster:
            statements = [c for s in statements for c in cluster_statements(s, cluster)]
        out.append((m.version, m.name, statements))
    return out
