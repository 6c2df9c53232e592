"""Each profile keeps, per sample type, the sum of its positive values and the sum of its
negative ones, so that an analysis knows before summing whether the chosen instances' merge fits
in 64 bits (proftask.core.value_range), and refuses it rather than show wrapped numbers.

Rows written before have empty arrays: their bounds are taken from their signed `totals`
(a total's positive part and negative part), which bound every node for a profile whose values
all have one sign, as every profile Go's runtime writes does, but not one mixing signs (+2^62
and -2^62 total 0). `proftask replay` writes them in full.
"""
from proftask.clickhouse.migrations import AddColumn, Migration

MIGRATION = Migration(
    version=10,
    name="profile_value_bounds",
    forwards=(
        AddColumn("profiles", "positive_totals", "Array(Int64)"),
        AddColumn("profiles", "negative_totals", "Array(Int64)"),
    ),
)
