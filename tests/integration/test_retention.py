"""Retention per tenant in real (embedded) ClickHouse: the processor's writer stamps each row
with its tenant's days, and the TTL removes a tenant's old rows while another tenant's stay."""
import asyncio
import uuid

from aiokafka import AIOKafkaProducer

from proftask import events
from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrate import migrate
from proftask.config import RetentionPolicy
from proftask.core.tasks import parse_task_request
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import Topics, service_key
from proftask.processing.writer import RowWriter
from tests.integration.harness import new_topic_prefix, wait_until

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


async def _send(bootstrap: str, topic: str, key: bytes, env) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, env.SerializeToString(), key=key)
    finally:
        await producer.stop()


def test_a_task_past_its_tenant_s_retention_is_gone_not_shown_failed(spawn):
    """Its rows expired by the TTL, a finished task read as failed (every instance missed); past
    the tenant's retention it is gone from every answer, while Kafka keeps its history."""
    prefix = new_topic_prefix()
    stack = spawn("all", prefix=prefix, PROFTASK_RETENTION_DAYS="30")
    topics = Topics.with_prefix(prefix)
    spec = events.spec_to_pb(parse_task_request({"serviceId": "old-shop", "serviceInstanceIds": ["o-1"],
                                                 "events": "HEAP"}))
    old_id = str(uuid.uuid4())
    asked = events.new_event("default", pb.TaskCreationRequested(task_id=old_id, spec=spec),
                             occurred_at=events.now_ms() - 31 * DAY_MS)  # created 31 days ago, as then
    asyncio.run(_send(stack.broker.bootstrap, topics.task_requests, service_key("default", "old-shop"), asked))
    # a task of the same service asked for now: decided after the old one (one key, one partition)
    r = stack.post("/api/v1/pprof/tasks", {"serviceId": "old-shop", "serviceInstanceIds": ["o-1"], "events": "HEAP"})
    assert r.status == 201, r
    new_id = r.json()["id"]
    listed = wait_until(lambda: (lambda ids: ids if new_id in ids else None)(
        [t["id"] for t in stack.get("/api/v1/pprof/tasks?serviceId=old-shop").json()["tasks"]]))
    assert listed == [new_id]
    for path in (f"/api/v1/pprof/tasks/{old_id}", f"/api/v1/pprof/tasks/{old_id}/progress",
                 f"/api/v1/pprof/tasks/{old_id}/analysis"):
        assert stack.get(path).status == 404, path
    (command,) = stack.get("/api/v1/pprof/agent/commands?service=old-shop&serviceInstance=o-1&lastCommandTime=0"
                           ).json()["commands"]
    assert {"key": "TaskId", "value": new_id} in command["args"]
