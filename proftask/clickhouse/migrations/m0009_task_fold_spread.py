"""A task's merged tree keeps how its instances share each node: `instances` (in how many the
node's total is not zero), `share_mins` and `share_maxes` (the lowest and highest of the node's
total over the instance's total, 0 for an instance without it), aligned with `node_ids`.

The web UI opens a task of several instances with `instanceStats=true`; that looked each kept
node up in every instance's node values (an ARRAY JOIN of ten large profiles' 4.25M values, 0.05–0.07 s
of the 0.12–0.14 s first view). The processor has each profile's values in hand when it adds
them to the task's sums, and now keeps the shares beside them.

Rows written before this migration have empty arrays: an analysis with instanceStats then looks
the nodes up in the profiles, as before, until the processor writes the task's row again.
"""
from proftask.clickhouse.migrations import AddColumn, Migration

MIGRATION = Migration(
    version=9,
    name="task_fold_spread",
    forwards=(
        AddColumn("task_folds", "instances", "Array(UInt32)"),
        AddColumn("task_folds", "share_mins", "Array(Float64)"),
        AddColumn("task_folds", "share_maxes", "Array(Float64)"),
    ),
)
