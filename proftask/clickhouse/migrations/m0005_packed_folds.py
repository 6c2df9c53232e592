"""The folded profiles packed: one row per (profile, granularity, sample type) holding its node
values as arrays, and each node's place in the tree (parent, depth, frame) written once per
tenant in `node_paths`, not once per profile and sample type.

m0004 wrote a row per node per sample type: ~1.7M rows for a large CPU profile, which cost
ClickHouse ~1.6 s to sort and write. The same profile is now 4 rows of arrays plus the nodes
its tenant had not seen (a fleet's instances share most of them), and a merged analysis reads
`node_ids`, `total_values` and `self_values` only (ARRAY JOIN, GROUP BY node), then the paths of
the nodes it keeps. The m0004 rows are copied over, then dropped.

Redelivery writes a profile's rows again with the same key; queries read them with FINAL, so
a profile counts once. node_values and function_values are task-scoped and expire like
`samples`; node_paths is shared by the tenant's profiles, like `stacks`.
"""
from proftask.clickhouse.migrations import CopyRows, CreateTable, DropTable, Migration, retention_ttl
from proftask.clickhouse.migrations.m0001_task_tables import BY_TASK
from proftask.clickhouse.migrations.m0004_folded_tables import PROFILE_KEY, RETAINED

# a profile's rows together: parts written by one insert do not overlap, so FINAL merges little
KEY = ("tenant", "task_id", "profile_id", "granularity", "type_index")
KEY_COLUMNS = tuple(name for name, _ in PROFILE_KEY)
RETAINED_COLUMNS = tuple(name for name, _ in RETAINED)

MIGRATION = Migration(
    version=5,
    name="packed_folds",
    forwards=(
        CreateTable(
            "node_paths",
            (("tenant", "LowCardinality(String)"), ("node", "UInt64"), ("parent", "UInt64"), ("depth", "UInt32"),
             ("frame_id", "UInt64")),
            engine="ReplacingMergeTree", order_by=("tenant", "node"), shard_key="node"),
        CreateTable(
            "node_values",
            (*PROFILE_KEY, ("node_ids", "Array(UInt64)"), ("self_values", "Array(Int64)"),
             ("total_values", "Array(Int64)"), *RETAINED),
            engine="ReplacingMergeTree", order_by=KEY, shard_key=BY_TASK, ttl=retention_ttl("uploaded_at")),
        CreateTable(
            "function_values",
            (*PROFILE_KEY, ("frame_ids", "Array(UInt64)"), ("flat_values", "Array(Int64)"),
             ("cum_values", "Array(Int64)"), *RETAINED),
            engine="ReplacingMergeTree", order_by=KEY, shard_key=BY_TASK, ttl=retention_ttl("uploaded_at")),
        CopyRows("node_paths", ("tenant", "node", "parent", "depth", "frame_id"),
                 "SELECT tenant, node, any(parent), any(depth), any(frame_id) FROM nodes GROUP BY tenant, node",
                 reads=("nodes",)),
        CopyRows("node_values", (*KEY_COLUMNS, "node_ids", "self_values", "total_values", *RETAINED_COLUMNS),
                 f"SELECT {', '.join(KEY_COLUMNS)}, groupArray(node), groupArray(self), groupArray(total), "
                 f"any(uploaded_at), any(retention_days) FROM nodes FINAL GROUP BY {', '.join(KEY_COLUMNS)}",
                 reads=("nodes",)),
        CopyRows("function_values", (*KEY_COLUMNS, "frame_ids", "flat_values", "cum_values", *RETAINED_COLUMNS),
                 f"SELECT {', '.join(KEY_COLUMNS)}, groupArray(frame_id), groupArray(flat), groupArray(cum), "
                 f"any(uploaded_at), any(retention_days) FROM functions FINAL GROUP BY {', '.join(KEY_COLUMNS)}",
                 reads=("functions",)),
        DropTable("nodes"),
        DropTable("functions"),
    ),
)
