"""The event producer every service uses: acks=all and idempotence, so an accepted request
(2xx) means the event is durably on Kafka."""
from __future__ import annotations

import asyncio
from typing import Iterable

from aiokafka import AIOKafkaProducer
from aiokafka.structs import RecordMetadata

from proftask import metrics
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import MAX_MESSAGE_BYTES


class EventProducer:
    def __init__(self, bootstrap: str):
        self._producer = AIOKafkaProducer(
            bootstrap_servers=bootstrap,
            acks="all",
            enable_idempotence=True,
            max_request_size=MAX_MESSAGE_BYTES,
            request_timeout_ms=30_000,
            compression_type=None,
        )
        self.started = False

    async def start(self) -> None:
        await self._producer.start()
        self.started = True

    async def stop(self) -> None:
        self.started = False
        await self._producer.stop()

    async def send(self, topic: str, key: bytes, event: pb.Envelope) -> None:
        """Returns once the broker acknowledged the event (raises otherwise)."""
        await self._producer.send_and_wait(topic, event.SerializeToString(), key=key)
        metrics.EVENTS_PRODUCED.labels(event.type).inc()

    async def send_all(self, topic: str, key: bytes, events: Iterable[pb.Envelope]) -> list[RecordMetadata]:
        """Sends the events in order (one key, one partition) without waiting for each ack, and
        returns every record's metadata once all are acknowledged. The producer holds at most a
        batch or two per partition (send waits while the partition's batch is full), and the
        iterable is consumed as that allows, so a large upload is never all in memory here."""
        acks = []
        try:
            for event in events:
                acks.append(await self._producer.send(topic, event.SerializeToString(), key=key))
                metrics.EVENTS_PRODUCED.labels(event.type).inc()
            return list(await asyncio.gather(*acks))
        except BaseException:
            for ack in acks:  # their outcome no longer matters; do not warn that it was unread
                ack.add_done_callback(lambda f: f.cancelled() or f.exception())
            raise
