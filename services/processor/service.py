"""The processor as a component of `proftask serve`: a Faust app whose agents turn events into
ClickHouse rows. At-least-once: a batch is acknowledged only after its rows are written, and
every table folds duplicates, so redelivery changes nothing."""
from __future__ import annotations

import asyncio
import concurrent.futures.process
import logging
import os
import time
import uuid
from collections.abc import Callable

from aiohttp import web

from proftask import events, metrics
from proftask.clickhouse.client import ClickHouse
from proftask.config import Settings
from proftask.events.v1 import events_pb2 as pb
from proftask.events import validity
from proftask.faust_app import create_faust_app, faust_ready, stored_batches
from proftask.kafka import dead_letters
from proftask.kafka.delivery import KAFKA_AWAY, send_until_acked
from proftask.kafka.topics import Topics, task_key
from proftask.pprof.decode import ProfileError, ProfileTooLarge
from proftask.cpu_pool import CpuPool
from proftask.spool import create_file as new_spool_file
from proftask.processing.group_commit import GroupCommit, GroupWriteCancelled
from proftask.processing.chunks import ChunkReader, ChunksUnreadable
from proftask.processing.profile_rows import profile_rows_from_record, profile_rows_from_spool
from proftask.processing.rows import Row, task_log_rows, task_rows
from proftask.processing.writer import RowWriter

log = logging.getLogger(__name__)
BATCH_SIZE = 500
BATCH_WINDOW_S = 0.2
INLINE_BYTES = 32 * 1024       # records up to this size are folded in this process (a thread) ...
INLINE_INFLATED = 512 * 1024   # ... unless their profile inflates past this
STORE_ATTEMPTS = 3              # a batch that fails (not for Kafka being away) is tried this often ...
STORE_BACKOFF_S = 0.5           # ... waiting this long, doubled each time up to ...
MAX_STORE_BACKOFF_S = 10.0      # ... this, then its records go to the dead letters
TRANSIENT = (*KAFKA_AWAY, GroupWriteCancelled)  # waited out, never dead-lettered
ACTORS_PER_WORKER = 2  # profile agent actors per CPU worker (see ProcessorService.__init__)
PROFILE_BATCH = 100            # profiles taken from the topic at once; their folded rows are written
PROFILE_BATCH_ROWS = 200_000   # ... together, as soon as they pass this many rows ...
PROFILE_BATCH_BYTES = 1 << 20  # ... or their uploads this many bytes (a large profile goes alone)
# a fold that ran out of memory: MemoryError, or its worker killed (the OOM killer) or dead
OUT_OF_MEMORY = (MemoryError, concurrent.futures.process.BrokenProcessPool)
_DERIVED_NS = uuid.UUID("9d8f3c2a-1b7e-4f0a-8c6d-5e4b3a2f1d0c")


def _profile_uploaded_or_none(value: bytes) -> pb.Envelope | None:
    try:
        env = events.read_event(value)
    except Exception:  # noqa: BLE001 - dead-lettered as undecodable then
        return None
    return env if env.WhichOneof("payload") == "profile_uploaded" else None


def derived_event_id(source_event_id: str, kind: str) -> str:
    """Events the processor emits are named after the event they come from, so reprocessing
    after a crash emits the very same event (sinks fold it)."""
    return str(uuid.uuid5(_DERIVED_NS, f"{kind}/{source_event_id}"))


def _row_count(rows) -> int:
    return len(rows.stack_ids) + rows.folded_size()


