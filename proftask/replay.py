"""`proftask replay`: rebuild every ClickHouse table from the topics' history.

Drops the read models, re-creates them with the migrations, then reads the task, task-event
and profile topics from their beginning to their current end with the processor's own message
processors. Nothing is emitted: the events the processor once derived (ProfileStored, failures)
are already in the log. With chDB, stop the proftask process that owns the data directory first.
"""
from __future__ import annotations

import collections
import io
import logging
import time

from aiokafka import AIOKafkaConsumer, TopicPartition

from proftask import events
from proftask.clickhouse.client import ClickHouse
from proftask.clickhouse.migrate import drop_read_models, migrate
from proftask.clickhouse.replay_marker import mark_replay
from proftask.config import Settings
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.readiness import wait_for_broker
from proftask.kafka.topics import MAX_MESSAGE_BYTES, Topics
from proftask.pprof.decode import ProfileError
from proftask.processing.chunks import ChunkReader, ChunksUnreadable
from proftask.processing.profile_rows import profile_rows
from proftask.processing.rows import task_log_rows, task_rows
from proftask.processing.writer import RowWriter

log = logging.getLogger(__name__)


async def replay(settings: Settings, progress=print, broker_timeout_s: float = 10) -> dict[str, int]:
    """Raises BrokerUnavailable, before touching ClickHouse, when no broker answers in time."""
    topics = Topics.with_prefix(settings.topic_prefix)
    await wait_for_broker(settings.kafka_bootstrap, broker_timeout_s)
    ch = ClickHouse(settings.clickhouse_dsn)
    await ch.open()
    counts: dict[str, int] = collections.Counter()
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap, group_id=None,
                                enable_auto_commit=False, max_partition_fetch_bytes=MAX_MESSAGE_BYTES)
    chunks = ChunkReader(settings.kafka_bootstrap)
    try:
        cluster = settings.clickhouse_cluster or None
        # until marked finished, a server refuses this ClickHouse: killed midway, it holds part of the history
        await mark_replay(ch, cluster, finished=False)
        dropped = await drop_read_models(ch, cluster)
        await migrate(ch, cluster)
        progress(f"dropped and re-created {', '.join(dropped)}")
        writer = RowWriter(ch, settings.retention)
        await consumer.start()
        metadata = await consumer._client.fetch_all_metadata()
        parts = [TopicPartition(t, p) for t in (topics.tasks, topics.task_events, topics.profiles)
                 for p in sorted(metadata.partitions_for_topic(t) or ())]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = await consumer.end_offsets(parts)
        pending = {tp for tp, end in ends.items() if end > 0}
        started = time.monotonic()
        while pending:
            batches = await consumer.getmany(*pending, timeout_ms=1000, max_records=1000)
            task_rows_batch, log_rows_batch = [], []
            read: list[tuple[str, pb.Envelope]] = []
            for tp, records in batches.items():
                for record in records:
                    try:
                        read.append((tp.topic, events.read_event(record.value)))
                    except events.InvalidEvent as e:  # dead-lettered by the services back then
                        counts["invalid records skipped"] += 1
                        log.warning("replay: skipping %s[%d]@%d: %s", tp.topic, tp.partition, record.offset, e)
            # each task's merged tree is written by its last profile of the batch, not by each
            folds = writer.task_folds
            for topic, env in read:
                if topic == topics.profiles and env.WhichOneof("payload") == "profile_uploaded":
                    folds.expect(env.tenant, env.profile_uploaded.task_id, env.profile_uploaded.profile_id)
            for topic, env in read:
                counts[env.type] += 1
                if topic == topics.tasks:
                    task_rows_batch += task_rows(env)
                elif topic == topics.task_events:
                    log_rows_batch += task_log_rows(env)
                elif env.WhichOneof("payload") == "profile_uploaded":
                    up = env.profile_uploaded
                    try:
                        content = None
                        if up.HasField("chunks"):  # its bytes are on the chunk topic
                            buffer = io.BytesIO()
                            await chunks.read_into(up, buffer)
                            content = buffer.getvalue()
                            counts["chunked profiles"] += 1
                        rows = profile_rows(env, settings.decompressed_max_size, content)
                    except (ProfileError, ChunksUnreadable) as e:  # dead-lettered back then too
                        counts["invalid profiles skipped"] += 1
                        log.warning("replay: skipping invalid profile %s: %s", env.event_id, e)
                        folds.settle(env.tenant, up.task_id, up.profile_id)
                        await folds.refresh(env.tenant, up.task_id)
                        continue
                    try:
                        await writer.write_profile(rows)
                    finally:
                        folds.settle(env.tenant, up.task_id, up.profile_id)
            await writer.insert("tasks", task_rows_batch)
            await writer.insert("task_logs", log_rows_batch)
            for tp in list(pending):
                if await consumer.position(tp) >= ends[tp]:
                    pending.discard(tp)
        await mark_replay(ch, cluster, finished=True)
        progress(f"replayed {sum(v for k, v in counts.items() if k[0].isupper())} events in "
                 f"{time.monotonic() - started:.1f}s: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    finally:
        await chunks.stop()
        await consumer.stop()
        await ch.close()
    return dict(counts)
