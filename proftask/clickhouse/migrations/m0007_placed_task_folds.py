"""A task's merged tree places its nodes itself: `parents`, `depths` and `frame_ids`, aligned
with `node_ids`, and its arrays heaviest first (proftask/core/node_table.heaviest_first).

Opening a task read its row and then placed the nodes against the tenant's `node_paths`, which
holds every node of every profile the tenant ever stored and is never expired row by row: the
first view's cost grew with the tenant's history (850k paths for one large profile), and the
whole tree's query spent 0.15 s of its 0.19 s there. Now the row is read alone, and the first
view takes the prefix of the arrays it shows instead of sorting the whole tree.

Rows written before this migration have empty places and are not read: their tasks' analyses
sum the profiles' node values (as before m0006) until the processor writes the row again. A row
is never written from sums some of whose nodes had no visible path (proftask/processing/task_folds.py).
"""
from proftask.clickhouse.migrations import AddColumn, Migration

MIGRATION = Migration(
    version=7,
    name="placed_task_folds",
    forwards=(
        AddColumn("task_folds", "parents", "Array(UInt64)"),
        AddColumn("task_folds", "depths", "Array(UInt32)"),
        AddColumn("task_folds", "frame_ids", "Array(UInt64)"),
    ),
)
