"""Uploads near pprofMaxSize: many at once are stored or refused with 503 + Retry-After (never
lost), Kafka only ever holds small records, a failure after the bytes arrived is logged, and a
client that hangs up mid-body is an interrupted upload."""
import asyncio
import concurrent.futures
import socket
import time

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from proftask.pprof.decode import decompress, parse_profile
from tests.integration.harness import set_max_message_bytes, wait_until
from tests.integration.profiles import (analysis, cached_profile, create_task, logs_of, progress, upload,
                                        wait_finished)

CHUNK_BYTES = 1024 * 1024  # the largest piece of a profile a record may carry


UPLOADS = 12
ENVELOPE_BYTES = 1024  # what a chunk record carries beyond its data


def cpu_total(data: bytes) -> int:
    p = parse_profile(decompress(data, 1 << 30))
    index = [_text(p.string_table[t.type]) for t in p.sample_type].index("cpu")
    return sum(s.value[index] for s in p.sample)


def _text(s) -> str:
    return s.decode() if isinstance(s, bytes) else s


@pytest.fixture(scope="module")
def budgeted(spawn):
    """Room for two 30 MB uploads at a time."""
    return spawn("all", PROFTASK_UPLOAD_BUDGET_BYTES=str(64 * 1024 * 1024))


async def _records(bootstrap: str, topics: list[str]) -> list[bytes]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                max_partition_fetch_bytes=64 * 1024 * 1024)
    await consumer.start()
    try:
        parts = [TopicPartition(t, p) for t in topics for p in sorted(consumer.partitions_for_topic(t) or
                                                                       await _partitions(consumer, t))]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        values = []
        pending = {tp for tp, end in ends.items() if end > 0}
        while pending:
            batch = await asyncio.wait_for(consumer.getmany(*pending, timeout_ms=1000), 60)
            values += [r.value for records in batch.values() for r in records]
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        return values
    finally:
        await consumer.stop()


async def _partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    cluster = await consumer._client.fetch_all_metadata()
    return cluster.partitions_for_topic(topic) or set()


def upload_until_accepted(p, task_id: str, instance: str, data: bytes, deadline: float) -> list:
    """What the agent does: a 503 is sent again after its Retry-After, same Idempotency-Key."""
    answers = []
    while time.monotonic() < deadline:
        # 29 MiB checked while eleven others are: minutes on a busy 2-core machine
        r = upload(p, task_id, instance, data, key=f"agent-{instance}", timeout=max(60.0, deadline - time.monotonic()))
        answers.append(r)
        if r.status != 503:
            return answers
        assert r.json()["code"] == "UNAVAILABLE", r
        time.sleep(float(r.headers["Retry-After"]))
    return answers


def test_concurrent_uploads_near_max_size_are_stored_or_refused_503_and_none_is_lost(budgeted):
    data = cached_profile(29).read_bytes()
    assert 25 * 1024 * 1024 < len(data) <= 30 * 1024 * 1024
    names = [f"big-{n:02d}" for n in range(UPLOADS)]
    task_id = create_task(budgeted, names, events="CPU", duration=1)
    deadline = time.monotonic() + 240
    with concurrent.futures.ThreadPoolExecutor(UPLOADS) as agents:
        answers = list(agents.map(lambda n: upload_until_accepted(budgeted, task_id, n, data, deadline), names))
    statuses = [[r.status for r in a] for a in answers]
    assert all(s[-1] == 202 and set(s[:-1]) <= {503} for s in statuses), statuses
    assert any(503 in s for s in statuses), f"the budget of two never refused anyone: {statuses}"
    done = wait_finished(budgeted, task_id, names, timeout=300)
    assert done["errorInstanceIds"] == []
    result = analysis(budgeted, task_id, sampleType="cpu", maxNodes=10)
    assert result["tree"]["elements"][0]["total"] == UPLOADS * cpu_total(data)


