"""Agent commands: which task an agent gets when it polls, and how it is spelt on the wire.

The wire form is SkyWalking's PprofTaskQuery command (PprofTaskCommand.java): six string args
in a fixed order, shared by the HTTP route (its JSON in services/task_svc/views.py) and the gRPC protocol.
"""
from __future__ import annotations

from collections.abc import Collection, Iterable

from proftask.core.tasks import Task, deliverable_until

COMMAND_NAME = "PprofTaskQuery"


def select_task_for_instance(tasks: Iterable[Task], instance_id: str, last_command_time: int,
                             now: int, grace_ms: int, settled: Collection[str] = ()) -> Task | None:
    """The oldest task for this instance created after last_command_time and not past its
    deadline, or None. `tasks` are the tasks of the agent's service; `settled` the ids of those
    this instance already uploaded for (a profile accepted), finished or failed: never handed to
    it again, since a restarted agent polls from time 0 and would run them a second time."""
    eligible = [
        t for t in tasks
        if t.create_time > last_command_time
        and instance_id in t.spec.service_instance_ids
        and t.task_id not in settled
        and now <= deliverable_until(t, grace_ms)
    ]
    return min(eligible, key=lambda t: (t.create_time, t.task_id), default=None)


def command_args(task: Task, serial_number: str) -> list[tuple[str, str]]:
    """The PprofTaskQuery args in SkyWalking's order; every value is a decimal or plain string."""
    return [
        ("SerialNumber", serial_number),
        ("TaskId", task.task_id),
        ("Events", task.spec.events.wire_name),
        ("Duration", str(task.spec.duration)),
        ("CreateTime", str(task.create_time)),
        ("DumpPeriod", str(task.spec.dump_period)),
    ]
