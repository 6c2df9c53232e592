"""What an agent's report does, whatever carried it (the HTTP routes or SkyWalking's gRPC
protocol): check the task and instance, admit the upload by the upload budget, receive and
validate a profile, put it on Kafka (large ones as chunks), and record every refusal as a task
log. Refusals are the kinds of proftask.errors, which each transport maps in one place."""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Iterator

from proftask import events, metrics
from proftask.auth import TokenTable
from proftask.config import Settings
from proftask.core.echo import echo
from proftask.core.profile_fit import misfit
from proftask.core.tasks import EventType, Task
from proftask.cpu_pool import CpuPool
from proftask.errors import Conflict, Invalid, NotFound, Unavailable
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import CHUNK_BYTES, Topics, task_key
from proftask.pprof.decode import ProfileError, ProfileTooLarge
from proftask.task_view import TaskView
from proftask.ingest.budget import Charge, UploadBusy, process_budget
from proftask.ingest.upload import (Spool, UploadInterrupted, UploadOverDeclared, UploadTooLarge, check_profile,
                                        check_profile_by_go, check_profile_file, check_profile_file_by_go, profile_id,
                                        receive_chunks)

log = logging.getLogger(__name__)
MAX_AGENT_MESSAGE = 16 * 1024  # characters kept of an agent's error message
FAILURE_LOG_ATTEMPTS = 4      # a failure log is retried: it is the only trace of the upload
FAILURE_LOG_BACKOFF_S = 1.0
FAILURE_LOG_S = 30.0  # the most a report waits for its failure log to be taken
INLINE_BYTES = 32 * 1024          # uploads up to this size are checked in the event loop ...
INLINE_INFLATED = 512 * 1024      # ... unless they inflate past this
MAX_GO_CHECKS = 4
_REFUSAL_NS = uuid.UUID("5b0c6a3e-2f0e-4d51-9a63-7d1c2b8e4f10")

Reason = pb.TaskFailedOnInstance


class InvalidProfile(Invalid):
    """The upload is not a pprof profile (proftask.pprof.decode's ProfileError)."""
    code = "INVALID_PROFILE"


class ProfileMisfit(Invalid):
    """A valid profile of another kind than the task's event (a CPU profile for a HEAP task)."""
    code = "PROFILE_EVENT_MISMATCH"


