"""Task progress: from the task's logs to what an operator reads.

Log kinds are SkyWalking's PprofTaskLogOperationType. The processor stores one row per log
event; this module turns deduplicated rows into the progress answer.
"""
from __future__ import annotations

import dataclasses
from typing import Iterable

NOTIFIED = "NOTIFIED"
EXECUTION_FINISHED = "EXECUTION_FINISHED"
PPROF_UPLOAD_FILE_TOO_LARGE_ERROR = "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR"
EXECUTION_TASK_ERROR = "EXECUTION_TASK_ERROR"
ERROR_TYPES = (PPROF_UPLOAD_FILE_TOO_LARGE_ERROR, EXECUTION_TASK_ERROR)
OPERATION_TYPES = (NOTIFIED, EXECUTION_FINISHED, *ERROR_TYPES)


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
    ordered = sorted(logs, key=lambda l: (-l.operation_time, l.instance_id, l.operation_type))
    success = {log.instance_id for log in ordered if log.operation_type == EXECUTION_FINISHED}
    error = {log.instance_id for log in ordered if log.operation_type in ERROR_TYPES} - success
    return Progress(ordered, sorted(success), sorted(error))


def progress_json(progress: Progress) -> dict:
    return {
        "logs": [
            {
                "id": log.task_id,
                "instanceId": log.instance_id,
                "instanceName": log.instance_id,  # instances are named by their ids here
                "operationType": log.operation_type,
                "operationTime": log.operation_time,
                "message": log.message,
            }
            for log in progress.logs
        ],
        "successInstanceIds": progress.success_instance_ids,
        "errorInstanceIds": progress.error_instance_ids,
    }
