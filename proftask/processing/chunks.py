"""Reading a chunked profile's bytes back from the chunk topic by offset (processor and replay).

A plain consumer without a group: assign the partition, seek to each chunk's offset, check
each chunk names the profile and its place, and the whole content its sha256."""
from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import BinaryIO

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import CHUNK_BYTES

# A fetch brings about one chunk, so a seek past other profiles' chunks wastes little.
log = logging.getLogger(__name__)
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
            self._started = False
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
        """Writes the profile's content to `out`; returns its size. Raises ChunksUnreadable."""
        async with self._lock:
            consumer = self._made()
            if not self._started:
                await consumer.start()
                self._started = True
            try:
                return await asyncio.wait_for(self._read(consumer, up, out), READ_TIMEOUT_S)
            except TimeoutError:
                tp = TopicPartition(up.chunks.topic, up.chunks.partition)
                try:  # the broker away is waited out (the batch is taken again), not the profile's end
                    first = (await asyncio.wait_for(consumer.beginning_offsets([tp]), PROBE_TIMEOUT_S))[tp]
                except (KafkaError, TimeoutError) as e:
                    await self._discard()  # its fetcher left a cancelled task its stop() raised later
                    raise KafkaAwayWhileReading(f"chunks of profile {up.profile_id} not read within "
                                                f"{READ_TIMEOUT_S}s, and Kafka does not answer ({e!r})") from None
                offsets = up.chunks.offsets
                gone = f"; its offsets begin at {first} now" if offsets and first > offsets[0] else ""
                raise ChunksUnreadable(f"chunks of profile {up.profile_id} not read within {READ_TIMEOUT_S}s "
                                       f"(not on {up.chunks.topic}[{up.chunks.partition}] any more?{gone})") from None
            finally:
                consumer.pause(*consumer.assignment())  # assign() in _read resumes it

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
