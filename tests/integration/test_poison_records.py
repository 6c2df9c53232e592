"""A record no consumer can use, on any topic proftask reads, is dead-lettered with its reason and
offset, counted in /metrics, and skipped: the whole task lifecycle still works, before and after
a restart."""
import asyncio
import collections
import re
import shutil
import uuid

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from tests.conformance.oracle import require_conformance
from tests.integration.harness import wait_until
from tests.integration.profiles import analysis, create_task, logs_of, upload, wait_finished

PARTITIONS = 4  # the harness's PROFTASK_KAFKA_PARTITIONS: the poison lands on every partition
BAD_SPEC = pb.TaskSpec(service_id="svc-poison", service_instance_ids=["i-1"], events=42)
POISON = {  # topic (without prefix) → a decodable envelope whose payload no consumer can use
    "task-requests": events.new_event("default", pb.TaskCreationRequested(task_id="poison-request", spec=BAD_SPEC)),
    "tasks": events.new_event("default", pb.TaskCreated(task_id="poison-task", spec=BAD_SPEC, create_time=1)),
    "task-events": events.new_event("default", pb.TaskFailedOnInstance(task_id="poison-task", instance_id="i-1",
                                                                       reason=77)),
    "profiles": pb.Envelope(event_id=str(uuid.uuid4()), tenant="default", type="ProfileUploaded"),  # no payload
    "agents": pb.Envelope(event_id=str(uuid.uuid4()), tenant="default", type="AgentSeen"),  # no payload
}
# consumer → the topics it reads (the views only log and count; the others publish letters)
READERS = {"decide-task-creation": ["task-requests"], "tasks-to-clickhouse": ["tasks"],
           "task-logs-to-clickhouse": ["task-events"], "profiles-to-clickhouse": ["profiles"],
           "task-view": ["tasks", "task-events"], "agents-view": ["agents"]}
VIEWS = {"task-view", "agents-view"}


