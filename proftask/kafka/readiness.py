"""Waiting for a broker: first its TCP port, then a real metadata call. Faust workers exit at
once when they cannot bootstrap, so nothing consumes before this returns."""
from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.client import AIOKafkaClient

log = logging.getLogger(__name__)


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


class KafkaWatch:
    """Whether Kafka answers now, for /readyz: a metadata call every PROBE_INTERVAL_S, each given
    PROBE_TIMEOUT_S. aiokafka's producers and consumers retry a dead or hung broker on their own
    and never say so: without this a process stayed ready (200) with its broker killed or
    stopped, and a load balancer kept sending it requests that hang. The call goes to every
    broker the cluster lists until one answers (REQUEST_TIMEOUT_S each), so one node down of a
    cluster is not "Kafka unreachable": a node picked at random made readiness come and go."""

    PROBE_INTERVAL_S = 2.0
    PROBE_TIMEOUT_S = 10.0
    REQUEST_TIMEOUT_S = 3.0

    def __init__(self, bootstrap: str):
        self._bootstrap = bootstrap
        self._client: AIOKafkaClient | None = None
        self._watching: asyncio.Task | None = None
        self.reachable = True  # started once a first metadata call has answered (serve)

    async def start(self) -> None:
        self._watching = asyncio.get_running_loop().create_task(self._watch(), name="kafka-watch")

    async def stop(self) -> None:
        if self._watching is not None:
            self._watching.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watching
        await self._drop_client()

    async def _probe(self) -> None:
        if self._client is None:
            client = AIOKafkaClient(bootstrap_servers=self._bootstrap,
                                    request_timeout_ms=int(self.REQUEST_TIMEOUT_S * 1000))
            try:
                await client.bootstrap()  # any listed broker that answers
            except BaseException:
                await client.close()
                raise
            self._client = client
        await self._client.fetch_all_metadata()  # raises when no known broker answers

    async def _drop_client(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            with contextlib.suppress(Exception):
                async with asyncio.timeout(self.PROBE_TIMEOUT_S):
                    await client.close()

    async def _watch(self) -> None:
        while True:
            try:
                async with asyncio.timeout(self.PROBE_TIMEOUT_S):
                    await self._probe()
            except Exception as e:  # noqa: BLE001 - any failure means not reachable now
                if self.reachable:
                    log.warning("Kafka at %s answers no metadata call (%r): not ready until it does",
                                self._bootstrap, e)
                self.reachable = False
                await self._drop_client()  # a fresh client next time: the old one may hold a hung connection
            else:
                if not self.reachable:
                    log.info("Kafka at %s answers again", self._bootstrap)
                self.reachable = True
            await asyncio.sleep(self.PROBE_INTERVAL_S)
