"""query_svc as a component of `proftask serve`."""
from __future__ import annotations

from aiohttp import web

from proftask.clickhouse.client import ClickHouse
from services.query_svc.routes import QueryRoutes


class QueryService:
    name = "query_svc"

    def __init__(self, clickhouse: ClickHouse):
        self.clickhouse = clickhouse

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def readiness(self) -> dict[str, bool]:
        return {}

    def add_routes(self, app: web.Application) -> None:
        QueryRoutes(self).add_to(app)
