"""A proftask process starting while a listed broker is down goes on with the others (the wait
for every broker is only for a deployment that just started its cluster)."""
from __future__ import annotations

import asyncio
import socket

import pytest

from proftask.kafka.readiness import BrokerUnavailable, wait_for_broker
from tests.unit.test_broker_readiness import _closed_port


def test_a_starting_process_goes_on_to_the_metadata_call_when_any_broker_is_up():
    with socket.socket() as listening:  # open, but no Kafka behind it: the metadata call fails
        listening.bind(("127.0.0.1", 0))
        listening.listen()
        up, down = listening.getsockname()[1], _closed_port()
        with pytest.raises(BrokerUnavailable, match="answers no metadata call"):
            asyncio.run(wait_for_broker(f"127.0.0.1:{down},127.0.0.1:{up}", timeout_s=1.5))
