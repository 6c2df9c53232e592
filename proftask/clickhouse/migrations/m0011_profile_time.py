"""Each profile keeps when it began and how long it ran (pprof's time_nanos and duration_nanos),
so that a pprof export of several instances says what `go tool pprof` says of their merge: the
earliest start and the summed duration (`Duration: 20s, Total samples = 34s (170%)`).

Rows written before have 0 for both, which pprof reads as unknown (no Time or Duration line);
`proftask replay` writes them from the profiles on Kafka.
"""
from proftask.clickhouse.migrations import AddColumn, Migration

MIGRATION = Migration(
    version=11,
    name="profile_time",
    forwards=(
        AddColumn("profiles", "time_nanos", "Int64"),
        AddColumn("profiles", "duration_nanos", "Int64"),
    ),
)
