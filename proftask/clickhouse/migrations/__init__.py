"""ClickHouse DDL as ordered, versioned migrations (Snuba's habit): a migration is applied once,
recorded in `proftask_migrations`, and never changed after it has shipped; change a table with a
new migration.

A migration is declarations (a table with its columns, engine, order and shard key; a column
added; a TTL), not SQL text: the single-server DDL and the cluster DDL (`<name>_local`,
Replicated, plus `<name>`, Distributed over it by the shard key) are both generated from them."""
from __future__ import annotations

import dataclasses


def _path(table: str) -> str:
    return f"'/clickhouse/tables/{{shard}}/{{database}}/{table}', '{{replica}}'"


@dataclasses.dataclass(frozen=True)
class CreateTable:
    name: str
    columns: tuple[tuple[str, str], ...]  # (name, type with any DEFAULT)
    engine: str                          # a *MergeTree engine, without arguments
    order_by: tuple[str, ...]
    shard_key: str                       # how the cluster's Distributed table spreads the rows
    ttl: str = ""                        # a TTL expression with any WHERE, or nothing
    version: str = ""                    # a ReplacingMergeTree's version column: the greatest is kept

    def _body(self, engine: str) -> str:
        ttl = f" TTL {self.ttl}" if self.ttl else ""
        return f"ENGINE = {engine} ORDER BY ({', '.join(self.order_by)}){ttl}"

    def _columns(self) -> str:
        return "(" + ", ".join(f"{c} {t}" for c, t in self.columns) + ")"

    def _version_arg(self) -> str:
        return f", {self.version}" if self.version else ""

    def single(self) -> list[str]:
        engine = f"{self.engine}({self.version})" if self.version else self.engine
        return [f"CREATE TABLE IF NOT EXISTS {self.name} {self._columns()} {self._body(engine)}"]

    def cluster(self, cluster: str) -> list[str]:
        local = f"{self.name}_local"
        return [f"CREATE TABLE IF NOT EXISTS {local} ON CLUSTER {cluster} {self._columns()} "
                f"{self._body(f'Replicated{self.engine}({_path(local)}{self._version_arg()})')}",
                f"CREATE TABLE IF NOT EXISTS {self.name} ON CLUSTER {cluster} AS {local} "
                f"ENGINE = Distributed({cluster}, currentDatabase(), {local}, {self.shard_key})"]


@dataclasses.dataclass(frozen=True)
class AddColumn:
    table: str
    column: str
    type: str  # with any DEFAULT

    def single(self) -> list[str]:
        return [f"ALTER TABLE {self.table} ADD COLUMN IF NOT EXISTS {self.column} {self.type}"]

    def cluster(self, cluster: str) -> list[str]:  # the Distributed table shows the column too
        change = f"ADD COLUMN IF NOT EXISTS {self.column} {self.type}"
        return [f"ALTER TABLE {self.table}_local ON CLUSTER {cluster} {change}",
                f"ALTER TABLE {self.table} ON CLUSTER {cluster} {change}"]


@dataclasses.dataclass(frozen=True)
class ModifyTTL:
    table: str
    ttl: str

    def single(self) -> list[str]:
        return [f"ALTER TABLE {self.table} MODIFY TTL {self.ttl}"]

    def cluster(self, cluster: str) -> list[str]:  # rows live in the local tables only
        return [f"ALTER TABLE {self.table}_local ON CLUSTER {cluster} MODIFY TTL {self.ttl}"]


@dataclasses.dataclass(frozen=True)
class CopyRows:
    """Fill a table from a query over others (a backfill when a migration changes a table's
    shape). Queries name `<name>`, which on a cluster is the Distributed table, so the same SQL
    serves both layouts. Run again (a migration cut short), it copies the rows again: give it a
    ReplacingMergeTree target whose key makes the copies one row. `reads` names the tables the
    query reads: when one of them is gone, the migration dropped it after this copy (it was cut
    short after a DropTable), so the runner skips the copy rather than fail on the missing table."""
    table: str
    columns: tuple[str, ...]
    select: str
    reads: tuple[str, ...]

    def single(self) -> list[str]:
        return [f"INSERT INTO {self.table} ({', '.join(self.columns)}) {self.select}"]

    def cluster(self, cluster: str) -> list[str]:
        return self.single()


@dataclasses.dataclass(frozen=True)
class DropTable:
    name: str

    def single(self) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.name}"]

    def cluster(self, cluster: str) -> list[str]:
        return [f"DROP TABLE IF EXISTS {self.name} ON CLUSTER {cluster}",
                f"DROP TABLE IF EXISTS {self.name}_local ON CLUSTER {cluster}"]


Operation = CreateTable | AddColumn | ModifyTTL | CopyRows | DropTable


@dataclasses.dataclass(frozen=True)
class Migration:
    version: int
    name: str
    forwards: tuple[Operation, ...]  # applied in order; each is re-runnable (see CopyRows.reads)

    @property
    def tables(self) -> tuple[str, ...]:
        """The read-model tables it creates (replay drops and rebuilds them)."""
        return tuple(op.name for op in self.forwards if isinstance(op, CreateTable))

    def statements(self, cluster: str | None = None) -> list[str]:
        return [s for op in self.forwards for s in op_statements(op, cluster)]


def op_statements(op: Operation, cluster: str | None = None) -> list[str]:
    return op.cluster(cluster) if cluster else op.single()


def retention_ttl(time_column: str) -> str:
    """Rows expire retention_days (stamped by the processor from the tenant's policy, 0 = keep)
    after their time (epoch ms)."""
    return (f"toDateTime(intDiv({time_column}, 1000)) + toIntervalDay(retention_days) "
            f"WHERE retention_days > 0")


def all_migrations() -> list[Migration]:
    from proftask.clickhouse.migrations import (m0001_task_tables, m0002_profile_tables, m0003_retention,
                                              m0004_folded_tables, m0005_packed_folds, m0006_task_folds,
                                              m0007_placed_task_folds, m0008_frame_files, m0009_task_fold_spread,
                                              m0010_profile_value_bounds, m0011_profile_time,
                                              m0012_profile_default_named, m0013_function_files)

    migrations = [m0001_task_tables.MIGRATION, m0002_profile_tables.MIGRATION, m0003_retention.MIGRATION,
                  m0004_folded_tables.MIGRATION, m0005_packed_folds.MIGRATION, m0006_task_folds.MIGRATION,
                  m0007_placed_task_folds.MIGRATION, m0008_frame_files.MIGRATION, m0009_task_fold_spread.MIGRATION,
                  m0010_profile_value_bounds.MIGRATION, m0011_profile_time.MIGRATION,
                  m0012_profile_default_named.MIGRATION, m0013_function_files.MIGRATION]
    versions = [m.version for m in migrations]
    assert versions == sorted(set(versions)), "migration versions must be unique and ordered"
    return migrations
