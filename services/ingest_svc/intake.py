"""What an agent's report does, whatever carried it (the HTTP routes or SkyWalking's gRPC
protocol): check the task and instance, receive and validate a profile, put it on Kafka, and
record every refusal as a task log."""
from __future__ import annotations

import asyncio
from typing import AsyncIterator

from proftask import events, metrics
from proftask.config import Settings
from proftask.core.echo import echo
from proftask.core.tasks import Task
from proftask.cpu_pool import CpuPool
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import Topics, task_key
from proftask.pprof.decode import ProfileError, ProfileTooLarge
from proftask.task_view import TaskView
from services.ingest_svc.upload import (UploadInterrupted, UploadTooLarge, check_profile, profile_id,
                                        receive_chunks)

MAX_AGENT_MESSAGE = 16 * 1024  # characters kept of an agent's error message

Reason = pb.TaskFailedOnInstance


class ReportRefused(Exception):
    """The task or instance named by a report does not fit. `code` is NOT_FOUND (no such task),
    CONFLICT (the instance or service is not the task's) or UNAVAILABLE (still loading)."""

    def __init__(self, code: str, reason: str):
        super().__init__(reason)
        self.code, self.reason = code, reason


class ProfileIntake:
    def __init__(self, settings: Settings, topics: Topics, producer: EventProducer, view: TaskView,
                 cpu: CpuPool):
        self.settings, self.topics, self.producer, self.view, self.cpu = settings, topics, producer, view, cpu

    async def task_for(self, tenant: str, task_id: str, service: str, instance: str) -> Task:
        if not self.view.caught_up.is_set():
            raise ReportRefused("UNAVAILABLE", "task view is still loading the task history")
        task = await self.view.find(tenant, task_id)
        if task is None:
            raise ReportRefused("NOT_FOUND", f"task {echo(task_id)} not found")
        if service and service != task.spec.service_id:
            raise ReportRefused("CONFLICT", f"task {echo(task_id)} belongs to service {echo(task.spec.service_id)}, "
                                            f"not {echo(service)}")
        if instance not in task.spec.service_instance_ids:
            raise ReportRefused("CONFLICT", f"instance {echo(instance)} is not an instance of task {echo(task_id)}")
        return task

    async def record_failure(self, tenant: str, task_id: str, instance: str, reason: int, message: str) -> None:
        if len(message) > MAX_AGENT_MESSAGE:
            message = message[:MAX_AGENT_MESSAGE] + "… (truncated)"
        event = events.new_event(tenant, pb.TaskFailedOnInstance(task_id=task_id, instance_id=instance,
                                                                 reason=reason, message=message))
        # Shielded: a report cancelled meanwhile (the agent hung up) still records its outcome.
        await asyncio.shield(self.producer.send(self.topics.task_events, task_key(tenant, task_id), event))

    async def record_agent_error(self, tenant: str, task_id: str, instance: str, message: str) -> None:
        await self.record_failure(tenant, task_id, instance, Reason.AGENT_ERROR,
                                  message or "the agent reported an error without a message")

    async def check_declared_size(self, tenant: str, task_id: str, instance: str, declared: int | None) -> None:
        """Refuse (and log) an upload whose declared size is already over pprofMaxSize. The
        declared size is never trusted beyond this: the bytes received are counted too."""
        limit = self.settings.pprof_max_size
        if declared is not None and declared > limit:
            message = f"upload of {declared} bytes is over pprofMaxSize ({limit} bytes)"
            await self.record_failure(tenant, task_id, instance, Reason.PROFILE_TOO_LARGE, message)
            raise UploadTooLarge(message)

    async def accept(self, tenant: str, task_id: str, instance: str, chunks: AsyncIterator[bytes],
                     idempotency_key: str) -> tuple[str, bool]:
        """Receive, validate and publish one upload; returns (profile id, duplicate). Every refusal
        is recorded as a task log and then raised: UploadTooLarge/ProfileTooLarge, ProfileError,
        UploadInterrupted."""
        settings = self.settings
        try:
            body = await receive_chunks(chunks, settings.pprof_max_size, settings.memory_parser_enabled)
            await self.cpu.run(check_profile, body, settings.decompressed_max_size)
        except (UploadTooLarge, ProfileTooLarge) as e:
            await self.record_failure(tenant, task_id, instance, Reason.PROFILE_TOO_LARGE, str(e))
            raise
        except UploadInterrupted as e:
            await self.record_failure(tenant, task_id, instance, Reason.UPLOAD_INTERRUPTED, str(e))
            raise
        except ProfileError as e:
            await self.record_failure(tenant, task_id, instance, Reason.INVALID_PROFILE, f"invalid profile: {e}")
            raise
        pid = profile_id(tenant, task_id, instance, idempotency_key, body)
        if self.view.profile_stored(tenant, pid):
            return pid, True
        event = events.new_event(tenant, pb.ProfileUploaded(task_id=task_id, instance_id=instance, profile_id=pid,
                                                            content=body, idempotency_key=idempotency_key,
                                                            size=len(body)))
        await self.producer.send(self.topics.profiles, task_key(tenant, task_id), event)
        metrics.INGEST_BYTES.inc(len(body))
        return pid, False
