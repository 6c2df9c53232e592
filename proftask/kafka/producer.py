"""The event producer every service uses: acks=all and idempotence, so an accepted request
(2xx) means the event is durably on Kafka."""
from __future__ import annotations

from aiokafka import AIOKafkaProducer

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
