"""Reading a chunked profile's bytes back from the chunk topic by offset (processor and replay).

A plain consumer without a group: assign the partition, seek to each chunk's offset, check
each chunk names the profile and its place, and the whole content its sha256."""
from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable
from typing import BinaryIO, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.cluster import ClusterMetadata
from aiokafka.errors import KafkaConnectionError, KafkaError

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import CHUNK_BYTES

# A fetch brings about one chunk, so a seek past other profiles' chunks wastes little.
log = logging.getLogger(__name__)
T = TypeVar("T")
FETCH_BYTES = CHUNK_BYTES + 64 * 1024
READ_TIMEOUT_S = 120
PROBE_TIMEOUT_S = 15  # asking Kafka where the partition begins, once a read has timed out
FETCH_WAIT_MS = 20


class ChunksUnreadable(Exception):
    """The chunks a ProfileUploaded points to are missing or do not match it."""


class KafkaAwayWhileReading(TimeoutError):
    """The chunks were not read in time and Kafka does not answer: not the profile's fault (a
    TimeoutError, which the processor waits out as Kafka away, delivery.KAFKA_AWAY). A broker
    gone for longer than READ_TIMEOUT_S while the processor held profiles whose chunks it had
    not read yet failed their instances ("not on the topic any more?") though nothing was lost."""


