"""Each profile says whether it names its default sample type, so that a merge takes the first
default a profile names, as `go tool pprof` does (profile.Merge, combineHeaders): Go's heap
profile names none and its allocs profile names alloc_space, so a task holding both showed
inuse_space or alloc_space by which instance's name came first, where pprof shows alloc_space.

Rows written before count as naming theirs (their merge is as it was); `proftask replay` writes
them from the profiles on Kafka.
"""
from proftask.clickhouse.migrations import AddColumn, Migration

MIGRATION = Migration(
    version=12,
    name="profile_default_named",
    forwards=(
        AddColumn("profiles", "default_named", "UInt8 DEFAULT 1"),
    ),
)
