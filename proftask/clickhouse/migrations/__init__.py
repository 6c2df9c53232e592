"""ClickHouse DDL as ordered, versioned migrations (Snuba's habit): a migration is applied once,
recorded in `proftask_migrations`, and never edited after it has shipped; change a table with a
new migration."""
from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    forwards: tuple[str, ...]  # statements, applied in order; each must be re-runnable
    tables: tuple[str, ...]    # the read-model tables it creates (replay drops and rebuilds them)


def all_migrations() -> list[Migration]:
    from proftask.clickhouse.migrations import (m0001_task_tables, m0002_profile_tables, m0003_retention,
                                              m0004_folded_tables)

    migrations = [m0001_task_tables.MIGRATION, m0002_profile_tables.MIGRATION, m0003_retention.MIGRATION,
                  m0004_folded_tables.MIGRATION]
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions)), "migration versions must be unique and ordered"
    return migrations
