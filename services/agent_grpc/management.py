"""SkyWalking's ManagementService: an agent's registration and heartbeat (`keepAlive`, every 20 s
from skywalking-go) mark its instance live; both answer with no commands."""
from __future__ import annotations

import grpc

from proftask.skywalking.common.v3 import Command_pb2
from proftask.skywalking.management.v3 import Management_pb2, Management_pb2_grpc
from services.agent_grpc.pprof_task import agent_names_refusal


class ManagementServicer(Management_pb2_grpc.ManagementServiceServicer):
    def __init__(self, pprof_servicer, agents):
        # Who calls is decided as for the pprof calls (tokens, tenant listeners).
        self.pprof, self.agents = pprof_servicer, agents

    async def _seen(self, service: str, instance: str, context: grpc.aio.ServicerContext) -> Command_pb2.Commands:
        tenant = await self.pprof._tenant(context)
        refusal = agent_names_refusal(service, instance)
        if refusal is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal)
        if self.agents is not None:
            self.agents.seen(tenant, service, instance, "keepAlive")
        return Command_pb2.Commands()

    async def keepAlive(self, request: Management_pb2.InstancePingPkg, context) -> Command_pb2.Commands:
        return await self._seen(request.service, request.serviceInstance, context)

    async def reportInstanceProperties(self, request: Management_pb2.InstanceProperties, context):
        return await self._seen(request.service, request.serviceInstance, context)