def test_a_30_mb_upload_is_only_small_records_on_kafka(budgeted):
    p = budgeted
    data = cached_profile(29).read_bytes()
    task_id = create_task(p, ["i-1"], events="CPU", duration=1)
    assert upload(p, task_id, "i-1", data).status == 202
    events = asyncio.run(_records(p.broker.bootstrap, [f"{p.topic_prefix}profiles"]))
    chunks = asyncio.run(_records(p.broker.bootstrap, [f"{p.topic_prefix}profile-chunks"]))
    values = events + chunks
    assert len(chunks) >= -(-len(data) // CHUNK_BYTES)  # all of its bytes, in chunks
    assert max(map(len, values)) <= CHUNK_BYTES + ENVELOPE_BYTES


def test_a_profile_not_stored_after_its_bytes_arrived_is_logged_503_and_a_retry_finishes(budgeted):
    data = cached_profile(3).read_bytes()
    task_id = create_task(budgeted, ["i-1"], events="CPU", duration=1)
    chunk_topic = f"{budgeted.topic_prefix}profile-chunks"
    set_max_message_bytes(budgeted.broker, chunk_topic, 1000)  # Kafka refuses chunks
    try:
        r = upload(budgeted, task_id, "i-1", data, key="k-1")
    finally:
        set_max_message_bytes(budgeted.broker, chunk_topic, 2 * CHUNK_BYTES)
    assert r.status == 503 and int(r.headers["Retry-After"]) >= 1, r
    (log,) = wait_until(lambda: logs_of(budgeted, task_id, "EXECUTION_TASK_ERROR"), message="the failure's log")
    assert "could not be stored" in log["message"] and str(len(data)) in log["message"], log
    assert progress(budgeted, task_id)["errorInstanceIds"] == ["i-1"]

    assert upload(budgeted, task_id, "i-1", data, key="k-1").status == 202  # the agent's retry
    done = wait_finished(budgeted, task_id, ["i-1"], timeout=300)
    assert done["errorInstanceIds"] == []


def test_a_client_that_hangs_up_mid_body_is_an_interrupted_upload(budgeted):
    task_id = create_task(budgeted, ["i-1"])
    with socket.create_connection(("127.0.0.1", budgeted.port)) as s:
        s.sendall(f"POST /api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance=i-1 HTTP/1.1\r\n"
                  f"Host: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: 1000000\r\n\r\n".encode() + b"\x1f\x8b" + bytes(998))
    (log,) = wait_until(lambda: logs_of(budgeted, task_id, "EXECUTION_TASK_ERROR"), message="the interruption's log")
    assert log["message"] == "upload interrupted after 1000 of 1000000 bytes", log
    assert progress(budgeted, task_id)["errorInstanceIds"] == ["i-1"]
    assert budgeted.get("/readyz").status == 200


def test_a_full_budget_answers_503_before_the_body_to_expect_100_continue(budgeted):
    task_id = create_task(budgeted, ["i-1", "i-2", "i-3"])
    path = f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance="
    holders = [socket.create_connection(("127.0.0.1", budgeted.port)) for _ in range(2)]
    try:  # two uploads of 29 MiB declared, sent slowly: 58 of the 64 MiB budget
        for instance, holder in zip(("i-1", "i-2"), holders, strict=False):
            holder.sendall(f"POST {path}{instance} HTTP/1.1\r\nHost: x\r\nContent-Length: {29 * 1024 * 1024}"
                           f"\r\n\r\n".encode() + bytes(1000))
        wait_until(lambda: _metric(budgeted, "proftask_upload_bytes_in_flight") == 58 * 1024 * 1024,
                   message="the budget charged")
        with socket.create_connection(("127.0.0.1", budgeted.port), timeout=30) as s:
            s.sendall(f"POST {path}i-3 HTTP/1.1\r\nHost: x\r\nContent-Length: {29 * 1024 * 1024}\r\n"
                      f"Expect: 100-continue\r\n\r\n".encode())  # no body until 100 Continue
            head = s.recv(4096).decode()
    finally:
        for holder in holders:
            holder.close()
    assert head.startswith("HTTP/1.1 503") and "\r\nRetry-After: " in head and '"UNAVAILABLE"' in head, head


def _metric(p, name: str) -> float:
    for line in p.get("/metrics").body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return 0.0
