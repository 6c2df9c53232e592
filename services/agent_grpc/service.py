"""The agent gRPC endpoint as a component of `proftask serve` (roles `all` and `grpc`)."""
from __future__ import annotations

import logging

import grpc
from aiohttp import web

from proftask.auth import TokenTable
from proftask.config import Settings
from proftask.cpu_pool import CpuPool
from proftask.kafka.producer import EventProducer
from proftask.kafka.topics import Topics
from proftask.skywalking.pprof.v10 import Pprof_pb2_grpc
from proftask.task_view import TaskView
from services.agent_grpc.pprof_task import PprofTaskServicer
from services.ingest_svc.intake import ProfileIntake
from services.task_svc.commands import CommandDesk

log = logging.getLogger(__name__)

# SkyWalking's agent sends 1 MiB chunks; 4 MiB leaves room for other clients and refuses a
# single huge message before it is buffered.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
STOP_GRACE_S = 5


class AgentGrpcService:
    name = "agent_grpc"

    def __init__(self, settings: Settings, topics: Topics, producer: EventProducer, view: TaskView, cpu: CpuPool,
                 tokens: TokenTable):
        self.settings = settings
        self.servicer = PprofTaskServicer(CommandDesk(settings, topics, producer, view),
                                          ProfileIntake(settings, topics, producer, view, cpu), tokens)
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
        Pprof_pb2_grpc.add_PprofTaskServicer_to_server(self.servicer, server)
        address = f"{self.settings.grpc_host}:{self.settings.grpc_port}"
        server.add_insecure_port(address)
        await server.start()
        self.server = server
        log.info("agent gRPC (skywalking.v10.PprofTask) on %s", address)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.stop(STOP_GRACE_S)

    def readiness(self) -> dict[str, bool]:
        return {"agent_grpc": self.server is not None}

    def add_routes(self, app: web.Application) -> None:
        pass
