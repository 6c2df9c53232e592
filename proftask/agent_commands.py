"""Handing commands to polling agents, whatever carried the poll (the HTTP route or SkyWalking's
gRPC protocol): pick the task (proftask.core.commands), record NOTIFIED on first delivery."""
from __future__ import annotations

import time

from proftask import events
from proftask.config import Settings
from proftask.core.commands import select_task_for_instance
from proftask.core.tasks import Task
from proftask.errors import Unavailable
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import Topics, task_key
from proftask.task_view import TaskView


class CommandDesk:
    def __init__(self, settings: Settings, topics: Topics, producer: EventProducer, view: TaskView,
                 agents=None, via: str = "http"):
        self.settings, self.topics, self.producer, self.view = settings, topics, producer, view
        self.agents, self.via = agents, via  # proftask.agents_view.AgentsView: who polls

    async def next_task(self, tenant: str, service: str, instance: str, last_command_time: int,
                        wait_s: float = 0) -> Task | None:
        """The task this instance should run next, waiting up to wait_s for one to appear.
        Raises Unavailable (task history loading, Kafka unreachable): poll again."""
        view = self.view
        # ready first: a poll answered 503 while the process starts is not recorded (its producer
        # may not be started yet: a warning, and the AgentSeen lost); the agent's next poll records it
        view.require_ready()
        if self.agents is not None:
            self.agents.seen(tenant, service, instance, self.via)
        deadline = time.monotonic() + wait_s
        while True:
            task = select_task_for_instance(view.tasks_of_service(tenant, service), instance,
                                            last_command_time, events.now_ms(), self.settings.task_grace_ms,
                                            view.settled_tasks(tenant, instance))
            if task is not None:
                await self._notify_once(tenant, task, instance)
                return task
            remaining = deadline - time.monotonic()
            if remaining <= 0 or view.waits_ended:  # ended: the process is stopping
                return None
            await view.wait_for_change(remaining)

    async def _notify_once(self, tenant: str, task: Task, instance: str) -> None:
        """NOTIFIED is recorded on the first delivery to an instance, before the agent gets the
        command; if it cannot be recorded the agent gets no command and polls again."""
        view = self.view
        if not view.claim_notification(tenant, task.task_id, instance):
            return
        try:
            event = events.new_event(tenant, pb.InstanceNotified(task_id=task.task_id, instance_id=instance))
            await self.producer.send(self.topics.task_events, task_key(tenant, task.task_id), event)
        except Exception as e:
            view.release_notification(tenant, task.task_id, instance)
            raise Unavailable(f"could not record the delivery: {e}") from None