class UploadNotStored(Unavailable):
    """The upload arrived whole and valid but could not be put on Kafka; it was logged, and the
    agent may send it again (same Idempotency-Key, same profile)."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, retry_after=retry_after)


class ProfileIntake:
    def __init__(self, settings: Settings, topics: Topics, producer: EventProducer, view: TaskView,
                 cpu: CpuPool):
        self.settings, self.topics, self.producer, self.view, self.cpu = settings, topics, producer, view, cpu
        self.budget = process_budget(settings.upload_budget_bytes, len(TokenTable(settings.tokens).tenants()))
        self._failures_later: set[asyncio.Task] = set()
        # Go checks in threads, no more at once than the CPU pool has workers, and at most
        # MAX_GO_CHECKS: an upload inflates in this process then, and a gzip bomb stops at the
        # decompressed limit (256 MiB), as many times as this
        self._go_checks = asyncio.Semaphore(min(cpu.workers, MAX_GO_CHECKS))

    async def task_for(self, tenant: str, task_id: str, service: str, instance: str) -> Task:
        """The task a report names; Unavailable (still loading), NotFound (no such task) or
        Conflict (the instance or service is not the task's) when it does not fit."""
        task = await self.view.require_ready().find(tenant, task_id)
        if task is None:
            raise NotFound(f"task {echo(task_id)} not found")
        if service and service != task.spec.service_id:
            raise Conflict(f"task {echo(task_id)} belongs to service {echo(task.spec.service_id)}, "
                           f"not {echo(service)}")
        if instance not in task.spec.service_instance_ids:
            raise Conflict(f"instance {echo(instance)} is not an instance of task {echo(task_id)}")
        return task

    async def record_failure(self, tenant: str, task_id: str, instance: str, reason: pb.TaskFailedOnInstance.Reason,
                             message: str, upload: str | None = None) -> None:
        """`upload`: the refused upload's profile id (ingest.upload.profile_id, by its
        Idempotency-Key or its bytes), when known: its log is named after it and the reason, so
        an agent's retry refused again adds no second line (sinks fold the same event)."""
        if len(message) > MAX_AGENT_MESSAGE:
            message = message[:MAX_AGENT_MESSAGE] + "… (truncated)"
        event = events.new_event(tenant, pb.TaskFailedOnInstance(task_id=task_id, instance_id=instance,
                                                                 reason=reason, message=message),
                                 event_id=str(uuid.uuid5(_REFUSAL_NS, f"{reason}/{upload}")) if upload else None)
        # Shielded: a report cancelled meanwhile (the agent hung up) still records its outcome.
        await asyncio.shield(self._send_failure(tenant, task_id, event))

    async def _send_failure(self, tenant: str, task_id: str, event: pb.Envelope) -> None:
        """Tried again until FAILURE_LOG_S have passed (a refused send may pass a moment later);
        with Kafka away the caller is told to try again (Unavailable: 503) after one try, at most
        the producer's 30 s, not held for minutes and then answered 500."""
        deadline = time.monotonic() + FAILURE_LOG_S
        for attempt in range(FAILURE_LOG_ATTEMPTS):
            try:  # a try is bounded by the producer (no progress for 30 s), not cancelled sooner
                await self.producer.send(self.topics.task_events, task_key(tenant, task_id), event)
                return
            except Exception as e:  # noqa: BLE001 - Kafka errors of every kind: try again
                pause = FAILURE_LOG_BACKOFF_S * 2 ** attempt
                if attempt + 1 == FAILURE_LOG_ATTEMPTS or time.monotonic() + pause >= deadline:
                    raise Unavailable(f"the task log could not be recorded ({type(e).__name__}: {e}); "
                                      "report again") from e
                log.warning("task log for %s not sent (%r); retrying", task_id, e)
                await asyncio.sleep(pause)

    def record_failure_later(self, tenant: str, task_id: str, instance: str, reason: pb.TaskFailedOnInstance.Reason,
                             message: str) -> None:
        """record_failure, after the answer: Kafka just failed a send, and the log's tries may
        each wait for it as long (an agent waited ~130 s for its 503 with the broker dead); or
        the request is being cancelled (an agent gone mid-upload). Held until sent; a log that
        cannot be sent is logged here (the agent reports or uploads again)."""
        task = asyncio.get_running_loop().create_task(self.record_failure(tenant, task_id, instance, reason, message))
        self._failures_later.add(task)  # held: the loop keeps only a weak reference
        task.add_done_callback(self._sent_later)

    def _sent_later(self, task: asyncio.Task) -> None:
        self._failures_later.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("a task log of a failed upload was not sent either: %r", task.exception())

    async def stop(self, grace_s: float = 5.0) -> None:
        """Before the producer stops: the failure logs still being sent get up to grace_s."""
        if self._failures_later:
            await asyncio.wait(set(self._failures_later), timeout=grace_s)
        for task in set(self._failures_later):
            task.cancel()

    async def record_agent_error(self, tenant: str, task_id: str, instance: str, message: str) -> None:
        await self.record_failure(tenant, task_id, instance, Reason.AGENT_ERROR,
                                  message or "the agent reported an error without a message")

    async def check_declared_size(self, tenant: str, task_id: str, instance: str, declared: int | None,
                                  idempotency_key: str = "") -> None:
        """Refuse (and log) an upload whose declared size is already over pprofMaxSize. The
        declared size is never trusted beyond this: the bytes received are counted too."""
        limit = self.settings.pprof_max_size
        if declared is not None and declared > limit:
            message = f"upload of {declared} bytes is over pprofMaxSize ({limit} bytes)"
            await self.record_failure(tenant, task_id, instance, Reason.PROFILE_TOO_LARGE, message,
                                      _keyed_upload(tenant, task_id, instance, idempotency_key))
            raise UploadTooLarge(message)

    async def accept(self, tenant: str, task: Task, instance: str, chunks: AsyncIterator[bytes],
                     idempotency_key: str, declared: int | None = None,
                     budget_wait_s: float | None = None) -> tuple[str, bool]:
        """Admit, receive, validate and publish one upload for `task` (as task_for found it);
        returns (profile id, duplicate).

        Admission charges `declared` bytes (else the bytes as they arrive) to the upload budget,
        refusing at once (budget_wait_s None) or after waiting that long: UploadBusy, not logged
        (the agent retries). Every other refusal is recorded as a task log and then raised:
        UploadTooLarge (over pprofMaxSize or the decompressed limit), InvalidProfile,
        ProfileMisfit (a profile of another event), UploadInterrupted (cut short, or stalled),
        UploadOverDeclared (more bytes than declared), UploadNotStored."""
        settings = self.settings
        task_id = task.task_id
        charge = Charge(self.budget, tenant, budget_wait_s)
        started = time.perf_counter()
        try:
            try:
                if declared is not None:
                    await charge.add(declared)
                    counted = chunks
                else:
                    counted = _charged(chunks, charge)
                spool = await receive_chunks(counted, settings.pprof_max_size, settings.memory_parser_enabled)
            except UploadBusy:
                metrics.UPLOADS_REFUSED_BUSY.inc()
                raise
            except UploadTooLarge as e:
                await self.record_failure(tenant, task_id, instance, Reason.PROFILE_TOO_LARGE, str(e),
                                          _keyed_upload(tenant, task_id, instance, idempotency_key))
                raise
            except UploadInterrupted as e:
                await self.record_failure(tenant, task_id, instance, Reason.UPLOAD_INTERRUPTED, str(e),
                                          _keyed_upload(tenant, task_id, instance, idempotency_key))
                raise
            except UploadOverDeclared as e:
                await self.record_failure(tenant, task_id, instance, Reason.INVALID_PROFILE, str(e),
                                          _keyed_upload(tenant, task_id, instance, idempotency_key))
                raise
        except BaseException:
            charge.release()
            raise
        metrics.INGEST_STAGE_SECONDS.labels("intake_receive").observe(time.perf_counter() - started)
        # Every byte arrived: from here the upload runs to its end even if the agent hangs up,
        # so it is either on Kafka or logged as failed.
        store = asyncio.ensure_future(self._store(tenant, task_id, task.spec.events, instance, spool, charge,
                                                  idempotency_key))
        store.add_done_callback(lambda t: t.cancelled() or t.exception())  # read, even when nobody awaits it
        return await asyncio.shield(store)

    async def _sample_types(self, spool: Spool) -> list[tuple[str, str]]:
        """The upload's sample types (_checked_sample_types). A refusal is raised without the
        frames it passed: they hold the inflated bytes, up to the decompressed limit, and a kept
        error (the store task's, a chained one) held them until a garbage collection minutes
        later (24 uploads of 200 KB inflating to 200 MB each, refused at once: 5 GB held)."""
        try:
            return await self._checked_sample_types(spool)
        except ProfileError as e:
            e.__context__ = None  # a chained error's traceback holds its frames too
            raise e.with_traceback(None) from None

    async def _checked_sample_types(self, spool: Spool) -> list[tuple[str, str]]:
        """The upload's sample types. Checked by Go in a thread (ctypes lets go of the GIL), so an
        upload is not queued behind the folds in the CPU pool; Go words a refusal itself (raises
        ProfileError, as Python would), and only what it declines, unsure, is checked by Python
        in the pool. A small upload is checked here at once."""
        limit = self.settings.decompressed_max_size
        if spool.path is not None:
            async with self._go_checks:
                checked = await asyncio.to_thread(check_profile_file_by_go, spool.path, limit)
            return checked if checked is not None else await self.cpu.run(check_profile_file, spool.path, limit,
                                                                         False)
        assert spool.buffer is not None  # memory mode: no path, the bytes in the buffer
        checked = _checked_inline(spool.buffer, limit)
        if checked is None:
            async with self._go_checks:
                checked = await asyncio.to_thread(check_profile_by_go, bytes(spool.buffer), limit)
        if checked is None:  # declined by Go, unsure: Python decides (a refusal by Go raised already)
            checked = await self.cpu.run(check_profile, spool.buffer, limit, False)
        return checked

    async def _store(self, tenant: str, task_id: str, event: EventType, instance: str, spool: Spool,
                     charge: Charge, idempotency_key: str) -> tuple[str, bool]:
        try:
            started = time.perf_counter()
            pid = profile_id(tenant, task_id, instance, idempotency_key, spool.sha256)
            try:
                sample_types = await self._sample_types(spool)
                reason = misfit(event, sample_types)
                if reason is not None:
                    raise ProfileMisfit(reason)
            except ProfileMisfit as e:
                await self.record_failure(tenant, task_id, instance, Reason.INVALID_PROFILE, str(e), pid)
                raise
            except ProfileTooLarge as e:
                await self.record_failure(tenant, task_id, instance, Reason.PROFILE_TOO_LARGE, str(e), pid)
                raise UploadTooLarge(str(e)) from e
            except ProfileError as e:
                message = f"invalid profile: {e}"
                await self.record_failure(tenant, task_id, instance, Reason.INVALID_PROFILE, message, pid)
                raise InvalidProfile(message) from e
            validated = time.perf_counter()
            metrics.INGEST_STAGE_SECONDS.labels("intake_validate").observe(validated - started)
            if self.view.profile_accepted(tenant, pid):
                return pid, True
            try:
                await self._publish(tenant, task_id, instance, pid, idempotency_key, spool)
            except Exception as e:  # noqa: BLE001 - Kafka timeouts and errors of every kind
                # (the producer renewed itself, so the agent's retry does not meet the same state)
                log.warning("profile %s of task %s (%d bytes) not stored: %r", pid, task_id, spool.size, e)
                # Kafka may still take a record it did not acknowledge in time (it waits in the
                # producer): the profile may then be stored after all, and an upload again counts once
                message = (f"the profile ({spool.size} bytes) arrived but could not be stored: "
                           f"{type(e).__name__}: {e}; it may still be stored, and the agent may upload it "
                           f"again (counted once)")
                # Kafka just failed a send: the log's tries may each wait for it as long (an agent
                # waited ~130 s for its 503 with the broker dead), so the 503 goes out now
                self.record_failure_later(tenant, task_id, instance, Reason.NOT_STORED, message)
                raise UploadNotStored(message, self.budget.retry_after()) from e
            await self._accepted(tenant, pb.ProfileAccepted(task_id=task_id, instance_id=instance, profile_id=pid))
            metrics.INGEST_STAGE_SECONDS.labels("intake_produce").observe(time.perf_counter() - validated)
            metrics.INGEST_BYTES.inc(spool.size)
            return pid, False
        finally:
            spool.close()
            charge.release()

    async def _accepted(self, tenant: str, accepted: pb.ProfileAccepted) -> None:
        """The instance has done its part (pb.ProfileAccepted): no agent is handed the task again.
        The profile is on Kafka already: if this is not sent, the upload stands, and until its
        ProfileStored an agent polling again may be handed the task once more."""
        self.view.note_accepted(tenant, accepted)
        try:
            await self.producer.send(self.topics.task_events, task_key(tenant, accepted.task_id),
                                     events.new_event(tenant, accepted))
        except Exception as e:  # noqa: BLE001 - Kafka errors of every kind; the upload is kept
            log.warning("ProfileAccepted of profile %s of task %s not sent: %r", accepted.profile_id,
                        accepted.task_id, e)

    async def _publish(self, tenant: str, task_id: str, instance: str, pid: str, idempotency_key: str,
                       spool: Spool) -> None:
        """Up to CHUNK_BYTES the content is inline; beyond, it goes first as ProfileChunk records
        of the task's key (one partition, in order), then the ProfileUploaded that points to them."""
        key = task_key(tenant, task_id)
        uploaded = pb.ProfileUploaded(task_id=task_id, instance_id=instance, profile_id=pid,
                                      idempotency_key=idempotency_key, size=spool.size)
        if spool.size <= CHUNK_BYTES:
            uploaded.content = spool.content()
        else:
            acks = await self.producer.send_all(self.topics.profile_chunks, key, _chunk_events(tenant, pid, spool))
            partitions = {a.partition for a in acks}
            if len(partitions) != 1:  # one key is one partition; anything else is a broken invariant
                raise RuntimeError(f"chunks of profile {pid} landed on partitions {sorted(partitions)}")
            uploaded.chunks.CopyFrom(pb.ChunkRefs(topic=self.topics.profile_chunks, partition=acks[0].partition,
                                                  offsets=[a.offset for a in acks], sha256=spool.sha256))
        await self.producer.send(self.topics.profiles, key, events.new_event(tenant, uploaded))


def _checked_inline(body: bytearray, limit: int) -> list[tuple[str, str]] | None:
    """A small profile (a fleet's burst is a thousand of them) is checked here, in a millisecond
    or less, rather than through the CPU pool, whose round trip costs more than the check: its
    sample types. None when it is not small after all (it inflates past INLINE_INFLATED): the
    pool checks it."""
    if len(body) > INLINE_BYTES:
        return None
    try:
        return check_profile(body, min(limit, INLINE_INFLATED))
    except ProfileTooLarge:
        if limit > INLINE_INFLATED:
            return None
        raise


def _chunk_events(tenant: str, pid: str, spool: Spool) -> Iterator[pb.Envelope]:
    for index, data in enumerate(spool.pieces(CHUNK_BYTES)):
        yield events.new_event(tenant, pb.ProfileChunk(profile_id=pid, index=index, data=data))


async def _charged(chunks: AsyncIterator[bytes], charge: Charge) -> AsyncIterator[bytes]:
    """An upload of undeclared size pays for its bytes as they arrive."""
    async for chunk in chunks:
        await charge.add(len(chunk))
        yield chunk


def _keyed_upload(tenant: str, task_id: str, instance: str, idempotency_key: str) -> str | None:
    """The profile id of an upload refused before all its bytes arrived: known only by its
    Idempotency-Key."""
    return profile_id(tenant, task_id, instance, idempotency_key, b"") if idempotency_key else None