class ChunkReader:
    def __init__(self, bootstrap: str):
        self._bootstrap = bootstrap
        self._consumer: AIOKafkaConsumer | None = None  # made when first needed; again after a stop
        self._lock = asyncio.Lock()  # one seek position: one profile at a time
        self._started = False
        self._partitions: dict[str, set[int]] = {}  # of each topic read, as Kafka told this consumer

    def _made(self) -> AIOKafkaConsumer:
        if self._consumer is None:
            # A short wait at the end of the log: a seek waits for the fetch in flight, which past
            # a profile's last chunk (where the consumer prefetches) the broker held for the
            # default 500 ms. Between profiles the partition is paused, so an idle reader fetches
            # nothing (not unassigned: a client of no topic refreshes the metadata of every topic
            # of the cluster).
            self._consumer = AIOKafkaConsumer(bootstrap_servers=self._bootstrap, group_id=None,
                                              enable_auto_commit=False, max_partition_fetch_bytes=FETCH_BYTES,
                                              fetch_max_bytes=4 * FETCH_BYTES, fetch_max_wait_ms=FETCH_WAIT_MS)
            self._started, self._partitions = False, {}
        return self._consumer

    async def stop(self) -> None:
        """Stops the consumer, started or not (aiokafka warns of one made and never stopped:
        "Unclosed AIOKafkaConsumer"); a later read makes another. Not behind the read lock: a
        stop does not wait out a read."""
        consumer, self._consumer = self._consumer, None
        if consumer is not None:
            await consumer.stop()

    async def _discard(self) -> None:
        """Drops the consumer (the next read makes another), stopping it whatever its stop raises
        of its own tasks: the cancellation of the caller's task is passed on."""
        consumer, self._consumer = self._consumer, None
        if consumer is None:
            return
        try:
            await consumer.stop()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise
        except Exception:  # noqa: BLE001 - Kafka away: whatever the stop of a consumer we drop raises
            log.debug("a chunk consumer dropped while Kafka was away did not stop cleanly", exc_info=True)

    async def read_into(self, up: pb.ProfileUploaded, out: BinaryIO) -> int:
        """Writes the profile's content to `out`; returns its size. Raises ChunksUnreadable when
        Kafka answers that it does not hold them, KafkaAwayWhileReading when it does not answer."""
        tp = TopicPartition(up.chunks.topic, up.chunks.partition)
        async with self._lock:
            for attempt in (1, 2):
                consumer = self._made()
                try:
                    if not self._started:
                        await consumer.start()
                        self._started = True
                    if tp.partition not in self._partitions.get(tp.topic, ()):
                        # asked before it is assigned: aiokafka asks again and again of one it does not find
                        self._partitions[tp.topic] = await self._ask(up, self._partitions_of(consumer, tp, up))
                    return await asyncio.wait_for(self._read(consumer, up, out), READ_TIMEOUT_S)
                except TimeoutError:
                    log.warning("chunks of profile %s not read within %ss: asking Kafka whether it holds them",
                                up.profile_id, READ_TIMEOUT_S)
                    await self._ask(up, self._check_offsets(consumer, tp, up))
                    if attempt == 2:
                        raise ChunksUnreadable(
                            f"chunks of profile {up.profile_id} not read in two tries of {READ_TIMEOUT_S}s, though "
                            f"{tp.topic}[{tp.partition}] holds their offsets") from None
                    # Kafka holds them and answers again (it was away, and is back): read again, with
                    # a consumer of its own (the one a dead broker left may not fetch again)
                    out.seek(0)
                    out.truncate()
                    await self._discard()
                finally:
                    if consumer is self._consumer:
                        consumer.pause(*consumer.assignment())  # assign() in _read resumes it
        raise AssertionError("unreachable")

    async def _ask(self, up: pb.ProfileUploaded, question: Awaitable[T]) -> T:
        """Asks Kafka about the chunks' partition; no answer raises KafkaAwayWhileReading."""
        try:
            return await asyncio.wait_for(question, PROBE_TIMEOUT_S)
        except (KafkaError, TimeoutError) as e:
            await self._discard()  # its fetcher left a cancelled task its stop() raised later
            raise KafkaAwayWhileReading(f"chunks of profile {up.profile_id} not read: Kafka does not answer "
                                        f"({e!r})") from None

    @staticmethod
    async def _partitions_of(consumer: AIOKafkaConsumer, tp: TopicPartition, up: pb.ProfileUploaded) -> set[int]:
        """The topic's partitions; raises ChunksUnreadable unless they hold the chunks'."""
        # the topic's metadata alone, as aiokafka asks for an assigned topic's (its public topics()
        # asks for every topic of the cluster, and answers with their names only)
        cluster = ClusterMetadata()
        if not await consumer._client._metadata_update(cluster, [tp.topic]):
            raise KafkaConnectionError("no broker answered a metadata request")
        partitions = cluster.partitions_for_topic(tp.topic)
        if partitions is None:
            raise ChunksUnreadable(f"profile {up.profile_id} points to chunks on topic {tp.topic!r}, which Kafka "
                                   f"does not have")
        if tp.partition not in partitions:
            raise ChunksUnreadable(f"profile {up.profile_id} points to chunks on partition {tp.partition} of "
                                   f"{tp.topic}, which has partitions {sorted(partitions)}")
        return partitions

    @staticmethod
    async def _check_offsets(consumer: AIOKafkaConsumer, tp: TopicPartition, up: pb.ProfileUploaded) -> None:
        """Raises ChunksUnreadable unless the partition holds every chunk's offset."""
        first = (await consumer.beginning_offsets([tp]))[tp]
        end = (await consumer.end_offsets([tp]))[tp]
        offsets = up.chunks.offsets
        if offsets[0] < first:
            raise ChunksUnreadable(f"chunks of profile {up.profile_id} are not on {tp.topic}[{tp.partition}] any "
                                   f"more: its offsets begin at {first}, the profile's at {offsets[0]}")
        if offsets[-1] >= end:
            raise ChunksUnreadable(f"chunks of profile {up.profile_id} point past the end of "
                                   f"{tp.topic}[{tp.partition}]: its offsets end before {end}, the profile's at "
                                   f"{offsets[-1]}")

    @staticmethod
    async def _read(consumer: AIOKafkaConsumer, up: pb.ProfileUploaded, out: BinaryIO) -> int:
        refs = up.chunks
        tp = TopicPartition(refs.topic, refs.partition)
        consumer.assign([tp])
        offsets = list(refs.offsets)
        if not offsets:
            raise ChunksUnreadable(f"profile {up.profile_id} points to no chunks")
        digest, size, i = hashlib.sha256(), 0, 0
        consumer.seek(tp, offsets[0])
        while i < len(offsets):
            batch = await consumer.getmany(tp, timeout_ms=1000)
            for record in batch.get(tp, ()):
                if i == len(offsets) or record.offset < offsets[i]:
                    continue
                if record.offset > offsets[i]:
                    raise ChunksUnreadable(f"chunk {i} of profile {up.profile_id} (offset {offsets[i]}) is gone")
                chunk = events.decode(record.value).profile_chunk
                if chunk.profile_id != up.profile_id or chunk.index != i:
                    raise ChunksUnreadable(f"offset {record.offset} holds chunk {chunk.index} of profile "
                                           f"{chunk.profile_id!r}, not chunk {i} of {up.profile_id}")
                digest.update(chunk.data)
                out.write(chunk.data)
                size += len(chunk.data)
                i += 1
            if i < len(offsets) and await consumer.position(tp) != offsets[i]:
                consumer.seek(tp, offsets[i])  # skip other profiles' chunks in between
        if digest.digest() != refs.sha256 or size != up.size:
            raise ChunksUnreadable(f"the chunks of profile {up.profile_id} do not add up to its content "
                                   f"({size} bytes read, {up.size} uploaded; sha256 differs)")
        return size
