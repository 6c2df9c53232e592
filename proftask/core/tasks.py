"""Task rules: what a valid profiling task is, when two tasks conflict, how long one lives.

SkyWalking's PprofMutationService is the model: the same checks in the same order and the same
codes; the messages say more than SkyWalking's (field, rule and the value received).
"""
from __future__ import annotations

import dataclasses
import enum
from typing import Any, TypeGuard
from collections.abc import Mapping

from proftask.core.echo import echo

MAX_DURATION_MINUTES = 15
MAX_INSTANCES = 1000
MAX_ID_LENGTH = 512
# The wire formats carry dumpPeriod as a 32-bit int (SkyWalking's Java int, our int32 event field),
# and Go's runtime.SetBlockProfileRate/SetMutexProfileFraction take an `int`, 32 bits on 386/arm
# agents. Beyond it the rate means nothing anyway: one block sample per 2.1 s spent blocked.
MAX_DUMP_PERIOD = 2**31 - 1


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


_DUMP_PERIOD_MEANING = {
    EventType.BLOCK: "the block profile rate: one sample per that many nanoseconds spent blocked",
    EventType.MUTEX: "the mutex profile fraction: one in that many contention events sampled",
}


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


def _event_names() -> str:
    return ", ".join(e.name for e in EventType)


def _whole_number(value: Any) -> TypeGuard[int]:
    # bool is an int in Python; JSON true is not a number of minutes.
    return isinstance(value, int) and not isinstance(value, bool)


def _check_ignored_int(value: Any, key: str, events: EventType) -> None:
    """A field the event ignores may be null or an integer, nothing else (the API's schema)."""
    if value is not None and not _whole_number(value):
        raise TaskArgumentError(f"{key} must be an integer or null ({events.name} tasks ignore it), "
                                f"got {echo(value)}")


def _nonblank_id(value: Any, field: str) -> str:
    if not isinstance(value, str) or not value.strip() or len(value) > MAX_ID_LENGTH:
        raise TaskArgumentError(f"{field} must be a non-blank string of at most {MAX_ID_LENGTH} "
                                f"characters, got {echo(value)}")
    return value


def parse_task_request(body: Any) -> TaskSpec:
    """Validate a POST /api/v1/pprof/tasks body into a TaskSpec, or raise TaskArgumentError.

    The checks run in SkyWalking's order (service, events, duration, dumpPeriod, instances);
    each message names the field, the rule and the value received (quoted by `echo`).
    """
    if not isinstance(body, Mapping):
        raise TaskArgumentError(f"the request body must be a JSON object, got {echo(body)}")
    service_id = _nonblank_id(body.get("serviceId"), "serviceId")

    events_raw = body.get("events")
    try:
        events = EventType[events_raw.strip().upper()] if isinstance(events_raw, str) else None
        if events is None:
            raise KeyError(events_raw)
    except KeyError:
        raise TaskArgumentError(f"events must be one of {_event_names()}, got {echo(events_raw)}") from None

    duration = body.get("duration")
    if events.needs_duration:
        if not _whole_number(duration) or not 1 <= duration <= MAX_DURATION_MINUTES:
            raise TaskArgumentError(
                f"duration must be a whole number of minutes from 1 to {MAX_DURATION_MINUTES} for "
                f"{events.name} tasks, got {echo(duration)}")
    else:
        _check_ignored_int(duration, "duration", events)
        duration = 0

    dump_period = body.get("dumpPeriod")
    if events.needs_dump_period:
        if not _whole_number(dump_period) or not 1 <= dump_period <= MAX_DUMP_PERIOD:
            raise TaskArgumentError(
                f"dumpPeriod must be a whole number from 1 to {MAX_DUMP_PERIOD} for {events.name} "
                f"tasks ({_DUMP_PERIOD_MEANING[events]}), got {echo(dump_period)}")
    else:
        _check_ignored_int(dump_period, "dumpPeriod", events)
        dump_period = 0

    instances = body.get("serviceInstanceIds")
    if not isinstance(instances, list) or not instances:
        raise TaskArgumentError(f"serviceInstanceIds must be a non-empty list of instance ids, "
                                f"got {echo(instances)}")
    if len(instances) > MAX_INSTANCES:
        raise TaskArgumentError(f"serviceInstanceIds must hold at most {MAX_INSTANCES} instance ids, "
                                f"got {len(instances)}")
    unique: dict[str, None] = {}
    for i, instance in enumerate(instances):
        unique[_nonblank_id(instance, f"serviceInstanceIds[{i}]")] = None
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
