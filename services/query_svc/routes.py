"""query_svc's HTTP routes."""
from __future__ import annotations

from aiohttp import web

from proftask.core.progress import derive_progress, progress_json
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError
from services.query_svc import progress_queries


class QueryRoutes:
    def __init__(self, svc):
        self.svc = svc  # services.query_svc.service.QueryService

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/progress", self.progress)

    async def progress(self, request: web.Request) -> web.Response:
        tenant, task_id = tenant_of(request), request.match_info["taskId"]
        ch = self.svc.clickhouse
        if not await progress_queries.task_exists(ch, tenant, task_id):
            raise ApiError(404, "NOT_FOUND", f"task {task_id} not found")
        logs = await progress_queries.task_logs(ch, tenant, task_id)
        return web.json_response(progress_json(derive_progress(logs)))
