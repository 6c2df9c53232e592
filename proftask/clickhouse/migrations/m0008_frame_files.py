"""Each frame keeps its function's source file, so that a pprof export names one:
`go tool pprof -list` and `-lines` find the source by it. Before this migration frames were
named `function:line` only. A tenant's frames are one by name (frame_id), so where its profiles
name two files for one function (two builds of Go, two versions of a module), the export names
one of them.

Rows written before have an empty file until their frames are written again (a later profile
with them, after a restart of the processor) or `proftask replay` rebuilds frame_names from the
topics; an export then names no file for those functions, as before.
"""
from proftask.clickhouse.migrations import AddColumn, Migration

MIGRATION = Migration(
    version=8,
    name="frame_files",
    forwards=(
        AddColumn("frame_names", "file", "String DEFAULT ''"),
    ),
)
