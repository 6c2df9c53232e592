"""Retention per tenant: every task-scoped row carries `retention_days` (written by the processor
from the tenant's policy, 0 = keep) and expires that many days after its time by a TTL. stacks
and frame_names are shared by every profile of a tenant and are not expired row by row."""
from proftask.clickhouse.migrations import Migration

# table → its time column (epoch ms)
RETAINED = {"tasks": "create_time", "task_logs": "operation_time", "profiles": "uploaded_at",
            "samples": "uploaded_at"}


def _statements() -> tuple[str, ...]:
    out = ["ALTER TABLE samples ADD COLUMN IF NOT EXISTS uploaded_at Int64 DEFAULT 0"]
    for table, time_column in RETAINED.items():
        out.append(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS retention_days UInt16 DEFAULT 0")
        out.append(f"ALTER TABLE {table} MODIFY TTL toDateTime(intDiv({time_column}, 1000)) "
                   f"+ toIntervalDay(retention_days) WHERE retention_days > 0")
    return tuple(out)


MIGRATION = Migration(version=3, name="retention", forwards=_statements(), tables=())
