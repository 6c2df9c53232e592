"""Task progress: from the task's logs to what an operator reads.

Log kinds are SkyWalking's PprofTaskLogOperationType. The processor stores one row per log
event; this module turns deduplicated rows into the progress answer.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

NOTIFIED = "NOTIFIED"
EXECUTION_FINISHED = "EXECUTION_FINISHED"
PPROF_UPLOAD_FILE_TOO_LARGE_ERROR = "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR"
EXECUTION_TASK_ERROR = "EXECUTION_TASK_ERROR"
ERROR_TYPES = (PPROF_UPLOAD_FILE_TOO_LARGE_ERROR, EXECUTION_TASK_ERROR)


@dataclasses.dataclass(frozen=True)
class TaskLog:
    task_id: str
    instance_id: str
    operation_type: str
    operation_time: int  # epoch ms
    message: str = ""


@dataclasses.dataclass(frozen=True)
class Progress:
    logs: list[TaskLog]
    success_instance_ids: list[str]
    error_instance_ids: list[str]


def derive_progress(logs: Iterable[TaskLog]) -> Progress:
    """Logs newest first, and each instance in one final state: a success once it has
    EXECUTION_FINISHED, whatever was reported before or after (its profile is stored and in
    every analysis, so progress says what the analysis shows; an error reported later, e.g. by
    an agent that gave up on an upload that did land, stays in the logs); else an error once it
    has an error log. Each id appears once in its list."""
    ordered = sorted(logs, key=lambda entry: (-entry.operation_time, entry.instance_id, entry.operation_type))
    success = {log.instance_id for log in ordered if log.operation_type == EXECUTION_FINISHED}
    error = {log.instance_id for log in ordered if log.operation_type in ERROR_TYPES} - success
    return Progress(ordered, sorted(success), sorted(error))


WAITING, RUNNING, FINISHED, FAILED = "waiting", "running", "finished", "failed"


def missed_instances(instance_ids: Iterable[str], progress: dict, create_time_ms: int, deadline_ms: int,
                     now_ms: int) -> set[str]:
    """The instances that have not settled (finished or failed) and never will, from a progress
    answer (the shape of progress_json in services/query_svc/views.py): one not notified by the
    task's deadline (the last moment an agent is handed the task), or one notified at t and not
    settled by t + (deadline − creation), the time the task gives an instance from its hand-out
    (its duration and the grace): its agent went away."""
    settled = set(progress.get("successInstanceIds", ())) | set(progress.get("errorInstanceIds", ()))
    notified: dict[str, int] = {}
    for log in progress.get("logs", ()):
        if log.get("operationType") == NOTIFIED:
            at = int(log.get("operationTime") or 0)
            notified[log.get("instanceId")] = min(at, notified.get(log.get("instanceId"), at))
    allowance = deadline_ms - create_time_ms
    return {i for i in instance_ids if i not in settled and now_ms > (
        notified[i] + allowance if i in notified else deadline_ms)}


def task_status(instance_ids: Iterable[str], progress: dict, create_time_ms: int, deadline_ms: int,
                now_ms: int) -> str:
    """One word for a task, from its progress answer — the CLI's `task list` and the web UI
    (services/query_svc/ui/app.js) use this same rule:

    - finished: every instance finished;
    - failed: every instance settled (finished or failed) or missed (missed_instances), and some
      did not finish;
    - waiting: no instance notified or settled yet;
    - running: some instance notified or settled, not all settled or missed.
    """
    instances = set(instance_ids)
    finished = instances & set(progress.get("successInstanceIds", ()))
    failed = instances & set(progress.get("errorInstanceIds", ()))
    if instances and finished == instances:
        return FINISHED
    if finished | failed | missed_instances(instances, progress, create_time_ms, deadline_ms, now_ms) == instances:
        return FAILED
    if not finished and not failed and not any(log.get("operationType") == NOTIFIED and log.get("instanceId")
                                               in instances for log in progress.get("logs", ())):
        return WAITING
    return RUNNING
