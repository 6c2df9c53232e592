"""The creation decision: one owner per (tenant, service) serialises requests, so the conflict
rule holds however many task_svc replicas receive racing requests.

Pure: state in, decision and new state out. The Faust table in services/task_svc/decider.py
keeps the state and feeds the requests in partition order.
"""
from __future__ import annotations

import dataclasses
import datetime

from proftask.core.echo import echo
from proftask.core.tasks import EventType, TaskSpec, conflicts, running_until

# Decisions remembered beyond the running tasks, so a redelivered request gets the same answer.
REMEMBERED_DECISIONS = 64


@dataclasses.dataclass(frozen=True)
class Decision:
    task_id: str
    events: EventType
    create_time: int  # assigned by the decider; 0 when rejected
    duration: int
    created: bool
    conflicting_task_id: str = ""
    conflicting_until: int = 0  # epoch ms: when the conflicting task stops counting as running


@dataclasses.dataclass(frozen=True)
class ServiceState:
    last_create_time: int = 0
    recent: tuple[Decision, ...] = ()


def decide_creation(state: ServiceState, task_id: str, spec: TaskSpec,
                    requested_at: int) -> tuple[Decision, ServiceState]:
    """Accept or reject one request. createTime is strictly increasing per service, because
    agents ask for "tasks created after the last one I got" (lastCommandTime)."""
    for earlier in state.recent:
        if earlier.task_id == task_id:  # redelivered request: same answer, state unchanged
            return earlier, state
    create_time = max(requested_at, state.last_create_time + 1)
    conflicting = next(
        (d for d in state.recent
         if d.created and conflicts(d.events, d.create_time, d.duration, spec.events, create_time)),
        None,
    )
    if conflicting is not None:
        decision = Decision(task_id, spec.events, 0, spec.duration, False, conflicting.task_id,
                            running_until(conflicting.create_time, conflicting.duration))
        last_create_time = state.last_create_time
    else:
        decision = Decision(task_id, spec.events, create_time, spec.duration, True)
        last_create_time = create_time
    kept = [
        d for i, d in enumerate(state.recent)
        if (d.created and running_until(d.create_time, d.duration) >= create_time)
        or i >= len(state.recent) - REMEMBERED_DECISIONS
    ]
    return decision, ServiceState(last_create_time, (*kept, decision))


def iso_utc(epoch_ms: int) -> str:
    return datetime.datetime.fromtimestamp(epoch_ms / 1000, datetime.UTC) \
        .isoformat(timespec="milliseconds").replace("+00:00", "Z")


def rejection_reason(decision: Decision, service_id: str) -> str:
    """Why a request was refused (SkyWalking's ALREADY_PROFILING_ERROR): the rule, the blocking
    task and when it ends, so the operator knows what to wait for or stop."""
    reason = (f"service {echo(service_id)} already has a {decision.events.name} task running: "
              f"task {decision.conflicting_task_id}")
    if decision.conflicting_until:  # 0 only in states written before the end time was kept
        reason += (f" runs until {iso_utc(decision.conflicting_until)} "
                   f"({decision.conflicting_until} epoch ms)")
    return reason + "; a service runs one task per event type at a time"
