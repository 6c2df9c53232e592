"""Tasks and their logs, written by the processor from the task events."""
from proftask.clickhouse.migrations import CreateTable, Migration

BY_TASK = "cityHash64(tenant, task_id)"  # a task's rows live on one shard

MIGRATION = Migration(
    version=1,
    name="task_tables",
    forwards=(
        # One row per TaskCreated; redelivery writes identical rows, merged away by the engine.
        CreateTable(
            "tasks",
            (("tenant", "LowCardinality(String)"), ("task_id", "String"), ("service_id", "String"),
             ("service_instance_ids", "Array(String)"), ("events", "LowCardinality(String)"),
             ("duration", "Int32"), ("dump_period", "Int32"), ("create_time", "Int64"), ("event_id", "String")),
            engine="ReplacingMergeTree", order_by=("tenant", "task_id"), shard_key=BY_TASK),
        # One row per log event. Plain MergeTree on purpose: duplicates (redelivery, two
        # task_svc replicas notifying the same instance) are folded at read time by
        # (instance, type, dedup_key) keeping the earliest, which no merge can change.
        CreateTable(
            "task_logs",
            (("tenant", "LowCardinality(String)"), ("task_id", "String"), ("instance_id", "String"),
             ("operation_type", "LowCardinality(String)"), ("dedup_key", "String"), ("operation_time", "Int64"),
             ("message", "String"), ("event_id", "String")),
            engine="MergeTree", order_by=("tenant", "task_id", "instance_id", "operation_type", "dedup_key"),
            shard_key=BY_TASK),
    ),
)
