"""ingest_svc as a component of `proftask serve`."""
from __future__ import annotations

from aiohttp import web

from proftask.config import Settings
from proftask.cpu_pool import CpuPool
from proftask.http.app import RoutesComponent
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import Topics
from proftask.task_view import TaskView
from proftask.ingest.intake import ProfileIntake
from services.ingest_svc.routes import IngestRoutes


class IngestService(RoutesComponent):
    name = "ingest_svc"

    def __init__(self, settings: Settings, topics: Topics, producer: EventProducer, view: TaskView, cpu: CpuPool):
        self.intake = ProfileIntake(settings, topics, producer, view, cpu)

    def add_routes(self, app: web.Application) -> None:
        IngestRoutes(self.intake).add_to(app)

    async def stop(self) -> None:
        await self.intake.stop()  # its failure logs still being sent, before the producer stops
