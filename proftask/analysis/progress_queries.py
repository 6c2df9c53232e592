"""SQL for task progress. Duplicated log rows (redelivery, racing replicas) fold here."""
from __future__ import annotations

from proftask import metrics
from proftask.clickhouse.client import ClickHouse
from proftask.core.progress import TaskLog

TASK_INSTANCES = """
SELECT any(service_instance_ids) FROM tasks WHERE tenant = {tenant:String} AND task_id = {task_id:String}
HAVING count() > 0
"""

TASK_LOGS = """
SELECT instance_id, operation_type, min(operation_time), argMin(message, operation_time)
FROM task_logs
WHERE tenant = {tenant:String} AND task_id = {task_id:String}
GROUP BY instance_id, operation_type, dedup_key
"""


async def task_instances(ch: ClickHouse, tenant: str, task_id: str) -> list[str] | None:
    """The task's instances, or None when there is no such task."""
    with metrics.QUERY_SECONDS.labels("task_instances").time():
        rows = await ch.rows(TASK_INSTANCES, {"tenant": tenant, "task_id": task_id})
    return list(rows[0][0]) if rows else None


async def task_logs(ch: ClickHouse, tenant: str, task_id: str) -> list[TaskLog]:
    with metrics.QUERY_SECONDS.labels("task_logs").time():
        rows = await ch.rows(TASK_LOGS, {"tenant": tenant, "task_id": task_id})
    return [TaskLog(task_id, instance, op, t, msg) for instance, op, t, msg in rows]
