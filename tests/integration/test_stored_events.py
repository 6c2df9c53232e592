"""An agent iterating `stored_events` commits an event only once its body is done with it: a stop
in the middle of a body (the decider awaiting the broker's ack of its decision) leaves that
event to be read again after the restart. Faust's own `stream.events()` acked it as the stop
closed the stream, so the consumer committed past it."""
from __future__ import annotations

import asyncio
import dataclasses

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import TopicPartition

from proftask.config import load_settings
from proftask.faust_app import create_faust_app, faust_ready, stored_events
from proftask.kafka.topics import TopicSpec, ensure_topics
from tests.integration.harness import new_topic_prefix


async def _committed(bootstrap: str, group: str, tp: TopicPartition) -> int | None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        offsets = await admin.list_consumer_group_offsets(group)
    finally:
        await admin.close()
    return offsets[tp].offset if tp in offsets else None


async def _stop_in_the_middle_of_the_second_body(bootstrap: str, data_dir) -> tuple[list[bytes], int | None]:
    settings = dataclasses.replace(load_settings(env={}), kafka_bootstrap=bootstrap, data_dir=data_dir,
                                   partitions=1, replication_factor=1)
    prefix = new_topic_prefix()
    await ensure_topics(bootstrap, [TopicSpec(f"{prefix}requests", 1, {})], 1)
    app = create_faust_app(f"{prefix}stored-events", settings)
    topic = app.topic(f"{prefix}requests", key_type=bytes, value_type=bytes, partitions=1)
    done: list[bytes] = []
    second_taken = asyncio.Event()

    @app.agent(topic)
    async def decide(stream):
        async for event in stored_events(stream):
            if event.value == b"second":
                second_taken.set()
                await asyncio.Event().wait()  # as a decision awaiting the broker when the stop came
            done.append(event.value)

    app.finalize()
    await app.start()
    try:
        async with asyncio.timeout(60):
            while not faust_ready(app, True):
                await asyncio.sleep(0.05)
            for value in (b"first", b"second"):
                await (await topic.send(key=b"k", value=value))
            await second_taken.wait()
    finally:
        await app.stop()
    return done, await _committed(bootstrap, app.conf.id, TopicPartition(topic.get_topic_name(), 0))


def test_a_stop_mid_body_commits_what_was_done_and_not_the_event_in_hand(broker, tmp_path):
    done, committed = asyncio.run(_stop_in_the_middle_of_the_second_body(broker.bootstrap, tmp_path))
    assert done == [b"first"]
    assert committed == 1  # a restart reads "second" again
