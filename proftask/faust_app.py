"""Faust apps as proftask runs them: inside the service's own asyncio loop (started with
`await app.start()`, no faust worker), raw bytes in and out (events are protobuf), no web
server of its own, settings sized for 30 MiB records."""
from __future__ import annotations

import faust

from proftask import faust_commits
from proftask.config import Settings
from proftask.kafka.topics import MAX_MESSAGE_BYTES


def create_faust_app(app_id: str, settings: Settings) -> faust.App:
    faust_dir = settings.data_dir / "faust"
    faust_dir.mkdir(parents=True, exist_ok=True)
    app = faust.App(
        app_id,
        broker=f"kafka://{settings.kafka_bootstrap}",
        store="memory://",
        # Faust makes this directory even with in-memory tables; keep it out of the cwd.
        datadir=str(faust_dir / app_id),
        autodiscover=False,
        web_enabled=False,
        key_serializer="raw",
        value_serializer="raw",
        topic_partitions=settings.partitions,
        topic_replication_factor=settings.replication_factor,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        producer_max_request_size=MAX_MESSAGE_BYTES,
        consumer_max_fetch_size=MAX_MESSAGE_BYTES,
        stream_wait_empty=False,
        # A member that died is dropped after 10 s (default 60 s), so its partitions move on.
        broker_session_timeout=10.0,
        broker_heartbeat_interval=3.0,
        broker_commit_every=100,
        broker_commit_interval=1.0,
    )
    faust_commits.install(app)  # never commit past a message in flight (faust-streaming #606)
    return app


def faust_ready(app: faust.App, started: bool) -> bool:
    """Started, assigned, and its tables recovered."""
    # faust's TableManagerT protocol omits `recovery`, which its TableManager has
    return started and not app.rebalancing and app.tables.recovery.completed.is_set()  # type: ignore[attr-defined]


def stored_batches(stream, max_events: int, within: float):
    """stream.take_events, each batch acknowledged only once the loop body that took it asks for
    the next (so only once it was stored). take_events acks a batch in a `finally`, which also
    runs when a stop closes the stream mid-body: the consumer, stopping after the agents, then
    committed offsets whose rows were never written, and a restart did not read them again
    (tests/integration/test_graceful_stop.py)."""
    return _held_until_next(stream.take_events(max_events, within=within), lambda batch: batch)


def stored_events(stream):
    """stream.events(), each event acknowledged only once the loop body that took it asks for the
    next, as stored_batches does for batches: Faust's iterator acks the event in hand when a stop
    closes the stream mid-body, and the consumer then committed past it."""
    return _held_until_next(stream.events(), lambda event: (event,))


async def _held_until_next(items, events_of):
    """items, each holding one more reference on its events' messages, released only once the
    body that took it asks for the next: stopped mid-body, its messages stay unacked and are read
    again after the restart (the iterator's own ack is then not the last)."""
    try:
        async for item in items:
            held = [event.message for event in events_of(item)]
            for message in held:
                message.incref()
            yield item
            for message in held:
                message.decref()
    finally:
        await items.aclose()
