"""The event producer every service uses: acks=all and idempotence, so an accepted request
(2xx) means the event is durably on Kafka."""
from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.structs import RecordMetadata

from proftask import metrics
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import MAX_MESSAGE_BYTES

log = logging.getLogger(__name__)
OLD_PRODUCER_STOP_S = 60
RENEW_BACKOFF_S = 5.0
# A send making no progress for this long fails (TimeoutError). aiokafka bounds each request by
# its request timeout, but not a send waiting for the metadata of a broker that is down: an
# upload waited minutes for its answer, and an agent gives up on an upload after 60 s.
SEND_STALL_S = 30.0
RENEW_WAIT_S = 5.0  # a failed send's caller waits this long for the renewal (which goes on)


@contextlib.asynccontextmanager
async def _stall_bound(what: str) -> AsyncIterator[None]:
    try:
        async with asyncio.timeout(SEND_STALL_S):
            yield
    except TimeoutError:
        raise TimeoutError(f"Kafka did not acknowledge {what} within {SEND_STALL_S:.0f} s") from None


class EventProducer:
    """Every send that fails renews the producer (renew), whichever service sent it: a task
    desk's NOTIFIED that met a partition changing leader left aiokafka's producer refusing every
    later send to that partition, so the task was never handed to an agent again."""

    def __init__(self, bootstrap: str):
        self._bootstrap = bootstrap
        # made by start(): one made and never started (a process refusing to start) is reported
        # "Unclosed AIOKafkaProducer" when collected
        self._producer: AIOKafkaProducer | None = None
        self._renewal: asyncio.Task | None = None
        self._renewal_failed_at = float("-inf")
        self._owed_renewal: AIOKafkaProducer | None = None  # a failed producer whose renewal failed too
        self._retired: set[asyncio.Task] = set()
        self._in_flight: collections.Counter[AIOKafkaProducer] = collections.Counter()
        self._idle: dict[AIOKafkaProducer, asyncio.Event] = {}
        self.started = False

    def _new_producer(self) -> AIOKafkaProducer:
        return AIOKafkaProducer(
            bootstrap_servers=self._bootstrap,
            acks="all",
            enable_idempotence=True,
            max_request_size=MAX_MESSAGE_BYTES,
            request_timeout_ms=30_000,
            compression_type=None,
        )

    async def renew(self, failed: AIOKafkaProducer) -> None:
        """Replace the producer after a send on `failed` failed. An idempotent producer whose
        batch failed (timed out, refused) keeps sequence numbers the broker no longer agrees
        with, and aiokafka never recovers them: every later send to that partition fails with
        OutOfOrderSequenceNumber. A fresh producer has a fresh producer id.

        Sends that fail together share one attempt (they waited for each other's, one after
        another: with the broker unreachable, the twentieth poll's 503 came minutes late), and
        after a failed attempt none is made for RENEW_BACKOFF_S. The old producer is stopped
        once the sends still on it are done (stopped at once, it failed them all with
        ProducerClosed: 46 uploads answered 503 after a broker came back)."""
        if self._producer is not failed:  # renewed already
            return
        if self._renewal is None or self._renewal.done():
            if time.monotonic() - self._renewal_failed_at < RENEW_BACKOFF_S:
                self._owed_renewal = failed  # Kafka is away: the next send after the pause tries again
                return
            self._renewal = asyncio.get_running_loop().create_task(self._replace(failed))
        await asyncio.shield(self._renewal)

    async def _replace(self, failed: AIOKafkaProducer) -> None:
        fresh = self._new_producer()
        try:
            await fresh.start()
        except BaseException:
            self._renewal_failed_at = time.monotonic()
            self._owed_renewal = failed
            await fresh.stop()
            raise
        self._producer, self._owed_renewal = fresh, None
        log.warning("Kafka producer renewed after a failed send")
        retire = asyncio.get_running_loop().create_task(self._retire(failed))
        self._retired.add(retire)
        retire.add_done_callback(self._forget_retired)

    async def _retire(self, old: AIOKafkaProducer) -> None:
        """Stops `old` once no send is on it, or after OLD_PRODUCER_STOP_S whatever is."""
        try:
            if self._in_flight[old]:
                await asyncio.wait_for(self._idle.setdefault(old, asyncio.Event()).wait(), OLD_PRODUCER_STOP_S)
        except TimeoutError:
            log.warning("an old Kafka producer still had sends after %d s; stopped", OLD_PRODUCER_STOP_S)
        finally:
            self._idle.pop(old, None)
            await asyncio.wait_for(old.stop(), OLD_PRODUCER_STOP_S)

    def _forget_retired(self, retire: asyncio.Task) -> None:
        self._retired.discard(retire)
        if not retire.cancelled():
            retire.exception()  # read, so an old producer's failed stop is not logged as unhandled

    async def _renew_within(self, failed: AIOKafkaProducer, when: str) -> None:
        """renew(), waited for up to RENEW_WAIT_S (a hung broker holds a new producer's start;
        the renewal goes on); a renewal that fails is left to the next send after the pause."""
        try:
            async with asyncio.timeout(RENEW_WAIT_S):
                await self.renew(failed)
        except Exception as e:  # noqa: BLE001 - Kafka away
            log.warning("Kafka producer not renewed %s: %r", when, e)

    @contextlib.asynccontextmanager
    async def _sending(self) -> AsyncIterator[AIOKafkaProducer]:
        """The producer for one send (all of send_all's records go on one), renewed if Kafka
        fails the send (not when the caller's own code raised meanwhile)."""
        owed = self._owed_renewal
        if owed is not None and owed is self._producer:
            # its renewal failed (Kafka away), and it is out of step still: the first send once
            # Kafka is back renews it, rather than stall on it for SEND_STALL_S
            await self._renew_within(owed, "before a send")
        producer = self._producer
        assert producer is not None, "EventProducer.start() first"
        self._in_flight[producer] += 1
        try:
            yield producer
        except (KafkaError, TimeoutError):
            await self._renew_within(producer, "after a failed send")
            raise
        finally:
            self._in_flight[producer] -= 1
            if not self._in_flight[producer]:
                del self._in_flight[producer]
                idle = self._idle.get(producer)
                if idle is not None:
                    idle.set()

    async def start(self) -> None:
        producer = self._new_producer()
        try:
            await producer.start()
        except BaseException:
            await producer.stop()
            raise
        self._producer = producer
        self.started = True

    async def stop(self) -> None:
        self.started = False
        for idle in self._idle.values():  # shutting down: old producers are stopped now
            idle.set()
        await asyncio.gather(*self._retired, return_exceptions=True)
        if self._producer is not None:
            await self._producer.stop()

    async def send(self, topic: str, key: bytes, event: pb.Envelope) -> None:
        """Returns once the broker acknowledged the event (raises otherwise)."""
        async with self._sending() as producer, _stall_bound("the record"):
            await producer.send_and_wait(topic, event.SerializeToString(), key=key)
        metrics.EVENTS_PRODUCED.labels(event.type).inc()

    async def send_all(self, topic: str, key: bytes, events: Iterable[pb.Envelope]) -> list[RecordMetadata]:
        """Sends the events in order (one key, one partition) without waiting for each ack, and
        returns every record's metadata once all are acknowledged. The producer holds at most a
        batch or two per partition (send waits while the partition's batch is full), and the
        iterable is consumed as that allows, so a large upload is never all in memory here."""
        acks: list[asyncio.Future[RecordMetadata]] = []
        try:
            async with self._sending() as producer:
                for event in events:
                    async with _stall_bound(f"record {len(acks) + 1}"):  # waits while the partition's batch is full
                        acks.append(await producer.send(topic, event.SerializeToString(), key=key))
                    metrics.EVENTS_PRODUCED.labels(event.type).inc()
                async with _stall_bound(f"all {len(acks)} records"):
                    return list(await asyncio.gather(*map(asyncio.shield, acks)))
        except BaseException:
            for ack in acks:  # their outcome no longer matters; do not warn that it was unread
                ack.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise
