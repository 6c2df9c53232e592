"""Profiles as rows: deduplicated frames and stacks, and per-profile sample values.

Layout A of shared/reference/peers.md §3.5: each stack is stored once with its frames at both
granularities; exports merge stacks from these. (Analyses read the tables of m0004, folded at
ingest.)
"""
from proftask.clickhouse.migrations import CreateTable, Migration
from proftask.clickhouse.migrations.m0001_task_tables import BY_TASK

MIGRATION = Migration(
    version=2,
    name="profile_tables",
    forwards=(
        # One row per stored profile; the newest upload per (task, instance) is the one analysed.
        CreateTable(
            "profiles",
            (("tenant", "LowCardinality(String)"), ("task_id", "String"), ("instance_id", "String"),
             ("profile_id", "String"), ("uploaded_at", "Int64"), ("sample_types", "Array(String)"),
             ("default_index", "UInt16"), ("totals", "Array(Int64)"), ("period_type", "String"),
             ("period", "Int64"), ("size_bytes", "UInt64"), ("stack_count", "UInt64"), ("event_id", "String")),
            engine="ReplacingMergeTree", order_by=("tenant", "task_id", "instance_id", "profile_id"),
            shard_key=BY_TASK),
        # codeSignature per frame id (frame_id = 64-bit hash of the name), with the function,
        # line and address it stands for, so exports can rebuild pprof locations.
        CreateTable(
            "frame_names",
            (("tenant", "LowCardinality(String)"), ("frame_id", "UInt64"), ("name", "String"),
             ("function", "String"), ("line", "Int64"), ("is_address", "UInt8")),
            engine="ReplacingMergeTree", order_by=("tenant", "frame_id"), shard_key="frame_id"),
        # A stack root→leaf at both granularities; stack_id = hash of its line-level frames.
        CreateTable(
            "stacks",
            (("tenant", "LowCardinality(String)"), ("stack_id", "UInt64"), ("function_frames", "Array(UInt64)"),
             ("line_frames", "Array(UInt64)")),
            engine="ReplacingMergeTree", order_by=("tenant", "stack_id"), shard_key="stack_id"),
        # One row per (profile, stack) with a value per sample type. Redelivery writes the same
        # rows again; queries read one copy per (profile_id, stack_id).
        CreateTable(
            "samples",
            (("tenant", "LowCardinality(String)"), ("task_id", "String"), ("instance_id", "String"),
             ("profile_id", "String"), ("stack_id", "UInt64"), ("values", "Array(Int64)")),
            engine="ReplacingMergeTree", order_by=("tenant", "task_id", "profile_id", "stack_id"),
            shard_key=BY_TASK),
    ),
)
