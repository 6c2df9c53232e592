"""Live agents over REST: the services and instances whose agents poll, first and last seen."""
from __future__ import annotations

from aiohttp import web

from proftask.http.app import tenant_of
from proftask.http.errors import ApiError


class AgentsRoutes:
    def __init__(self, agents):
        self.agents = agents  # proftask.agents_view.AgentsView

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/pprof/services", self.services)
        app.router.add_get("/api/v1/pprof/services/{service}/instances", self.instances)

    def _ready(self):
        if not self.agents.caught_up.is_set():
            raise ApiError(503, "UNAVAILABLE", "the live agents are still loading")
        return self.agents

    async def services(self, request: web.Request) -> web.Response:
        return web.json_response({"services": self._ready().service_summaries(tenant_of(request))})

    async def instances(self, request: web.Request) -> web.Response:
        service = request.match_info["service"]
        agents = self._ready().instances(tenant_of(request), service)
        return web.json_response({"service": service, "instances": [a.json() for a in agents]})
