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
        # not asyncio.wait_for: on 3.11 it swallows a cancel that lands as the connection opens,
        # and `proftask serve` cancels this wait on SIGTERM
        async with asyncio.timeout(1):
            _, writer = await asyncio.open_connection(host, port)
    except (TimeoutError, OSError):
        return False
    writer.close()
    return True


async def wait_for_broker(bootstrap: str, timeout_s: float = 90, every_broker: bool = False) -> None:
    """A listed broker's port open, then a metadata call. With every_broker (a deployment
    waiting for the cluster it just started), every listed broker's port, and a metadata call
    that lists them all: a worker that bootstraps while a node is still starting crashes on
    the first request routed to that node (NodeNotReadyError). A process starting later waits
    for any broker only, so that it starts while a node is down."""
    deadline = time.monotonic() + timeout_s
    addresses = [(address.rsplit(":", 1)[0], int(address.rsplit(":", 1)[1])) for address in bootstrap.split(",")]
    waiting = list(addresses)
    while waiting:
        waiting = [(host, port) for host, port in waiting if not await _port_open(host, port)]
        if not every_broker and len(waiting) < len(addresses):
            break
        if waiting and time.monotonic() > deadline:
            host, port = waiting[0]
            raise BrokerUnavailable(
                f"no Kafka broker at {bootstrap}: port {host}:{port} not open after {timeout_s:.0f}s")
        if waiting:
            await asyncio.sleep(0.2)
    last_error: Exception | str | None = None
    while time.monotonic() < deadline:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=5_000)
        try:
            await admin.start()
            await admin.list_topics()
            if not every_broker:
                return
            brokers = (await admin.describe_cluster()).get("brokers", [])
            if len(brokers) >= len(addresses):
                return
            last_error = f"{len(brokers)} of {len(addresses)} brokers in the cluster's metadata"
            await asyncio.sleep(0.5)
        except Exception as exc:  # the broker may accept connections before it serves metadata
            last_error = exc
            await asyncio.sleep(0.5)
        finally:
            await admin.close()
    raise BrokerUnavailable(f"Kafka at {bootstrap} answers no metadata call after {timeout_s:.0f}s: {last_error}")
