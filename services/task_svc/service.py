"""task_svc as a component of `proftask serve`: the decider app plus the routes."""
from __future__ import annotations

from aiohttp import web

from proftask.config import Settings
from proftask.faust_app import faust_ready
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import Topics
from proftask.agent_commands import CommandDesk
from proftask.agents_view import AgentsView
from proftask.task_usecases import TaskDesk
from proftask.task_view import TaskView
from services.task_svc.decider import create_decider_app
from services.task_svc.agents_routes import AgentsRoutes
from services.task_svc.routes import TaskRoutes


class TaskService:
    name = "task_svc"

    def __init__(self, settings: Settings, topics: Topics, producer: EventProducer, view: TaskView,
                 agents: AgentsView | None = None):
        self.agents = agents  # the live agents, or None
        self.desk = TaskDesk(settings, topics, producer, view, agents)  # the task API's use cases work on it
        self.commands = CommandDesk(settings, topics, producer, view, agents)
        self.decider = create_decider_app(settings, topics)
        self._decider_started = False

    async def start(self) -> None:
        self.decider.finalize()
        await self.decider.start()
        self._decider_started = True

    async def stop(self) -> None:
        if self._decider_started:
            await self.decider.stop()

    def readiness(self) -> dict[str, bool]:
        return {"task_svc.decider": faust_ready(self.decider, self._decider_started)}

    def add_routes(self, app: web.Application) -> None:
        TaskRoutes(self.desk, self.commands).add_to(app)
        if self.agents is not None:
            AgentsRoutes(self.agents).add_to(app)
