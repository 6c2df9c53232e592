"""The creation decision: one owner per (tenant, service) serialises requests, so the conflict
rule holds however many task_svc replicas receive racing requests.

Pure: state in, decision and new state out. The Faust table in services/task_svc/decider.py
keeps the state and feeds the requests in partition order.
"""
from __future__ import annotations

import dataclasses

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
        decision = Decision(task_id, spec.events, 0, spec.duration, False, conflicting.task_id)
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
