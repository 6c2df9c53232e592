"""The agent gRPC endpoint as a component of `proftask serve` (roles `all` and `grpc`)."""
from __future__ import annotations

import asyncio
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
from proftask.skywalking.management.v3 import Management_pb2_grpc
from services.agent_grpc.management import ManagementServicer
from services.agent_grpc.pprof_task import PprofTaskServicer
from proftask.ingest.intake import ProfileIntake
from proftask.agent_commands import CommandDesk

log = logging.getLogger(__name__)

# SkyWalking's agent sends 1 MiB chunks; 4 MiB leaves room for other clients and refuses a
# single huge message before it is buffered.
MAX_MESSAGE_BYTES = 4 * 1024 * 1024
STOP_GRACE_S = 5


class AgentGrpcService:
    name = "agent_grpc"

    def __init__(self, settings: Settings, topics: Topics, producer: EventProducer, view: TaskView, cpu: CpuPool,
                 tokens: TokenTable, agents=None, *, max_connections: int):
        self.settings = settings
        # each listener's, as HTTP's (connections.within_open_files_limit): past it a connection
        # is closed at once, before it holds one of the process's files
        self.max_connections = max_connections
        commands = CommandDesk(settings, topics, producer, view, agents, via="grpc")
        self.agents = agents
        self.intake = intake = ProfileIntake(settings, topics, producer, view, cpu)
        self.servicer = PprofTaskServicer(commands, intake, tokens)
        # One server per tenant listener: a call's listener is known by the servicer that answers it.
        self.listeners = [(f"{host}:{port}", PprofTaskServicer(commands, intake, tokens, bound_tenant=tenant))
                          for tenant, host, port in settings.grpc_tenant_listeners]
        self.servers: list[grpc.aio.Server] = []

    async def start(self) -> None:
        for address, servicer in [(f"{self.settings.grpc_host}:{self.settings.grpc_port}", self.servicer),
                                  *self.listeners]:
            server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                                              ("grpc.max_allowed_incoming_connections", self.max_connections)])
            Pprof_pb2_grpc.add_PprofTaskServicer_to_server(servicer, server)
            Management_pb2_grpc.add_ManagementServiceServicer_to_server(ManagementServicer(servicer, self.agents),
                                                                        server)
            server.add_insecure_port(address)
            await server.start()
            self.servers.append(server)
            if servicer.bound_tenant is None:
                log.info("agent gRPC (skywalking.v10.PprofTask) on %s", address)
            else:
                log.info("agent gRPC on %s bound to tenant %s: calls without a token are its agents",
                         address, servicer.bound_tenant)

    async def stop(self) -> None:
        await asyncio.gather(*(server.stop(STOP_GRACE_S) for server in self.servers))
        await self.intake.stop()  # its failure logs still being sent, before the producer stops

    def readiness(self) -> dict[str, bool]:
        return {"agent_grpc": len(self.servers) == 1 + len(self.listeners)}

    def add_routes(self, app: web.Application) -> None:
        pass
