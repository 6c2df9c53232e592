"""Nothing accepted is lost or counted twice: a processor killed mid-flight, ClickHouse wiped
and replayed from the topics, poison events on the profile topic."""
import asyncio
import shutil
import subprocess

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.harness import PROFTASK, new_topic_prefix, wait_until
from tests.integration.profiles import (analysis, as_oracle_shape, cached_profile, create_task, logs_of,
                                        progress, upload, wait_finished)



def test_killed_processor_then_wiped_clickhouse_and_replay(spawn, tmp_path):
    path = require_conformance() / "go" / "parca-alloc_objects.pb.gz"
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    tasks, ingest = spawn("task", prefix=prefix), spawn("ingest", prefix=prefix)
    processor = spawn("processor", prefix=prefix, data_dir=data_dir)
    instances = [f"pod-{n:02d}" for n in range(20)]
    task_id = create_task(tasks, instances)
    # ingest_svc learns the task from Kafka: 409 (instance not in the task) instead of 404 says it has
    wait_until(lambda: upload(ingest, task_id, "stranger", b"").status == 409, message="ingest knows the task")
    for instance in instances:
        assert upload(ingest, task_id, instance, path).status == 202
    big_task = create_task(tasks, ["big-1"], events="CPU", duration=1)  # over 1 MiB: it travels as chunks
    wait_until(lambda: upload(ingest, big_task, "stranger", b"").status == 409, message="ingest knows the task")
    assert upload(ingest, big_task, "big-1", cached_profile(3)).status == 202
    processor.kill()  # all 21 are on Kafka; some stored, some not, offsets partly committed

    standalone = spawn("all", prefix=prefix, data_dir=data_dir)
    wait_finished(standalone, task_id, instances, timeout=180)
    wait_finished(standalone, big_task, ["big-1"], timeout=180)
    big_before = analysis(standalone, big_task, sampleType="cpu")
    twenty = oracle_tree([path] * 20)
    for granularity in ("function", "line"):
        assert as_oracle_shape(analysis(standalone, task_id, granularity=granularity)) == \
            oracle_tree([path] * 20, None, granularity)
    assert len(logs_of(standalone, task_id, "EXECUTION_FINISHED")) == 20
    # the default view (each task's merged tree, summed at ingest and rebuilt by replay) and another type
    before = (analysis(standalone, task_id, sampleType="inuse_space"), progress(standalone, task_id),
              standalone.get(f"/api/v1/pprof/tasks/{task_id}/export?format=folded").body,
              standalone.get(f"/api/v1/pprof/tasks/{task_id}/export?format=pprof").body,  # the very bytes
              analysis(standalone, task_id, maxNodes=50),
              analysis(standalone, task_id, maxNodes=50, instanceStats="true"))  # the spread kept at ingest
    assert before[0]["tree"]["elements"][0]["total"] == oracle_tree([path] * 20, "inuse_space")["total"]
    assert twenty["total"] == 20 * oracle_tree([path])["total"]
    assert before[5]["instanceCount"] == 20 and before[5]["tree"]["elements"][0]["instances"] == 20

    in_use = standalone.cli("replay")  # its ClickHouse is the running server's: refused, in one line
    assert in_use.returncode == 1 and in_use.stderr.count("\n") == 1, in_use.stderr
    assert f"is open in another process (pid {standalone.proc.pid}): stop it first" in in_use.stderr
    standalone.stop()
    shutil.rmtree(data_dir / "clickhouse")
    # a replay killed midway leaves part of the history, which no server may serve as the whole
    cut_short = subprocess.Popen([PROFTASK, "replay"], env=dict(standalone.env(), PYTHONUNBUFFERED="1"),
                                 stdout=subprocess.PIPE, text=True)
    assert cut_short.stdout.readline().startswith("dropped and re-created")  # its tables are empty now
    cut_short.kill()
    cut_short.wait()
    refused = spawn("all", prefix=prefix, data_dir=data_dir, wait=False)
    assert refused.proc.wait(120) == 1
    assert "did not finish, so ClickHouse holds only part of the history: run it again" in refused.log_path.read_text()
    replayed = standalone.cli("replay")
    assert replayed.returncode == 0, replayed.stderr
    assert "ProfileUploaded 21" in replayed.stdout and "chunked profiles 1" in replayed.stdout
    again = spawn("all", prefix=prefix, data_dir=data_dir)
    after = (analysis(again, task_id, sampleType="inuse_space"), progress(again, task_id),
             again.get(f"/api/v1/pprof/tasks/{task_id}/export?format=folded").body,
             again.get(f"/api/v1/pprof/tasks/{task_id}/export?format=pprof").body,
             analysis(again, task_id, maxNodes=50), analysis(again, task_id, maxNodes=50, instanceStats="true"))
    assert after == before
    assert analysis(again, big_task, sampleType="cpu") == big_before


async def _produce(bootstrap: str, topic: str, key: bytes, values: list[bytes]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def _read_all(bootstrap: str, topic: str, n: int) -> list[pb.Envelope]:
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


def test_poison_events_go_to_the_dead_letter_topic_and_never_stall(stack):
    task_id = create_task(stack, ["i-1", "i-2"], events="CPU", duration=1)  # it takes a CPU profile
    key = f"default/{task_id}".encode()  # the task's partition: what follows must still be processed
    bogus = events.new_event("default", pb.ProfileUploaded(task_id=task_id, instance_id="i-1", profile_id="p-bogus",
                                                            content=b"\x1f\x8bnot gzip at all", size=16))
    asyncio.run(_produce(stack.broker.bootstrap, f"{stack.topic_prefix}profiles", key,
                         [b"\x00garbage that is no envelope", bogus.SerializeToString()]))
    assert upload(stack, task_id, "i-2", require_conformance() / "go" / "pprof-sample.cpu.pb.gz").status == 202
    wait_finished(stack, task_id, ["i-2"])
    (error,) = wait_until(lambda: logs_of(stack, task_id, "EXECUTION_TASK_ERROR"), message="error log")
    assert error["instanceId"] == "i-1" and "could not be processed" in error["message"]
    letters = asyncio.run(_read_all(stack.broker.bootstrap, f"{stack.topic_prefix}dead-letters", 2))
    reasons = sorted(entry.dead_letter.reason for entry in letters)
    assert reasons[0].startswith("invalid profile") and reasons[1].startswith("undecodable event")
    assert any(entry.dead_letter.original == bogus.SerializeToString() for entry in letters)
