"""The cluster form of the migrations: every statement is one ClickHouse parses (EXPLAIN AST in
the embedded engine), and each table is a Replicated local table plus a Distributed one."""
import clickhouse_connect
import pytest

from proftask.clickhouse.cluster_ddl import migration_ddl
from proftask.clickhouse.migrations import AddColumn, CopyRows, DropTable, ModifyTTL, all_migrations
from proftask.clickhouse.migrate import migrations_table
from proftask.config import RetentionPolicy, load_settings


@pytest.fixture(scope="module")
def parser(tmp_path_factory):
    client = clickhouse_connect.get_client(interface="chdb", path=str(tmp_path_factory.mktemp("chdb")))
    yield lambda sql: client.query("EXPLAIN AST " + sql).result_rows
    client.close()


def test_every_cluster_statement_parses(parser):
    statements = [s for _, _, ss in migration_ddl("proftask") for s in ss] + [migrations_table("proftask")]
    for sql in statements:
        assert parser(sql), sql
    creates = [s for s in statements if s.startswith("CREATE TABLE")]
    tables = [t for m in all_migrations() for t in m.tables]
    assert {"tasks", "task_logs", "profiles", "samples", "stacks", "frame_names", "node_paths", "node_values",
            "function_values"} <= set(tables)
    for table in tables:
        assert any(s.startswith(f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER proftask") and
                   "ENGINE = Replicated" in s for s in creates), table
        assert any(s.startswith(f"CREATE TABLE IF NOT EXISTS {table} ON CLUSTER proftask AS {table}_local") and
                   "Distributed(proftask" in s for s in creates), table


def test_alter_add_column_reaches_both_tables_and_ttl_only_the_local_one():
    add = AddColumn("samples", "x", "UInt8").cluster("c")
    assert add == ["ALTER TABLE samples_local ON CLUSTER c ADD COLUMN IF NOT EXISTS x UInt8",
                   "ALTER TABLE samples ON CLUSTER c ADD COLUMN IF NOT EXISTS x UInt8"]
    ttl = ModifyTTL("samples", "toDateTime(0)").cluster("c")
    assert ttl == ["ALTER TABLE samples_local ON CLUSTER c MODIFY TTL toDateTime(0)"]


def test_a_backfill_reads_and_writes_the_distributed_tables_and_a_drop_removes_both():
    copy = CopyRows("b", ("x", "y"), "SELECT x, y FROM a", reads=("a",))
    assert copy.single() == copy.cluster("c") == ["INSERT INTO b (x, y) SELECT x, y FROM a"]
    assert DropTable("a").cluster("c") == ["DROP TABLE IF EXISTS a ON CLUSTER c",
                                           "DROP TABLE IF EXISTS a_local ON CLUSTER c"]


def test_single_server_ddl_is_the_migrations_as_written():
    (_, name, statements), *_ = migration_ddl(None)
    assert name == "task_tables" and statements[0].startswith("CREATE TABLE IF NOT EXISTS tasks (")


def test_retention_policy_from_the_environment():
    s = load_settings(env={"PROFTASK_RETENTION_DAYS": "90", "PROFTASK_RETENTION_TENANTS": "acme=7, globex=0"})
    assert s.retention == RetentionPolicy(90, (("acme", 7), ("globex", 0)))
    assert (s.retention.days_for("acme"), s.retention.days_for("globex"), s.retention.days_for("x")) == (7, 0, 90)
    with pytest.raises(ValueError):
        load_settings(env={"PROFTASK_RETENTION_TENANTS": "acme=-1"})


def test_a_table_declaration_makes_the_same_table_on_one_server_and_on_a_cluster():
    (_, _, single), = [d for d in migration_ddl(None) if d[0] == 4]
    (_, _, cluster), = [d for d in migration_ddl("c") if d[0] == 4]
    assert single[0].startswith("CREATE TABLE IF NOT EXISTS nodes (tenant LowCardinality(String), task_id String")
    assert single[0].endswith("ENGINE = ReplacingMergeTree ORDER BY (tenant, task_id, granularity, type_index, "
                              "profile_id, node) TTL toDateTime(intDiv(uploaded_at, 1000)) + "
                              "toIntervalDay(retention_days) WHERE retention_days > 0")
    local, distributed = cluster[:2]
    assert local.replace("nodes_local ON CLUSTER c", "nodes").replace(
        "ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/nodes_local', '{replica}')",
        "ReplacingMergeTree") == single[0]
    assert distributed == ("CREATE TABLE IF NOT EXISTS nodes ON CLUSTER c AS nodes_local ENGINE = "
                           "Distributed(c, currentDatabase(), nodes_local, cityHash64(tenant, task_id))")


def test_a_versioned_table_keeps_its_version_column_on_one_server_and_on_a_cluster():
    """task_folds keeps, of one key's rows, the one folded from the newest read (folded_at)."""
    (_, _, single), = [d for d in migration_ddl(None) if d[0] == 6]
    (_, _, cluster), = [d for d in migration_ddl("c") if d[0] == 6]
    assert "ENGINE = ReplacingMergeTree(folded_at) ORDER BY (tenant, task_id, granularity, sample_type)" in single[0]
    assert ("ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/task_folds_local', "
            "'{replica}', folded_at) ORDER BY") in cluster[0]
