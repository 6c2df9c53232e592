"""The migrations' DDL for one server or for a ClickHouse server cluster, generated from their
declarations (proftask/clickhouse/migrations): on a cluster every table becomes `<name>_local`
(Replicated*MergeTree, ON CLUSTER) plus `<name>` (Distributed over it by the table's shard key,
so that a task's rows live on one shard). Queries keep using `<name>`, so the SQL of proftask
does not change. A multi-shard cluster also needs `distributed_product_mode = 'global'` for the
joins (see deploy/clickhouse/README.md). Pure (`proftask migrate --print-ddl --cluster NAME`)."""
from __future__ import annotations

from proftask.clickhouse.migrations import all_migrations


def migration_ddl(cluster: str | None = None) -> list[tuple[int, str, list[str]]]:
    """(version, name, statements) of every migration, for one server or for `cluster`."""
    return [(m.version, m.name, m.statements(cluster)) for m in all_migrations()]
