"""Task rules: what a valid profiling task is, when two tasks conflict, how long one lives.

SkyWalking's PprofMutationService is the model: the same checks in the same order with the
same reasons, so its UI and CLI users see familiar messages.
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, Mapping

MAX_DURATION_MINUTES = 15
MAX_INSTANCES = 1000
MAX_ID_LENGTH = 512


class EventType(enum.Enum):
    # Values follow SkyWalking's PprofEventType codes (and the protobuf enum).
    CPU = 0
    HEAP = 1
    BLOCK = 2
    MUTEX = 3
    GOROUTINE = 4
    THREADCREATE = 5
    ALLOCS = 6

    @property
    def wire_name(self) -> str:
        """The agent protocol spells events in lower case (PprofEventType.getName())."""
        return self.name.lower()

    @property
    def needs_duration(self) -> bool:
        return self in (EventType.CPU, EventType.BLOCK, EventType.MUTEX)

    @property
    def needs_dump_period(self) -> bool:
        return self in (EventType.BLOCK, EventType.MUTEX)


class TaskArgumentError(ValueError):
    """A creation request breaks a rule; str() is the reason shown to the operator."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    service_id: str
    service_instance_ids: tuple[str, ...]
    events: EventType
    duration: int  # minutes; 0 for snapshot events
    dump_period: int  # 0 where the event ignores it


@dataclasses.dataclass(frozen=True)
class Task:
    task_id: str
    spec: TaskSpec
    create_time: int  # epoch ms


def _optional_int(body: Mapping[str, Any], key: str) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    # bool is an int in Python; JSON true is not a number of minutes.
    if isinstance(value, bool) or not isinstance(value, int):
        raise TaskArgumentError(f"{key} must be an integer")
    return value


def parse_task_request(body: Any) -> TaskSpec:
    """Validate a POST /api/v1/pprof/tasks body into a TaskSpec, or raise TaskArgumentError.

    Order and wording of the checks follow SkyWalking; type checks come first because a JSON
    API can receive what GraphQL's schema would have refused.
    """
    if not isinstance(body, Mapping):
        raise TaskArgumentError("request body must be a JSON object")
    service_id = body.get("serviceId")
    if service_id is not None and not isinstance(service_id, str):
        raise TaskArgumentError("serviceId must be a string")
    events_raw = body.get("events")
    if events_raw is not None and not isinstance(events_raw, str):
        raise TaskArgumentError("events must be a string")
    instances = body.get("serviceInstanceIds")
    if instances is not None and (
        not isinstance(instances, list) or not all(isinstance(i, str) for i in instances)
    ):
        raise TaskArgumentError("serviceInstanceIds must be a list of strings")
    duration = _optional_int(body, "duration")
    dump_period = _optional_int(body, "dumpPeriod")

    if service_id is None or not service_id.strip():
        raise TaskArgumentError("service cannot be null")
    if len(service_id) > MAX_ID_LENGTH:
        raise TaskArgumentError(f"serviceId cannot be longer than {MAX_ID_LENGTH} characters")
    if events_raw is None or not events_raw.strip():
        raise TaskArgumentError("events cannot be empty")
    try:
        events = EventType[events_raw.strip().upper()]
    except KeyError:
        allowed = ", ".join(e.name for e in EventType)
        raise TaskArgumentError(f"unknown events '{events_raw}', expected one of {allowed}") from None

    if events.needs_duration:
        if duration is None or duration <= 0:
            raise TaskArgumentError("duration cannot be negative")
        if duration > MAX_DURATION_MINUTES:
            raise TaskArgumentError(f"duration cannot be greater than {MAX_DURATION_MINUTES} minutes")
    else:
        duration = 0
    if events.needs_dump_period:
        if dump_period is None or dump_period <= 0:
            raise TaskArgumentError("dumpPeriod cannot be negative")
    else:
        dump_period = 0

    if not instances:
        raise TaskArgumentError("serviceInstanceIds cannot be empty")
    if len(instances) > MAX_INSTANCES:
        raise TaskArgumentError(f"serviceInstanceIds cannot hold more than {MAX_INSTANCES} instances")
    unique: list[str] = []
    for instance in instances:
        if not instance.strip():
            raise TaskArgumentError("serviceInstanceIds cannot contain an empty id")
        if len(instance) > MAX_ID_LENGTH:
            raise TaskArgumentError(f"an instance id cannot be longer than {MAX_ID_LENGTH} characters")
        if instance not in unique:
            unique.append(instance)
    return TaskSpec(service_id, tuple(unique), events, duration, dump_period)


def running_until(create_time: int, duration_minutes: int) -> int:
    """The last ms at which a task counts as running for the conflict rule (SkyWalking's)."""
    return create_time + duration_minutes * 60_000


def conflicts(existing_events: EventType, existing_create_time: int, existing_duration: int,
              new_events: EventType, now: int) -> bool:
    """A new task conflicts with an existing one of the same service when it has the same
    event type and the existing one is still running (createTime + duration >= now)."""
    return existing_events == new_events and running_until(existing_create_time, existing_duration) >= now


def deliverable_until(task: Task, grace_ms: int) -> int:
    """Unlike SkyWalking's 5-minute cache window, a task waits for its agents until its own
    deadline: creation + duration + a grace period."""
    return task.create_time + task.spec.duration * 60_000 + grace_ms
