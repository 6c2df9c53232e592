"""Tasks past their tenant's retention are gone from the task view (ClickHouse's TTL removed their
rows; shown, a finished task read as failed): not listed, not found, not handed to agents."""
import asyncio
import time

from proftask import events
from proftask.config import RetentionPolicy
from proftask.core.tasks import parse_task_request
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import Topics
from proftask.task_view import DAY_MS, TaskView


def _created(view: TaskView, tenant: str, task_id: str, days_ago: float) -> None:
    spec = parse_task_request({"serviceId": "shop", "serviceInstanceIds": ["pod-1"], "events": "HEAP"})
    create_time = int(time.time() * 1000 - days_ago * DAY_MS)
    view._apply(events.new_event(tenant, pb.TaskCreated(task_id=task_id, spec=events.spec_to_pb(spec),
                                                        create_time=create_time)))


def test_a_task_older_than_its_tenant_s_retention_is_not_listed_found_or_handed_out():
    view = TaskView("unused:9092", Topics.with_prefix("p."),
                    retention=RetentionPolicy(default_days=30, tenant_days=(("keeper", 0),)))
    _created(view, "acme", "old", days_ago=30.01)
    _created(view, "acme", "recent", days_ago=29.99)
    _created(view, "keeper", "old", days_ago=400)  # 0 days: kept for ever
    assert [t.task_id for t in view.all_tasks("acme")] == ["recent"]
    assert [t.task_id for t in view.tasks_of_service("acme", "shop")] == ["recent"]
    assert view.get("acme", "old") is None and view.get("acme", "recent") is not None
    # known and expired: not found at once (an unknown id would wait for the topic's end first)
    assert asyncio.run(asyncio.wait_for(view.find("acme", "old"), 1)) is None
    assert [t.task_id for t in view.all_tasks("keeper")] == ["old"]
    assert view.get("keeper", "old") is not None


def test_without_a_retention_every_task_is_kept():
    view = TaskView("unused:9092", Topics.with_prefix("p."))
    _created(view, "acme", "old", days_ago=4000)
    assert [t.task_id for t in view.all_tasks("acme")] == ["old"]
