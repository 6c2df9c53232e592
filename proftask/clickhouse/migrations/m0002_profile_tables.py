"""Profiles as rows: deduplicated frames and stacks, and per-profile sample values.

Layout A of shared/reference/peers.md §3.5: the flame graph is computed at query time by
expanding each stack into its path prefixes (hash of the path = node id), so one query serves
both granularities, every sample type, and any subset of instances.
"""
from proftask.clickhouse.migrations import Migration

MIGRATION = Migration(
    version=2,
    name="profile_tables",
    forwards=(
        # One row per stored profile; the newest upload per (task, instance) is the one analysed.
        """
        CREATE TABLE IF NOT EXISTS profiles (
            tenant LowCardinality(String),
            task_id String,
            instance_id String,
            profile_id String,
            uploaded_at Int64,
            sample_types Array(String),
            default_index UInt16,
            totals Array(Int64),
            period_type String,
            period Int64,
            size_bytes UInt64,
            stack_count UInt64,
            event_id String
        ) ENGINE = ReplacingMergeTree
        ORDER BY (tenant, task_id, instance_id, profile_id)
        """,
        # codeSignature per frame id (frame_id = 64-bit hash of the name), with the function,
        # line and address it stands for, so exports can rebuild pprof locations.
        """
        CREATE TABLE IF NOT EXISTS frame_names (
            tenant LowCardinality(String),
            frame_id UInt64,
            name String,
            function String,
            line Int64,
            is_address UInt8
        ) ENGINE = ReplacingMergeTree
        ORDER BY (tenant, frame_id)
        """,
        # A stack root→leaf at both granularities; stack_id = hash of its line-level frames.
        """
        CREATE TABLE IF NOT EXISTS stacks (
            tenant LowCardinality(String),
            stack_id UInt64,
            function_frames Array(UInt64),
            line_frames Array(UInt64)
        ) ENGINE = ReplacingMergeTree
        ORDER BY (tenant, stack_id)
        """,
        # One row per (profile, stack) with a value per sample type. Redelivery writes the same
        # rows again; queries read one copy per (profile_id, stack_id).
        """
        CREATE TABLE IF NOT EXISTS samples (
            tenant LowCardinality(String),
            task_id String,
            instance_id String,
            profile_id String,
            stack_id UInt64,
            values Array(Int64)
        ) ENGINE = ReplacingMergeTree
        ORDER BY (tenant, task_id, profile_id, stack_id)
        """,
    ),
    tables=("profiles", "frame_names", "stacks", "samples"),
)
