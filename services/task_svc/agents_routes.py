"""Live agents over REST: the services and instances whose agents poll, first and last seen."""
from __future__ import annotations

from aiohttp import web

from proftask.agents_view import AgentsView
from proftask.http.app import tenant_of
from services.task_svc import views


class AgentsRoutes:
    def __init__(self, agents: AgentsView):
        self.agents = agents

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/pprof/services", self.services)
        app.router.add_get("/api/v1/pprof/services/{service}/instances", self.instances)

    async def services(self, request: web.Request) -> web.Response:
        agents, tenant = self.agents.require_ready(), tenant_of(request)
        return views.services((service, agents.instances(tenant, service)) for service in agents.services(tenant))

    async def instances(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        agents = self.agents.require_ready().instances(tenant_of(request), service)
        return views.instances(service, agents)
