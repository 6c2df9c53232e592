"""The services' event producer against a real broker: a send Kafka refuses renews the producer
(aiokafka's idempotent producer is left out of step with the broker), and the sends still on the
old one end as they would have (it is stopped once they are done)."""
from __future__ import annotations

import asyncio
import uuid

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import MAX_MESSAGE_BYTES
from tests.integration.harness import set_max_message_bytes


def chunk(index: int, size: int) -> pb.Envelope:
    return events.new_event("acme", pb.ProfileChunk(profile_id="p", index=index, data=bytes(size)))


def test_uploads_in_flight_end_whole_when_another_send_renews_the_producer(broker):
    uploads_topic, refusing_topic = f"t-{uuid.uuid4().hex[:8]}-chunks", f"t-{uuid.uuid4().hex[:8]}-events"

    async def main() -> tuple[BaseException | None, list]:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.create_topics([NewTopic(uploads_topic, 1, 1, topic_configs={"max.message.bytes": str(MAX_MESSAGE_BYTES)}),
                                       NewTopic(refusing_topic, 1, 1)])
        finally:
            await admin.close()
        producer = EventProducer(broker.bootstrap)
        await producer.start()
        try:
            await producer.send(refusing_topic, b"k", chunk(0, 10))
            first = producer._producer  # noqa: SLF001 - which aiokafka producer is in use is the point
            await asyncio.to_thread(set_max_message_bytes, broker, refusing_topic, 64)
            # six uploads of 8 MB on one partition: most of their chunks wait for room in the producer
            uploads = [asyncio.ensure_future(producer.send_all(uploads_topic, b"k",
                                                               (chunk(i, 1 << 20) for i in range(8))))
                       for _ in range(6)]
            await asyncio.sleep(0)  # they start
            try:
                await producer.send(refusing_topic, b"k", chunk(1, 500))  # refused: the producer is renewed
                refused = None
            except Exception as e:  # noqa: BLE001 - the refusal, whatever aiokafka calls it
                refused = e
            assert not all(u.done() for u in uploads)
            assert producer._producer is not first  # noqa: SLF001 - renewed, the uploads still on the old one
            results = await asyncio.gather(*uploads, return_exceptions=True)
            await asyncio.wait_for(asyncio.gather(*producer._retired), 30)  # noqa: SLF001
            assert first._closed  # noqa: SLF001 - and the old one stopped once they were done
            return refused, results
        finally:
            await producer.stop()

    refused, results = asyncio.run(main())
    assert type(refused).__name__ == "MessageSizeTooLargeError"
    # before, the renewal stopped the old producer at once: all six failed with ProducerClosed
    assert [len(r) if isinstance(r, list) else r for r in results] == [8] * 6
