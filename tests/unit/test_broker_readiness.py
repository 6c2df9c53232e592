"""Waiting for Kafka: a deployment waits for every broker it listed, a starting process for any
one of them (so that it starts while a node is down)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from proftask.kafka.readiness import BrokerUnavailable, wait_for_broker


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_deployment_waits_for_every_listed_broker_and_names_the_one_missing():
    with socket.socket() as listening:  # a node whose port is open
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up, down = listening.getsockname()[1], _closed_port()
        with pytest.raises(BrokerUnavailable, match=f"port 127.0.0.1:{down} not open"):
            asyncio.run(wait_for_broker(f"127.0.0.1:{up},127.0.0.1:{down}", timeout_s=0.5, every_broker=True))
