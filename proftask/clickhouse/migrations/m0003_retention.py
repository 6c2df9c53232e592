"""Retention per tenant: every task-scoped row carries `retention_days` (stamped by the processor
from the tenant's policy, 0 = keep) and expires that many days after its time by a TTL. stacks
and frame_names are shared by every profile of a tenant and are not expired row by row."""
from proftask.clickhouse.migrations import AddColumn, Migration, ModifyTTL, retention_ttl

# table → its time column (epoch ms)
TIME_COLUMNS = {"tasks": "create_time", "task_logs": "operation_time", "profiles": "uploaded_at",
                "samples": "uploaded_at"}

MIGRATION = Migration(version=3, name="retention", forwards=(
    AddColumn("samples", "uploaded_at", "Int64 DEFAULT 0"),
    *(op for table, time_column in TIME_COLUMNS.items()
      for op in (AddColumn(table, "retention_days", "UInt16 DEFAULT 0"), ModifyTTL(table, retention_ttl(time_column)))),
))
