"""Retention per tenant in real (embedded) ClickHouse: the processor's writer stamps each row
with its tenant's days, and the TTL removes a tenant's old rows while another tenant's stay."""
import asyncio


from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrate import migrate
from proftask.config import RetentionPolicy
from proftask.processing.writer import RowWriter

DAY_MS = 86_400_000


def test_a_tenants_old_rows_expire_and_others_stay(tmp_path):
    async def run():
        ch = ClickHouse(f"chdb://{tmp_path}")
        await ch.open()
        try:
            await migrate(ch)
            writer = RowWriter(ch, RetentionPolicy(0, (("acme", 30),)))
            now = 1_800_000_000_000
            old, recent = now - 400 * DAY_MS, 4_102_444_800_000  # a year ago; the year 2100
            tasks = [dict(tenant=tenant, task_id=f"{tenant}-{age}", service_id="svc", service_instance_ids=["i"],
                          events="CPU", duration=1, dump_period=0, create_time=t, event_id=f"e-{tenant}-{age}")
                     for tenant in ("acme", "globex") for age, t in (("old", old), ("new", recent))]
            await writer.insert("tasks", tasks)
            logs = [dict(tenant=tenant, task_id=f"{tenant}-old", instance_id="i", operation_type="NOTIFIED",
                         dedup_key="", operation_time=old, message="", event_id=f"l-{tenant}")
                    for tenant in ("acme", "globex")]
            await writer.insert("task_logs", logs)
            stamped = await ch.rows("SELECT tenant, any(retention_days) FROM tasks GROUP BY tenant ORDER BY tenant")
            for table in ("tasks", "task_logs"):
                await ch.command(f"OPTIMIZE TABLE {table} FINAL")
            kept = await ch.rows("SELECT task_id FROM tasks ORDER BY task_id")
            kept_logs = await ch.rows("SELECT tenant FROM task_logs ORDER BY tenant")
            return stamped, kept, kept_logs
        finally:
            await ch.close()

    stamped, kept, kept_logs = asyncio.run(run())
    assert stamped == [("acme", 30), ("globex", 0)]
    assert [r[0] for r in kept] == ["acme-new", "globex-new", "globex-old"]  # acme's old task expired
    assert [r[0] for r in kept_logs] == ["globex"]