class ProcessorService:
    name = "processor"

    def __init__(self, settings: Settings, topics: Topics, clickhouse: ClickHouse, cpu: CpuPool):
        self.settings, self.topics, self.clickhouse, self.cpu = settings, topics, clickhouse, cpu
        self.writer = RowWriter(clickhouse, settings.retention)
        self.chunks = ChunkReader(settings.kafka_bootstrap)
        self._writes = GroupCommit(self._write_group, self._abandon)
        self._started = False
        self.app = create_faust_app(f"{settings.topic_prefix}processor", settings)
        self._task_events_out = self.app.topic(topics.task_events, key_type=bytes, value_type=bytes)
        self._dead_letters_out = self.app.topic(topics.dead_letters, key_type=bytes, value_type=bytes)
        self._add_row_agent(topics.tasks, "tasks-to-clickhouse", "tasks", task_rows)
        self._add_row_agent(topics.task_events, "task-logs-to-clickhouse", "task_logs",
                            task_log_rows)
        profiles_in = self.app.topic(topics.profiles, key_type=bytes, value_type=bytes)
        # Twice as many actors as the CPU pool has workers, each holding one large profile at a
        # time (folding or writing it; two actors folding two ahead held up to six): while some
        # write, the others fold, so both cores fold throughout a burst of large profiles (two
        # actors' batches waited on each other's writes: the workers stood idle ~0.5 s in ten),
        # and what they folded meanwhile goes in as one group (group_commit). A batch is acked
        # once stored (stored_batches); the actors ack out of order, and Faust commits acked
        # offsets only up to the first one still in flight (faust_commits).
        self.app.agent(profiles_in, name="profiles-to-clickhouse",
                       concurrency=ACTORS_PER_WORKER * cpu.workers)(self._store_profiles)

    def _add_row_agent(self, topic_name: str, agent_name: str, table: str,
                       to_rows: Callable[[pb.Envelope], list[Row]]) -> None:
        topic = self.app.topic(topic_name, key_type=bytes, value_type=bytes)

        async def write_rows(stream):
            async for batch in stored_batches(stream, BATCH_SIZE, BATCH_WINDOW_S):
                rows = []
                for event in batch:
                    env = None
                    try:  # a poison record must not stall the partition: dead letter, go on
                        env = events.read_event(event.value)
                        metrics.EVENTS_CONSUMED.labels(agent_name, env.type).inc()
                        rows.extend(to_rows(env))
                    except Exception as e:  # noqa: BLE001 - whatever fails on one record is that record's
                        msg = event.message
                        await self._send_dead_letter(dead_letters.dead_letter(
                            agent_name, msg.topic, msg.partition, msg.offset, dead_letters.reason_kind(e),
                            str(e), event.value, env.tenant if env is not None else ""))
                await self.writer.insert(table, rows)

        self.app.agent(topic, name=agent_name)(write_rows)

    async def _store_profiles(self, stream):
        # A batch's events are acked when the next batch is taken: after their rows are written.
        async for batch in stored_batches(stream, PROFILE_BATCH, BATCH_WINDOW_S):
            await self.store_batch([(e.message.topic, e.message.partition, e.message.offset, e.key, e.value)
                                    for e in batch])

    async def store_batch(self, records: list[tuple[str, int, int, bytes, bytes]]) -> None:
        """store_profiles until the batch is stored, or its records are dead letters: Faust acks a
        take's events however the agent's loop body ends (in take_events' `finally`), so a batch
        that raised out of it would be committed unwritten. Kafka failing (a chunk read, the
        ProfileStored events, the dead letters themselves) is waited out, as the writer waits out
        ClickHouse; any other failure is tried STORE_ATTEMPTS times, then each record goes to the
        dead letters with the reason (its task is told), not holding up the partition for good."""
        backoff, failures, error = STORE_BACKOFF_S, 0, None
        while True:
            try:
                if failures < STORE_ATTEMPTS:
                    await self.store_profiles(records)
                else:
                    for topic, partition, offset, _key, value in records:
                        env = _profile_uploaded_or_none(value)
                        await self._dead_letter(topic, partition, offset, f"not stored after {failures} attempts "
                                                f"(the batch may be partly stored): {error!r}", value, env,
                                                dead_letters.UNPROCESSABLE)
                        if env is not None:  # its task's merged tree no longer waits for it
                            await self.writer.task_folds.refresh(env.tenant, env.profile_uploaded.task_id)
                return
            except TRANSIENT as e:  # Kafka away: the batch is tried again, however long that takes
                log.warning("a batch of %d profiles not stored (%r); taken again in %.1fs", len(records), e, backoff)
            except Exception as e:  # noqa: BLE001 - whatever else fails is tried again, a few times
                failures, error = failures + 1, e
                log.warning("a batch of %d profiles not stored, attempt %d of %d (%r)", len(records), failures,
                            STORE_ATTEMPTS, e)
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_STORE_BACKOFF_S)

    async def store_profile(self, topic: str, partition: int, offset: int, key: bytes, value: bytes) -> None:
        await self.store_profiles([(topic, partition, offset, key, value)])

    async def store_profiles(self, records: list[tuple[str, int, int, bytes, bytes]]) -> None:
        """Folds each record's profile, and writes the folded rows of several profiles in one
        insert per table (an insert costs ClickHouse far more than its rows), at most
        PROFILE_BATCH_ROWS rows or PROFILE_BATCH_BYTES of uploaded profiles at a time, with what
        the other actors folded meanwhile (group_commit: at most one such batch each)."""
        pending: list = []  # (envelope, rows)
        n_rows = n_bytes = 0
        # One profile at a time: the next is folded once the one before is taken into the batch,
        # or written when it fills the batch (a large profile does), so an actor holds one large
        # profile at a time while the other actors fold (ProcessorService.__init__). A fold
        # stopped midway settles its profile itself (_fold).
        try:
            for topic, partition, offset, _key, value in records:
                folded = await self._fold(topic, partition, offset, value)
                if folded is None:
                    continue
                pending.append(folded)
                n_rows += _row_count(folded[1])
                n_bytes += max(len(value), folded[0].profile_uploaded.size)  # chunked: the record is small
                if n_rows >= PROFILE_BATCH_ROWS or n_bytes >= PROFILE_BATCH_BYTES:
                    batch, pending, n_rows, n_bytes = pending, [], 0, 0
                    await self._write_batch(batch)  # settles its profiles, written or not
        except BaseException:
            for env, _rows in pending:  # folded, never to be written from here (taken again)
                self._settle(env)
            raise
        await self._write_batch(pending)

    async def _fold(self, topic: str, partition: int, offset: int, value: bytes):
        """(envelope, rows) of a ProfileUploaded record, or None when it went to the dead letters."""
        try:
            env = events.read_event(value)
            if env.WhichOneof("payload") != "profile_uploaded":
                raise ProfileError(f"expected ProfileUploaded, got {env.type or 'an empty envelope'}")
        except Exception as e:  # noqa: BLE001 - not even an envelope: dead letter, move on
            await self._dead_letter(topic, partition, offset, f"undecodable event: {e}", value, None,
                                    getattr(e, "kind", None))
            return None
        metrics.EVENTS_CONSUMED.labels("profiles-to-clickhouse", env.type).inc()
        up = env.profile_uploaded
        # the task's merged tree is written by its last profile in progress: this one is, until
        # written (_write_group) or dead-lettered
        self.writer.task_folds.expect(env.tenant, up.task_id, up.profile_id)
        try:
            folded = await self._fold_profile(topic, partition, offset, value, env)
        except BaseException:
            self._settle(env)
            raise
        if folded is None:  # dead-lettered: it may have been the one the task's tree waited for
            self._settle(env)
            await self.writer.task_folds.refresh(env.tenant, up.task_id)
        return folded

    async def _fold_profile(self, topic: str, partition: int, offset: int, value: bytes, env: pb.Envelope):
        up = env.profile_uploaded
        stage = metrics.INGEST_STAGE_SECONDS
        stage.labels("processor_queued").observe(max(0.0, time.time() - env.occurred_at / 1000))
        started = time.perf_counter()
        try:
            try:
                rows = await self._profile_rows(up, value)
            except OUT_OF_MEMORY as e:
                # This record's fold, or a neighbour's, took the memory (the pool's workers share it,
                # and die together): folded once more alone, in a new worker. Failing there too, it
                # is a poison record, dead-lettered rather than retried forever before every other.
                log.warning("profile %s of task %s: %s while folding; folded again alone", up.profile_id,
                            up.task_id, type(e).__name__)
                try:
                    rows = await self._profile_rows(up, value, alone=True)
                except OUT_OF_MEMORY as again:
                    await self._dead_letter(topic, partition, offset, (
                        f"its fold ran out of memory ({type(again).__name__}), again when folded alone "
                        f"in a new worker after {type(e).__name__}"), value, env, dead_letters.UNPROCESSABLE)
                    return None
        except ChunksUnreadable as e:
            await self._dead_letter(topic, partition, offset, str(e), value, env, dead_letters.UNPROCESSABLE)
            return None
        except ProfileError as e:
            await self._dead_letter(topic, partition, offset, f"invalid profile: {e}", value, env)
            return None
        stage.labels("processor_rows").observe(time.perf_counter() - started)
        return env, rows

    async def _write_batch(self, pending: list) -> None:
        """Writes the profiles' rows with those the other actors folded meanwhile (group_commit)."""
        if pending:
            await self._writes.write(pending)

    def _abandon(self, pending: list) -> None:
        for env, _rows in pending:  # folded, never to be written from here (taken again)
            self._settle(env)

    async def _write_group(self, pending: list) -> None:
        """Writes the profiles' rows, then tells each task its profile is stored (after the write,
        so a task never finishes before its profiles can be read)."""
        stage = metrics.INGEST_STAGE_SECONDS
        started = time.perf_counter()

        async def tell_stored() -> None:
            written = time.perf_counter()
            sent = []
            for env, rows in pending:
                stage.labels("processor_write").observe(written - started)
                metrics.INGEST_ROWS.inc(len(rows.stack_ids))
                up = env.profile_uploaded
                stored = events.new_event(env.tenant, pb.ProfileStored(
                    task_id=up.task_id, instance_id=up.instance_id, profile_id=up.profile_id,
                    stack_count=len(rows.stack_ids), sample_types=rows.sample_types),
                    event_id=derived_event_id(env.event_id, "stored"))
                sent.append(await self._task_events_out.send(key=task_key(env.tenant, up.task_id),
                                                             value=stored.SerializeToString()))
            await asyncio.gather(*sent)  # every event delivered before the batch is acknowledged
            stage.labels("processor_stored").observe(time.perf_counter() - written)

        try:
            # the tasks are told once the rows are written, before their merged trees are summed
            await self.writer.write_profiles([rows for _env, rows in pending], tell_stored)
        finally:
            for env, _rows in pending:
                self._settle(env)

    def _settle(self, env: pb.Envelope) -> None:
        up = env.profile_uploaded
        self.writer.task_folds.settle(env.tenant, up.task_id, up.profile_id)

    async def _profile_rows(self, up: pb.ProfileUploaded, value: bytes, alone: bool = False):
        """The record's rows, folded in the CPU pool, or `alone` in a new worker (CpuPool.run_alone)."""
        limit = self.settings.decompressed_max_size
        run = self.cpu.run_alone if alone else self.cpu.run
        if not up.HasField("chunks"):
            if len(value) <= INLINE_BYTES and not alone:  # a small profile: here, cheaper than the pool's round trip
                try:  # in a thread: a few KB can still fold into millions of frames, and the Go fold
                    # lets go of the GIL, so the loop (heartbeats, other batches' writes) goes on meanwhile
                    return await asyncio.to_thread(profile_rows_from_record, value, min(limit, INLINE_INFLATED))
                except ProfileTooLarge:
                    if limit <= INLINE_INFLATED:
                        raise
            return await run(profile_rows_from_record, value, limit)
        # A chunked profile: its bytes go to a spool file the CPU worker reads, never held here.
        fd, path = new_spool_file()
        try:
            started = time.monotonic()
            with os.fdopen(fd, "wb") as spool:
                await self.chunks.read_into(up, spool)
            read = time.monotonic()
            rows = await run(profile_rows_from_spool, value, path, limit)
            log.info("profile %s: %d chunks read in %.2fs, rows in %.2fs", up.profile_id, len(up.chunks.offsets),
                     read - started, time.monotonic() - read)
            return rows
        finally:
            os.unlink(path)

    async def _send_dead_letter(self, letter: pb.Envelope) -> None:
        """Kafka away is waited out, as store_batch waits it out (a batch of profiles was folded
        again whole)."""
        key = dead_letters.dead_letter_key(letter.dead_letter.source_topic, letter.dead_letter.partition)
        await send_until_acked(self._dead_letters_out, key, letter.SerializeToString(), "a dead letter",
                               STORE_BACKOFF_S, MAX_STORE_BACKOFF_S)

    async def _dead_letter(self, topic: str, partition: int, offset: int, reason: str, value: bytes,
                           env: pb.Envelope | None, kind: str | None = None) -> None:
        """A poison event never stalls the partition: it goes to the dead-letter topic with the
        reason, and the task gets an EXECUTION_TASK_ERROR log when we know which task."""
        tenant = env.tenant if env is not None else events.DEFAULT_TENANT
        source_id = env.event_id if env is not None else f"{topic}/{partition}/{offset}"
        kind = kind or (validity.UNDECODABLE if env is None else "invalid_profile")
        await self._send_dead_letter(dead_letters.dead_letter(
            "profiles-to-clickhouse", topic, partition, offset, kind, reason, value, tenant))
        if env is not None and env.WhichOneof("payload") == "profile_uploaded":
            up = env.profile_uploaded
            failed = events.new_event(tenant, pb.TaskFailedOnInstance(
                task_id=up.task_id, instance_id=up.instance_id, reason=pb.TaskFailedOnInstance.INVALID_PROFILE,
                message=f"the profile could not be processed: {reason}"),
                event_id=derived_event_id(source_id, "failed"))
            await (await self._task_events_out.send(key=task_key(tenant, up.task_id),
                                                    value=failed.SerializeToString()))

    async def start(self) -> None:
        self.app.finalize()
        await self.app.start()
        self._started = True

    async def stop(self) -> None:
        if self._started:
            await self.app.stop()
        await self.chunks.stop()

    def readiness(self) -> dict[str, bool]:
        return {"processor.consumer": faust_ready(self.app, self._started),
                "processor.clickhouse": self.writer.healthy}

    def add_routes(self, app: web.Application) -> None:
        pass
