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


def task_status(instance_ids: Iterable[str], progress: dict, deadline_ms: int, now_ms: int) -> str:
    """One word for a task, from its progress answer (the shape of progress_json in
    services/query_svc/views.py) — the CLI's `task list` and the web UI use this same rule:

    - finished: every instance finished;
    - failed: every instance settled (finished or failed) and some failed, or the task's deadline
      (creation + duration + grace) passed before all settled: the rest will never run it;
    - waiting: before the deadline, no instance notified or settled yet;
    - running: before the deadline, some instance notified or settled, not all settled.
    """
    instances = set(instance_ids)
    finished = instances & set(progress.get("successInstanceIds", ()))
    failed = instances & set(progress.get("errorInstanceIds", ()))
    if instances and finished == instances:
        return FINISHED
    if finished | failed == instances or now_ms > deadline_ms:
        return FAILED
    if not finished and not failed and not any(log.get("operationType") == NOTIFIED and log.get("instanceId")
                                               in instances for log in progress.get("logs", ())):
        return WAITING
    return RUNNING
