"""`proftask serve ROLE`: build the components of a role, share what they can share (one
producer, one task view, one ClickHouse client per process), serve one HTTP port."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable
from typing import Any

from aiohttp import web

from proftask.agents_view import AgentsView
from proftask.auth import TokenTable
from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrate import migrate
from proftask.clickhouse.replay_marker import require_no_unfinished_replay
from proftask.config import Settings
from proftask.cpu_pool import CpuPool
from proftask.http.app import build_app
from proftask.http.connections import ConnectionGuard, JsonErrorsRequestHandler, within_open_files_limit
from proftask.kafka.producer import EventProducer
from proftask.kafka.readiness import KafkaWatch, wait_for_broker
from proftask.kafka.topics import Topics, ensure_topics
from proftask.spool import use_directory as use_spool_directory
from proftask.task_view import TaskView

log = logging.getLogger("proftask")
MAX_HEADER_LINE = 32 * 1024
# A stop gives the requests in hand this long to end (an upload still arriving: to arrive), then
# answers those still arriving 503 and gives that answer this long: within deploy/standalone.sh's
# 20 s before it kills, with the rest of the stop.
HTTP_DRAIN_S = 10.0
HTTP_DRAIN_ANSWER_S = 2.0

ROLES = {
    "all": ("task", "ingest", "query", "processor", "grpc"),
    "task": ("task",),
    "ingest": ("ingest",),
    "query": ("query",),
    "processor": ("processor",),
    "grpc": ("grpc",),  # SkyWalking's agent protocol (commands and uploads)
}


def role_parts(role: str) -> tuple[str, ...]:
    """`all`, one role, or several joined by commas (`processor,query`: with embedded ClickHouse
    the two must share a process, chDB allowing one process per data directory)."""
    parts: list[str] = []
    for name in role.split(","):
        if name not in ROLES:
            raise ValueError(f"unknown role {name!r}; roles: {', '.join(ROLES)}")
        parts += [p for p in ROLES[name] if p not in parts]
    return tuple(parts)


async def serve(role: str, settings: Settings) -> None:
    from services.agent_grpc.service import AgentGrpcService
    from services.ingest_svc.service import IngestService
    from services.processor.service import ProcessorService
    from services.query_svc.service import QueryService
    from services.task_svc.service import TaskService

    parts = role_parts(role)
    topics = Topics.with_prefix(settings.topic_prefix)
    kafka_ready = clickhouse_ready = False
    kafka_watch = KafkaWatch(settings.kafka_bootstrap)  # ready as long as Kafka answers, not only at start
    tokens = TokenTable(settings.tokens)
    if tokens.enabled:
        log.info("auth is on: %d tokens for tenants %s", len(settings.tokens), ", ".join(tokens.tenants()))
    else:
        log.warning("auth is off: no tokens configured, every request is tenant 'default'")

    # every listening port's connections under the open-files limit (refused here, in one line)
    ports = 1 + (1 + len(settings.grpc_tenant_listeners) if "grpc" in parts else 0)
    limits = within_open_files_limit(settings.http_limits, ports)

    if {"ingest", "grpc", "processor"} & set(parts):  # uploads and reassembled chunked profiles
        stale = use_spool_directory(settings.spool_dir or settings.data_dir / "spool")
        if stale:
            log.info("removed %d upload spool files left by dead processes", len(stale))

    resources: list = []  # started in order, stopped in reverse
    components: list = []
    producer: EventProducer | None = None
    view: TaskView | None = None
    clickhouse: ClickHouse | None = None
    agents: AgentsView | None = None
    # a processor folds every profile: its workers start with it; an ingest replica only checks
    # in them what Go declines, so it spawns them when first needed
    cpu = None
    if {"ingest", "processor", "grpc"} & set(parts):
        cpu = CpuPool(settings.cpu_workers or None, spawn_at_start="processor" in parts)
    if cpu is not None:
        resources.append(cpu)
    if {"task", "ingest", "grpc"} & set(parts):
        producer = EventProducer(settings.kafka_bootstrap)
        resources.append(producer)
    if {"task", "ingest", "grpc", "query"} & set(parts):  # query: a task ClickHouse has no row of yet
        view = TaskView(settings.kafka_bootstrap, topics, retention=settings.retention)
        resources.append(view)
    if {"task", "grpc"} & set(parts):
        agents = AgentsView(settings.kafka_bootstrap, topics, producer)
        resources.append(agents)
    processor_clickhouse: ClickHouse | None = None
    if {"query", "processor"} & set(parts):
        clickhouse = ClickHouse(settings.clickhouse_dsn)
        if {"query", "processor"} <= set(parts):
            # the processor's own client, and so its own thread: a client runs one call at a time,
            # and stored profiles waited 4-19 s behind a team's reads of a large task
            processor_clickhouse = ClickHouse(settings.clickhouse_dsn)
    task_service = None
    # Each role below finds what the sets above started for it.
    if "task" in parts:
        assert producer is not None and view is not None
        task_service = TaskService(settings, topics, producer, view, agents)
        components.append(task_service)
    if "ingest" in parts:
        assert producer is not None and view is not None and cpu is not None
        components.append(IngestService(settings, topics, producer, view, cpu))
    if "query" in parts:
        assert clickhouse is not None and view is not None
        components.append(QueryService(clickhouse, view))
    if "processor" in parts:
        assert clickhouse is not None and cpu is not None
        components.append(ProcessorService(settings, topics, processor_clickhouse or clickhouse, cpu))
    if "grpc" in parts:
        assert producer is not None and view is not None and cpu is not None
        components.append(AgentGrpcService(settings, topics, producer, view, cpu, tokens, agents,
                                           max_connections=limits.max_connections))
    if task_service is not None and "query" in parts:
        # SkyWalking's query protocol needs both the task API and the read models.
        from services.graphql_svc.service import GraphqlService
        components.append(GraphqlService(task_service.desk, clickhouse, tokens, agents,
                                         max_body=settings.max_json_body))

    def readiness() -> dict[str, bool]:
        checks: dict[str, bool] = {"kafka": kafka_ready and kafka_watch.reachable}
        if producer is not None:
            checks["kafka.producer"] = producer.started
        if view is not None:
            checks["task_view"] = view.healthy and view.caught_up.is_set()
        if agents is not None:
            checks["agents_view"] = agents.caught_up.is_set()
        if clickhouse is not None:
            checks["clickhouse"] = clickhouse_ready  # opened and migrated
        for c in components:
            checks.update(c.readiness())
        return checks

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    runner: web.AppRunner | None = None
    # Request lines and header fields up to 32 KiB reach proftask (and get its JSON errors);
    # beyond that aiohttp refuses them, in proftask's JSON too (JsonErrorsRequestHandler). These
    # are RequestHandler kwargs, given to AppRunner as such (a `handler_args` kwarg would make
    # aiohttp drop them all, per connection).
    handler_args: dict[str, Any] = {"access_log": None, "max_line_size": MAX_HEADER_LINE,
                                    "max_field_size": MAX_HEADER_LINE, "keepalive_timeout": limits.keepalive_timeout_s}
    # Wraps each connection's aiohttp protocol (of runner.server, there once the runner is set
    # up), made as runner.server() makes it, of a subclass.
    guard = ConnectionGuard(limits, lambda: JsonErrorsRequestHandler(
        runner.server, loop=loop, **handler_args))  # type: ignore[union-attr,arg-type]
    app = build_app(components, readiness, client_max_size=settings.max_json_body, tokens=tokens,
                    connection_phase=guard.middleware())
    runner = web.AppRunner(app, **handler_args)
    await runner.setup()
    http_server = None
    started: list = []
    try:
        # HTTP first, so /healthz and /readyz answer (503) while the rest starts.
        http_server = await loop.create_server(guard, settings.http_host, settings.http_port,
                                               reuse_address=True, backlog=1024)
        log.info("proftask %s: HTTP on http://%s:%d", role, settings.http_host, settings.http_port)
        log.info("proftask %s: waiting for Kafka at %s", role, settings.kafka_bootstrap)
        if not await unless_stopped(_kafka_with_topics(settings, topics), stop):
            return  # stopped before Kafka answered: nothing else was started
        kafka_ready = True
        await kafka_watch.start()
        started.append(kafka_watch)
        if clickhouse is not None:
            await clickhouse.open()
            started.append(clickhouse)
            await require_no_unfinished_replay(clickhouse, settings.clickhouse_cluster or None)
            await migrate(clickhouse, settings.clickhouse_cluster or None)
            if processor_clickhouse is not None:
                await processor_clickhouse.open()
                started.append(processor_clickhouse)
            clickhouse_ready = True
        for r in resources + components:
            await r.start()
            started.append(r)
        log.info("proftask %s: started (%s)", role, ", ".join(c.name for c in components))
        await stop.wait()
    finally:
        log.info("proftask %s: stopping", role)
        if http_server is not None:
            http_server.close()  # no new connections; runner.cleanup() ends the open ones
        if view is not None:
            await view.end_waits()  # cleanup waits for the requests in hand: long polls answer now
        await guard.drain(HTTP_DRAIN_S, HTTP_DRAIN_ANSWER_S)  # uploads still arriving: received, else a 503
        await runner.cleanup()
        for r in reversed(started):
            try:
                await (r.close() if isinstance(r, ClickHouse) else r.stop())
            except Exception:  # noqa: BLE001 - keep stopping the rest
                log.exception("error while stopping %r", r)


async def _kafka_with_topics(settings: Settings, topics: Topics) -> None:
    await wait_for_broker(settings.kafka_bootstrap, timeout_s=float("inf"))
    await ensure_topics(settings.kafka_bootstrap, topics.specs(settings.partitions), settings.replication_factor)


async def unless_stopped(work: Awaitable[None], stop: asyncio.Event) -> bool:
    """Awaits work until it ends or stop is set: False once stop is set (work cancelled, if it had
    not ended). The wait for a broker has no end of its own, and SIGTERM (`make down`) ends it."""
    working, stopping = asyncio.ensure_future(work), asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait((working, stopping), return_when=asyncio.FIRST_COMPLETED)
        if working.done():
            working.result()  # its error, if it failed
        return not stop.is_set()
    finally:
        for waiting in (working, stopping):
            waiting.cancel()
        await asyncio.gather(working, stopping, return_exceptions=True)
