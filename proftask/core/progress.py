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
    """Logs newest first; an instance is a success once it has EXECUTION_FINISHED, and an error
    while its newest outcome is an error (a later successful upload supersedes a failed one).
    Each id appears once in its list."""
    ordered = sorted(logs, key=lambda l: (-l.operation_time, l.instance_id, l.operation_type))
    success: list[str] = []
    error: list[str] = []
    decided: set[str] = set()
    for log in ordered:  # newest first: the first outcome seen per instance is its latest
        if log.operation_type == EXECUTION_FINISHED and log.instance_id not in success:
            success.append(log.instance_id)
        if log.instance_id in decided or log.operation_type == NOTIFIED:
            continue
        decided.add(log.instance_id)
        if log.operation_type in ERROR_TYPES:
            error.append(log.instance_id)
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