async def _produce_poison(bootstrap: str, prefix: str) -> set[tuple[str, int, int]]:
    """Both poison records on every partition of every topic; their (topic, partition, offset)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    written = set()
    try:
        for name, invalid in POISON.items():
            for partition in range(PARTITIONS):
                for value in (b"\xff" * 5, invalid.SerializeToString()):
                    # keyed: the agents topic is compacted, and a compacted topic refuses a record without a key
                    meta = await producer.send_and_wait(prefix + name, value, key=b"poison", partition=partition)
                    written.add((meta.topic, meta.partition, meta.offset))
    finally:
        await producer.stop()
    return written


async def _read(bootstrap: str, topic: str, n: int) -> list[pb.Envelope]:
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None, auto_offset_reset="earliest")
    await consumer.start()
    out = []
    try:
        while len(out) < n:
            batch = await asyncio.wait_for(consumer.getmany(timeout_ms=1000), 60)
            out += [events.decode(r.value) for records in batch.values() for r in records]
    finally:
        await consumer.stop()
    return out


def dead_letter_counts(p) -> dict[tuple[str, str], float]:
    """(consumer, topic) → proftask_dead_letters_total, summed over reason kinds."""
    counts = collections.Counter()
    for labels, value in re.findall(r"^proftask_dead_letters_total\{(.*)\} (\S+)$", p.get("/metrics").body.decode(),
                                    re.M):
        label = dict(re.findall(r'(\w+)="([^"]*)"', labels))
        counts[(label["consumer"], label["topic"])] += float(value)
    return counts


def wait_all_dead_lettered(p, consumers=READERS) -> None:
    want = {(c, p.topic_prefix + t): 2.0 * PARTITIONS for c in consumers for t in READERS[c]}
    wait_until(lambda: (lambda got: got if all(got.get(k, 0) >= v for k, v in want.items()) else None)(
        dead_letter_counts(p)), timeout=60, interval=0.2, message=f"every poison record counted ({want})")


def lifecycle(p) -> str:
    """Create a task, let an agent poll and upload, read its progress and analysis."""
    assert p.get("/readyz").status == 200, p.get("/readyz")
    service = f"svc-{uuid.uuid4().hex[:8]}"
    task_id = create_task(p, ["i-1"], events="CPU", service=service, duration=1)
    polled = p.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance=i-1&lastCommandTime=0")
    assert polled.status == 200 and task_id in polled.body.decode(), polled
    assert upload(p, task_id, "i-1", require_conformance() / "go" / "pprof-sample.cpu.pb.gz").status == 202
    wait_finished(p, task_id, ["i-1"])
    assert len(logs_of(p, task_id, "EXECUTION_FINISHED")) == 1
    assert analysis(p, task_id)["tree"]["elements"][0]["total"] > 0
    return task_id


def test_poison_on_every_topic_is_dead_lettered_and_the_lifecycle_goes_on(spawn, tmp_path):
    p = spawn("all", data_dir=tmp_path / "data")
    poison = asyncio.run(_produce_poison(p.broker.bootstrap, p.topic_prefix))
    wait_all_dead_lettered(p)
    first = lifecycle(p)

    # Every consumer in a group published each record it skipped, once, with reason and offset.
    published = {p.topic_prefix + t for c, topics in READERS.items() if c not in VIEWS for t in topics}
    poison = {record for record in poison if record[0] in published}
    letters = asyncio.run(_read(p.broker.bootstrap, p.topic_prefix + "dead-letters", len(poison)))
    by_record = {(entry.dead_letter.source_topic, entry.dead_letter.partition, entry.dead_letter.offset): entry for entry in letters}
    assert set(by_record) == poison and len(letters) == len(poison)
    for (topic, _, _), letter in by_record.items():
        d = letter.dead_letter
        assert d.consumer in READERS and topic.removeprefix(p.topic_prefix) in READERS[d.consumer]
        assert d.reason and d.reason_kind in ("undecodable", "no_payload", "invalid_payload")
        assert d.original in (b"\xff" * 5, POISON[topic.removeprefix(p.topic_prefix)].SerializeToString())
    assert by_record[(p.topic_prefix + "tasks", 0, 1)].dead_letter.reason_kind == "invalid_payload"
    assert "spec.events 42" in by_record[(p.topic_prefix + "tasks", 0, 1)].dead_letter.reason

    # A restart re-reads the history, poison included: it comes back ready, with every task.
    # (The consumer groups committed past the poison; the task view has no group and meets it again.)
    p.stop()
    p.start()
    wait_all_dead_lettered(p, sorted(VIEWS))
    assert p.get(f"/api/v1/pprof/tasks/{first}").status == 200
    assert len(logs_of(p, first, "EXECUTION_FINISHED")) == 1
    second = lifecycle(p)

    # Replay reads the same topics: it skips and counts the poison, and rebuilds the rest.
    p.stop()
    shutil.rmtree(p.data_dir / "clickhouse")
    replayed = p.cli("replay")
    assert replayed.returncode == 0, replayed.stderr
    assert f"invalid records skipped {2 * PARTITIONS * 3}" in replayed.stdout  # tasks, task-events, profiles
    p.start()
    for task_id in (first, second):
        assert len(logs_of(p, task_id, "EXECUTION_FINISHED")) == 1


def test_the_task_view_recovers_from_a_failing_consumer_and_says_so_meanwhile(broker):
    """Not a record but the consumer itself fails (a fetch raises): the view's runner is not gone
    for good. It is unhealthy (/readyz 503 task_view) while failing, then reads on."""
    from proftask.core.tasks import EventType, TaskSpec
    from proftask.kafka.producer import EventProducer
    from proftask.kafka.topics import Topics, ensure_topics, service_key
    from proftask.task_view import TaskView

    async def run() -> None:
        topics = Topics.with_prefix(f"t{uuid.uuid4().hex[:8]}.")
        await ensure_topics(broker.bootstrap, topics.specs(2), 1)
        producer, view = EventProducer(broker.bootstrap), TaskView(broker.bootstrap, topics)
        await producer.start()
        await view.start()
        try:
            await asyncio.wait_for(view.caught_up.wait(), 60)
            fetch, failures = view._consumer.getmany, []

            async def failing_once(*args, **kw):  # the fault: one fetch fails as a lost broker would
                if not failures:
                    failures.append(1)
                    raise ConnectionError("broker went away")
                return await fetch(*args, **kw)

            view._consumer.getmany = failing_once
            while not failures:
                await asyncio.sleep(0.01)
            await asyncio.sleep(0)  # let the runner record the failure
            assert not view.healthy  # /readyz: task_view false, and the log says why
            spec = TaskSpec("svc-after", ("pod-1",), EventType.HEAP, 0, 0)
            created = events.new_event("default", pb.TaskCreated(task_id="after-failure", spec=events.spec_to_pb(spec),
                                                                 create_time=events.now_ms()))
            await producer.send(topics.tasks, service_key("default", "svc-after"), created)
            for _ in range(200):
                if view.healthy and view.get("default", "after-failure"):
                    break
                await asyncio.sleep(0.05)
            assert view.healthy and view.get("default", "after-failure") is not None
            assert view.failure is None
        finally:
            await view.stop()
            await producer.stop()

    asyncio.run(run())
