"""Message processors: one event in, the rows it becomes out (Snuba's habit). Pure."""
from __future__ import annotations

from proftask.core import progress
from proftask.events.v1 import events_pb2 as pb

TASK_COLUMNS = ("tenant", "task_id", "service_id", "service_instance_ids", "events", "duration",
                "dump_period", "create_time", "event_id")
TASK_LOG_COLUMNS = ("tenant", "task_id", "instance_id", "operation_type", "dedup_key",
                    "operation_time", "message", "event_id")

_FAILURE_LOG_TYPE = {
    pb.TaskFailedOnInstance.AGENT_ERROR: progress.EXECUTION_TASK_ERROR,
    pb.TaskFailedOnInstance.INVALID_PROFILE: progress.EXECUTION_TASK_ERROR,
    pb.TaskFailedOnInstance.PROFILE_TOO_LARGE: progress.PPROF_UPLOAD_FILE_TOO_LARGE_ERROR,
    pb.TaskFailedOnInstance.UPLOAD_INTERRUPTED: progress.EXECUTION_TASK_ERROR,
    pb.TaskFailedOnInstance.NOT_STORED: progress.EXECUTION_TASK_ERROR,
}


def task_rows(env: pb.Envelope) -> list[tuple]:
    if env.WhichOneof("payload") != "task_created":
        return []  # rejections are answers to a caller, not tasks
    t = env.task_created
    return [(env.tenant, t.task_id, t.spec.service_id, list(t.spec.service_instance_ids),
             pb.EventType.Name(t.spec.events), t.spec.duration, t.spec.dump_period, t.create_time,
             env.event_id)]


def task_log_rows(env: pb.Envelope) -> list[tuple]:
    kind = env.WhichOneof("payload")
    if kind == "instance_notified":
        p = env.instance_notified
        # One NOTIFIED per instance: an empty dedup key folds every copy into the first.
        return [(env.tenant, p.task_id, p.instance_id, progress.NOTIFIED, "", env.occurred_at, "",
                 env.event_id)]
    if kind == "profile_stored":
        p = env.profile_stored
        # One EXECUTION_FINISHED per stored profile: the same upload stored twice folds.
        return [(env.tenant, p.task_id, p.instance_id, progress.EXECUTION_FINISHED, p.profile_id,
                 env.occurred_at, "", env.event_id)]
    if kind == "task_failed_on_instance":
        p = env.task_failed_on_instance
        # Every failure is its own log line; only redeliveries of the same event fold.
        return [(env.tenant, p.task_id, p.instance_id, _FAILURE_LOG_TYPE[p.reason], env.event_id,
                 env.occurred_at, p.message, env.event_id)]
    return []
