"""Message processors: one event in, the rows it becomes out (Snuba's habit), each row a dict of
named columns. Pure."""
from __future__ import annotations

from proftask.core import progress
from proftask.events.v1 import events_pb2 as pb

Row = dict[str, object]

_FAILURE_LOG_TYPE = {
    pb.TaskFailedOnInstance.AGENT_ERROR: progress.EXECUTION_TASK_ERROR,
    pb.TaskFailedOnInstance.INVALID_PROFILE: progress.EXECUTION_TASK_ERROR,
    pb.TaskFailedOnInstance.PROFILE_TOO_LARGE: progress.PPROF_UPLOAD_FILE_TOO_LARGE_ERROR,
    pb.TaskFailedOnInstance.UPLOAD_INTERRUPTED: progress.EXECUTION_TASK_ERROR,
    pb.TaskFailedOnInstance.NOT_STORED: progress.EXECUTION_TASK_ERROR,
}


def task_rows(env: pb.Envelope) -> list[Row]:
    if env.WhichOneof("payload") != "task_created":
        return []  # rejections are answers to a caller, not tasks
    t = env.task_created
    return [dict(tenant=env.tenant, task_id=t.task_id, service_id=t.spec.service_id,
                 service_instance_ids=list(t.spec.service_instance_ids), events=pb.EventType.Name(t.spec.events),
                 duration=t.spec.duration, dump_period=t.spec.dump_period, create_time=t.create_time,
                 event_id=env.event_id)]


def _log_row(env: pb.Envelope, p, operation_type: str, dedup_key: str, message: str = "") -> Row:
    return dict(tenant=env.tenant, task_id=p.task_id, instance_id=p.instance_id, operation_type=operation_type,
                dedup_key=dedup_key, operation_time=env.occurred_at, message=message, event_id=env.event_id)


def task_log_rows(env: pb.Envelope) -> list[Row]:
    kind = env.WhichOneof("payload")
    if kind == "instance_notified":
        p = env.instance_notified
        # One NOTIFIED per instance: an empty dedup key folds every copy into the first.
        return [_log_row(env, p, progress.NOTIFIED, "")]
    if kind == "profile_stored":
        p = env.profile_stored
        # One EXECUTION_FINISHED per stored profile: the same upload stored twice folds.
        return [_log_row(env, p, progress.EXECUTION_FINISHED, p.profile_id)]
    if kind == "task_failed_on_instance":
        p = env.task_failed_on_instance
        # Every failure is its own log line; redeliveries of the same event fold, and so do the
        # refusals of one upload sent again (intake names them after the upload and the reason).
        return [_log_row(env, p, _FAILURE_LOG_TYPE[p.reason], env.event_id, p.message)]
    return []
