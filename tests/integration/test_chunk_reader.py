"""The processor's ChunkReader (proftask/processing/chunks.py) against a real broker: profiles
whose chunks interleave on one partition, or lie on another, read one after another by one
reader, also after a read that failed; and between reads the reader asks the broker nothing of
the topics it does not read (unassigning the partition made the client track no topic, and
its metadata refresh then asked for every topic of the cluster)."""
from __future__ import annotations

import asyncio
import hashlib
import io
import os
import uuid

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.delivery import KAFKA_AWAY
from proftask.processing import chunks
from proftask.processing.chunks import ChunkReader, ChunksUnreadable, KafkaAwayWhileReading
from tests.integration.harness import KafkaBroker


async def _produce(bootstrap: str, topic: str, pieces: list[tuple[int, str, int, bytes]]) -> list[int]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        await admin.close()
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=2 << 20)
    await producer.start()
    try:
        offsets = []
        for partition, pid, index, data in pieces:
            env = events.new_event("acme", pb.ProfileChunk(profile_id=pid, index=index, data=data))
            offsets.append((await producer.send_and_wait(topic, env.SerializeToString(), partition=partition)).offset)
        return offsets
    finally:
        await producer.stop()


def _uploaded(pid: str, topic: str, partition: int, offsets: list[int], content: bytes) -> pb.ProfileUploaded:
    return pb.ProfileUploaded(profile_id=pid, size=len(content), chunks=pb.ChunkRefs(
        topic=topic, partition=partition, offsets=offsets, sha256=hashlib.sha256(content).digest()))


def test_one_reader_reads_interleaved_and_other_partitions_chunks_and_asks_only_of_its_topic(broker):
    topic = f"chunks-{uuid.uuid4().hex[:8]}"
    a, b, c = ([os.urandom(300_000) for _ in range(3)], [os.urandom(200_000) for _ in range(2)],
               [os.urandom(100_000)])
    pieces = [(0, "a", 0, a[0]), (0, "b", 0, b[0]), (0, "a", 1, a[1]), (1, "c", 0, c[0]), (0, "b", 1, b[1]),
              (0, "a", 2, a[2])]

    async def scenario() -> None:
        at = await _produce(broker.bootstrap, topic, pieces)
        ups = {"a": _uploaded("a", topic, 0, [at[0], at[2], at[5]], b"".join(a)),
               "b": _uploaded("b", topic, 0, [at[1], at[4]], b"".join(b)),
               "c": _uploaded("c", topic, 1, [at[3]], c[0])}
        reader = ChunkReader(broker.bootstrap)
        client = reader._made()._client
        asked: list = []
        update = client._metadata_update

        async def recorded(cluster, topics):
            asked.append(set(topics or ()))
            return await update(cluster, topics)

        client._metadata_update = recorded
        try:
            for pid in ("a", "c", "b", "a"):
                out = io.BytesIO()
                assert await reader.read_into(ups[pid], out) == ups[pid].size
                assert out.getvalue() == {"a": b"".join(a), "b": b"".join(b), "c": c[0]}[pid]
            wrong = _uploaded("b", topic, 0, [at[0], at[4]], b"".join(b))  # its first chunk is a's
            with pytest.raises(ChunksUnreadable):
                await reader.read_into(wrong, io.BytesIO())
            out = io.BytesIO()
            assert await reader.read_into(ups["b"], out) == ups["b"].size and out.getvalue() == b"".join(b)
            if client._md_update_fut is not None:  # a refresh the last read asked for
                await client._md_update_fut
        finally:
            await reader.stop()
        every_topic = sum(1 for topics in asked if not topics)
        assert every_topic == 0, f"{every_topic} of {len(asked)} metadata requests asked for every topic"
        assert len(asked) <= 2, f"{len(asked)} metadata requests for 6 reads of one topic"

    asyncio.run(scenario())


def test_a_read_that_times_out_while_kafka_is_away_is_waited_out_not_the_profiles_end(tmp_path, monkeypatch, caplog):
    """Chunks not read in time: with the broker answering that it does not hold them (gone, past
    the end, a partition or topic it does not have) the profile is a dead letter, and an unknown
    partition is said at once; with the broker away, the processor waits it out (a TimeoutError,
    delivery.KAFKA_AWAY) and its instance does not fail; a broker back while the reader asks it
    is read from again."""
    monkeypatch.setattr(chunks, "READ_TIMEOUT_S", 3)
    monkeypatch.setattr(chunks, "PROBE_TIMEOUT_S", 60)
    own = KafkaBroker(tmp_path / "kafka")  # stopped below: not the session's broker
    own.start()
    topic, data = f"chunks-{uuid.uuid4().hex[:8]}", os.urandom(100_000)

    async def asked_kafka(reads: asyncio.Task) -> None:
        for _ in range(400):  # the warning the first read's timeout leaves (20 s at most)
            if reads.done() or any("asking Kafka whether it holds them" in r.getMessage() for r in caplog.records):
                return
            await asyncio.sleep(0.05)

    async def scenario() -> None:
        at = await _produce(own.bootstrap, topic, [(0, "a", 0, data)])
        a = _uploaded("a", topic, 0, at, data)
        reader = ChunkReader(own.bootstrap)
        try:
            assert await reader.read_into(a, io.BytesIO()) == len(data)
            for wrong, says in ((_uploaded("b", topic, 0, [at[0] + 5], data), "point past the end"),
                                (_uploaded("b", topic, 7, at, data), r"partition 7 of .*, which has partitions \[0, 1\]"),
                                (_uploaded("b", "no-such-topic", 0, at, data), "which Kafka does not have")):
                with pytest.raises(ChunksUnreadable, match=says) as unreadable:
                    await reader.read_into(wrong, io.BytesIO())
                assert not isinstance(unreadable.value, KAFKA_AWAY)
            # away past the read's timeout, back while the reader asks whether Kafka holds the chunks
            own.stop()
            caplog.clear()
            out = io.BytesIO()
            reads = asyncio.ensure_future(reader.read_into(a, out))
            await asked_kafka(reads)
            assert not reads.done(), reads.exception()
            await asyncio.to_thread(own.start)
            assert await reads == len(data) and out.getvalue() == data
            # away for good: waited out, not the profile's end
            own.stop()
            monkeypatch.setattr(chunks, "PROBE_TIMEOUT_S", 3)
            with pytest.raises(KafkaAwayWhileReading, match="Kafka does not answer") as away:
                await reader.read_into(a, io.BytesIO())
            assert isinstance(away.value, KAFKA_AWAY) and not isinstance(away.value, ChunksUnreadable)
            own.start()  # back: the batch taken again reads it
            monkeypatch.setattr(chunks, "READ_TIMEOUT_S", 60)
            out = io.BytesIO()
            assert await reader.read_into(a, out) == len(data)
            assert out.getvalue() == data
        finally:
            await reader.stop()

    try:
        asyncio.run(scenario())
    finally:
        own.stop()
