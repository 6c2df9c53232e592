"""Profiles folded at ingest: per profile, its node table and its function table for every
sample type (`type_index`, 0-based in the profile's sample_types) at both granularities.

A merged flame graph is one GROUP BY node over the chosen profiles' rows, and pprof's `-top` one
GROUP BY frame_id; see proftask/core/node_table.py for what the rows hold. Redelivery writes a
profile's rows again: queries read one copy per (profile_id, node) or (profile_id, frame_id).
Both are task-scoped and expire like `samples` (retention_days, stamped by the processor).
"""
from proftask.clickhouse.migrations import CreateTable, Migration, retention_ttl
from proftask.clickhouse.migrations.m0001_task_tables import BY_TASK

PROFILE_KEY = (("tenant", "LowCardinality(String)"), ("task_id", "String"), ("instance_id", "String"),
               ("profile_id", "String"), ("granularity", "LowCardinality(String)"), ("type_index", "UInt16"))
RETAINED = (("uploaded_at", "Int64"), ("retention_days", "UInt16 DEFAULT 0"))

MIGRATION = Migration(
    version=4,
    name="folded_tables",
    forwards=(
        CreateTable(
            "nodes",
            (*PROFILE_KEY, ("node", "UInt64"), ("parent", "UInt64"), ("depth", "UInt32"), ("frame_id", "UInt64"),
             ("self", "Int64"), ("total", "Int64"), *RETAINED),
            engine="ReplacingMergeTree",
            order_by=("tenant", "task_id", "granularity", "type_index", "profile_id", "node"),
            shard_key=BY_TASK, ttl=retention_ttl("uploaded_at")),
        CreateTable(
            "functions",
            (*PROFILE_KEY, ("frame_id", "UInt64"), ("flat", "Int64"), ("cum", "Int64"), *RETAINED),
            engine="ReplacingMergeTree",
            order_by=("tenant", "task_id", "granularity", "type_index", "profile_id", "frame_id"),
            shard_key=BY_TASK, ttl=retention_ttl("uploaded_at")),
    ),
)
