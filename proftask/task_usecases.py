"""What the task API does, whatever carries the request (REST routes, GraphQL): create a task
through the decider, list a service's tasks."""
from __future__ import annotations

import asyncio
import dataclasses
import uuid
from typing import TYPE_CHECKING

from aiokafka.errors import KafkaError

from proftask import events
from proftask.core.tasks import Task, TaskArgumentError, TaskSpec, parse_task_request
from proftask.events.v1 import events_pb2 as pb
from proftask.errors import Unavailable
from proftask.kafka.topics import service_key

if TYPE_CHECKING:
    from proftask.agents_view import AgentsView
    from proftask.config import Settings
    from proftask.kafka.producer import EventProducer
    from proftask.kafka.topics import Topics
    from proftask.task_view import TaskView


@dataclasses.dataclass
class TaskDesk:
    """What the task API works with: the task requests go to the decider through the producer,
    the task view answers, the live agents (None: not known here) warn of a task no agent waits for."""
    settings: Settings
    topics: Topics
    producer: EventProducer
    view: TaskView
    agents: AgentsView | None = None


def ready_view(desk: TaskDesk) -> TaskView:
    return desk.view.require_ready()


def missing_agents(desk: TaskDesk, tenant: str, spec: TaskSpec) -> list[str]:
    """Warnings for the service or instances no live agent polls for: the task is created all
    the same (agents may come later), but a mistyped name should not wait in silence."""
    agents = desk.agents
    if agents is None or not agents.caught_up.is_set():
        return []
    if not agents.instances(tenant, spec.service_id):
        return [f"no live agent of service {spec.service_id!r} has polled proftask; the task waits for one"]
    live = {i.instance for i in agents.instances(tenant, spec.service_id)}
    absent = [i for i in spec.service_instance_ids if i not in live]
    if absent:
        return [f"no live agent for instance(s) {', '.join(repr(i) for i in absent)} of service "
                f"{spec.service_id!r}; the task waits for them"]
    return []


async def create_task(desk: TaskDesk, tenant: str, body) -> tuple[int, dict]:
    """(HTTP status, answer) of a creation request: 201 SUCCESS with the id (and `warnings`),
    400 ARGUMENT_ERROR, 409 the decider's rejection; raises Unavailable when undecided in time."""
    try:
        spec = parse_task_request(body)
    except TaskArgumentError as e:
        return 400, {"code": "ARGUMENT_ERROR", "id": None, "errorReason": str(e)}
    view = ready_view(desk)
    task_id = str(uuid.uuid4())
    decided = view.expect_decision(task_id)
    try:
        event = events.new_event(tenant, pb.TaskCreationRequested(task_id=task_id, spec=events.spec_to_pb(spec)))
        try:
            # bounded by the producer (no progress for 30 s fails it, and renews the producer);
            # not cancelled sooner: a cancelled send may still reach Kafka, unknown to anyone
            await desk.producer.send(desk.topics.task_requests, service_key(tenant, spec.service_id), event)
        except (KafkaError, TimeoutError) as e:
            raise Unavailable(f"the task could not be requested, Kafka did not take it ({type(e).__name__}: {e}); "
                              f"try again, or GET /api/v1/pprof/tasks/{task_id} to see whether it got there late",
                              id=task_id) from None
        decision = await asyncio.wait_for(decided, desk.settings.decision_timeout_s)
    except TimeoutError:
        raise Unavailable(f"task {task_id} was requested but not decided within "
                          f"{desk.settings.decision_timeout_s:.0f}s; GET /api/v1/pprof/tasks/{task_id} "
                          "tells whether it was created", id=task_id) from None
    finally:
        view.forget_decision(task_id)
    if isinstance(decision, pb.TaskCreationRejected):
        return 409, {"code": decision.code, "id": None, "errorReason": decision.reason}
    return 201, {"code": "SUCCESS", "id": task_id, "errorReason": None,
                 "warnings": missing_agents(desk, tenant, spec)}


def list_tasks(view: TaskView, tenant: str, service_id: str | None, start: int | None, end: int | None,
               limit: int) -> list[Task]:
    """Newest first."""
    tasks = view.tasks_of_service(tenant, service_id) if service_id else view.all_tasks(tenant)
    selected = [t for t in tasks
                if (start is None or t.create_time >= start) and (end is None or t.create_time <= end)]
    selected.sort(key=lambda t: (t.create_time, t.task_id), reverse=True)
    return selected[:limit]
