"""Reading a chunked profile's bytes back from the chunk topic by offset (processor and replay).

A plain consumer without a group: assign the partition, seek to each chunk's offset, check
each chunk names the profile and its place, and the whole content its sha256."""
from __future__ import annotations

import asyncio
import hashlib
from typing import BinaryIO

from aiokafka import AIOKafkaConsumer, TopicPartition

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import CHUNK_BYTES

# A fetch brings about one chunk, so a seek past other profiles' chunks wastes little.
FETCH_BYTES = CHUNK_BYTES + 64 * 1024
READ_TIMEOUT_S = 120
FETCH_WAIT_MS = 20


class ChunksUnreadable(Exception):
    """The chunks a ProfileUploaded points to are missing or do not match it."""


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
                raise ChunksUnreadable(f"chunks of profile {up.profile_id} not read within {READ_TIMEOUT_S}s "
                                       f"(not on {up.chunks.topic}[{up.chunks.partition}] any more?)") from None
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
