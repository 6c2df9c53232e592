"""Every source file a tenant's profiles name for each frame, one row per (frame, file), so that
a pprof export names the same file for a function whatever the order its profiles came in, a
restart or a replay: the first in byte order of those its frames were named with.

`frame_names` keeps one row per frame once ClickHouse merges it (a ReplacingMergeTree on the
frame), the last written, and a processor writes a frame once, with the file of the first
profile naming it since the processor started: which of two files a function had (two builds
of Go, two versions of a module) followed the history of the uploads and restarts. The files
frame_names holds are copied over; a frame's other files were never written, so a task stored
before this migration names them only once a new profile of its tenant names them, or after
`proftask replay` (what to run after upgrading, where the files an export names matter).
"""
from proftask.clickhouse.migrations import CopyRows, CreateTable, Migration

MIGRATION = Migration(
    version=13,
    name="function_files",
    forwards=(
        CreateTable(
            "function_files",
            (("tenant", "LowCardinality(String)"), ("frame_id", "UInt64"), ("file", "String")),
            engine="ReplacingMergeTree", order_by=("tenant", "frame_id", "file"), shard_key="frame_id"),
        CopyRows("function_files", ("tenant", "frame_id", "file"),
                 "SELECT tenant, frame_id, file FROM frame_names WHERE file != ''", reads=("frame_names",)),
    ),
)
