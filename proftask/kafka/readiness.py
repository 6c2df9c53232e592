"""Waiting for a broker: first its TCP port, then a real metadata call. Faust workers exit at
once when they cannot bootstrap, so nothing consumes before this returns."""
from __future__ import annotations

import asyncio
import time

from aiokafka.admin import AIOKafkaAdminClient


class BrokerUnavailable(TimeoutError):
    """No broker answered in time; the message says what was tried, in one line."""


async def _port_open(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=1)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def wait_for_broker(bootstrap: str, timeout_s: float = 90) -> None:
    deadline = time.monotonic() + timeout_s
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    while not await _port_open(host, int(port)):
        if time.monotonic() > deadline:
            raise BrokerUnavailable(
                f"no Kafka broker at {bootstrap}: port {host}:{port} not open after {timeout_s:.0f}s")
        await asyncio.sleep(0.2)
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
        try:
            await admin.start()
            await admin.list_topics()
            return
        except Exception as exc:  # the broker may accept connections before it serves metadata
            last_error = exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise BrokerUnavailable(f"Kafka at {bootstrap} answers no metadata call after {timeout_s:.0f}s: {last_error}")
