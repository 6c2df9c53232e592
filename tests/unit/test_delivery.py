"""send_until_acked waits Kafka out: a decider or row agent body that raised on a send left what it
had taken unacked, and its partition's commits stopped there until a restart."""
from __future__ import annotations

import asyncio

import pytest
from aiokafka.errors import KafkaConnectionError, KafkaTimeoutError

from proftask.kafka.delivery import send_until_acked


class Topic:
    """A Faust topic's send: the future of the broker's ack, failing as told first."""

    def __init__(self, *failures: BaseException):
        self.failures, self.acked = list(failures), []

    async def send(self, key: bytes, value: bytes):
        ack = asyncio.get_running_loop().create_future()
        if self.failures:
            ack.set_exception(self.failures.pop(0))
        else:
            self.acked.append((key, value))
            ack.set_result(None)
        return ack


def test_a_send_is_tried_again_until_the_broker_acks_it():
    topic = Topic(KafkaConnectionError(), KafkaTimeoutError(), ConnectionResetError())
    asyncio.run(send_until_acked(topic, b"k", b"decision", "a decision", first_backoff_s=0.001))
    assert topic.acked == [(b"k", b"decision")]


def test_what_is_not_kafka_away_is_raised_at_once():
    topic = Topic(ValueError("not a record"))
    with pytest.raises(ValueError, match="not a record"):
        asyncio.run(send_until_acked(topic, b"k", b"v", "a decision", first_backoff_s=0.001))
    assert topic.acked == []
