"""Each task's merged tree, summed by the processor as its profiles are stored
(proftask/processing/task_folds.py): one row per (task, granularity, sample type) naming the
profiles it sums, so that opening a task reads one row instead of summing every profile's
node values (m0005) at query time.

A row is used only for exactly the profiles it names. Of the rows of one key, ClickHouse's
merges keep the one folded from the newest read of the task's profiles (`folded_at`, taken
before that read: a row written late from an older read does not replace a newer one). Tasks
stored before this migration have no row until their next profile (or `proftask replay`):
their analyses sum the profiles as before.
"""
from proftask.clickhouse.migrations import CreateTable, Migration, retention_ttl
from proftask.clickhouse.migrations.m0001_task_tables import BY_TASK

MIGRATION = Migration(
    version=6,
    name="task_folds",
    forwards=(
        CreateTable(
            "task_folds",
            (("tenant", "LowCardinality(String)"), ("task_id", "String"), ("granularity", "LowCardinality(String)"),
             ("sample_type", "String"), ("profile_ids", "Array(String)"), ("node_ids", "Array(UInt64)"),
             ("self_values", "Array(Int64)"), ("total_values", "Array(Int64)"), ("folded_at", "Int64"),
             ("retention_days", "UInt16 DEFAULT 0")),
            engine="ReplacingMergeTree", order_by=("tenant", "task_id", "granularity", "sample_type"),
            shard_key=BY_TASK, ttl=retention_ttl("folded_at"), version="folded_at"),
    ),
)
