"""Sending from a Faust agent's body until the broker acks: a body that raised was restarted by
Faust with the records it had taken never acked, so its partition's commits stopped there until a
restart (proftask.faust_commits). Kafka away is waited out instead, however long that takes."""
from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError

log = logging.getLogger(__name__)
KAFKA_AWAY = (KafkaError, ConnectionError, TimeoutError)


async def send_until_acked(topic, key: bytes, value: bytes, what: str, first_backoff_s: float = 0.5,
                           max_backoff_s: float = 10.0) -> None:
    """topic.send (a Faust topic) and its ack, tried again after each Kafka failure, waiting twice
    as long each time up to max_backoff_s. A record sent twice this way is the same record: every
    proftask event id derives from what it records, and sinks keep one per id."""
    backoff = first_backoff_s
    while True:
        try:
            await (await topic.send(key=key, value=value))
            return
        except KAFKA_AWAY as e:
            log.warning("%s not sent (%r); sent again in %.1fs", what, e, backoff)
        await asyncio.sleep(backoff)
        backoff = min(backoff * 2, max_backoff_s)
