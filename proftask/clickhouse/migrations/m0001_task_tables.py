"""Tasks and their logs, written by the processor from the task events."""
from proftask.clickhouse.migrations import Migration

MIGRATION = Migration(
    version=1,
    name="task_tables",
    forwards=(
        # One row per TaskCreated; redelivery writes identical rows, merged away by the engine.
        """
        CREATE TABLE IF NOT EXISTS tasks (
            tenant LowCardinality(String),
            task_id String,
            service_id String,
            service_instance_ids Array(String),
            events LowCardinality(String),
            duration Int32,
            dump_period Int32,
            create_time Int64,
            event_id String
        ) ENGINE = ReplacingMergeTree
        ORDER BY (tenant, task_id)
        """,
        # One row per log event. Plain MergeTree on purpose: duplicates (redelivery, two
        # task_svc replicas notifying the same instance) are folded at read time by
        # (instance, type, dedup_key) keeping the earliest, which no merge can change.
        """
        CREATE TABLE IF NOT EXISTS task_logs (
            tenant LowCardinality(String),
            task_id String,
            instance_id String,
            operation_type LowCardinality(String),
            dedup_key String,
            operation_time Int64,
            message String,
            event_id String
        ) ENGINE = MergeTree
        ORDER BY (tenant, task_id, instance_id, operation_type, dedup_key)
        """,
    ),
    tables=("tasks", "task_logs"),
)
