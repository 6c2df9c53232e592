"""query_svc's HTTP routes: progress and the flame-graph analysis."""
from __future__ import annotations

from aiohttp import web

from proftask.core.flamegraph import build_elements
from proftask.core.progress import derive_progress, progress_json
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, query_int
from proftask.pprof.fold import GRANULARITIES
from services.query_svc import analysis_queries, progress_queries


class QueryRoutes:
    def __init__(self, svc):
        self.svc = svc  # services.query_svc.service.QueryService

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/progress", self.progress)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/analysis", self.analysis)

    async def _existing_task(self, request: web.Request) -> tuple[str, str]:
        tenant, task_id = tenant_of(request), request.match_info["taskId"]
        if not await progress_queries.task_exists(self.svc.clickhouse, tenant, task_id):
            raise ApiError(404, "NOT_FOUND", f"task {task_id} not found")
        return tenant, task_id

    async def progress(self, request: web.Request) -> web.Response:
        tenant, task_id = await self._existing_task(request)
        logs = await progress_queries.task_logs(self.svc.clickhouse, tenant, task_id)
        return web.json_response(progress_json(derive_progress(logs)))

    async def analysis(self, request: web.Request) -> web.Response:
        granularity = request.query.get("granularity") or "function"
        if granularity not in GRANULARITIES:
            raise ApiError(400, "ARGUMENT_ERROR", f"granularity must be one of {', '.join(GRANULARITIES)}")
        max_nodes = query_int(request, "maxNodes", 0, lo=0, hi=10_000_000)
        requested_type = request.query.get("sampleType") or None
        wanted = {i for i in (request.query.get("instanceIds") or "").split(",") if i}
        tenant, task_id = await self._existing_task(request)

        profiles = [p for p in await analysis_queries.latest_profiles(self.svc.clickhouse, tenant, task_id)
                    if not wanted or p.instance_id in wanted]
        sample_types: list[str] = []
        for p in profiles:
            sample_types += [t for t in p.sample_types if t not in sample_types]
        chosen = resolve_sample_type(profiles, sample_types, requested_type)
        value_index = {p.profile_id: p.sample_types.index(chosen) + 1
                       for p in profiles if chosen in p.sample_types}
        if value_index:
            nodes, root_total, root_self = await analysis_queries.node_sums(
                self.svc.clickhouse, tenant, task_id, value_index, granularity)
        else:
            nodes, root_total, root_self = [], 0, 0
        elements, truncated = build_elements(nodes, root_total, root_self, max_nodes)
        return web.json_response({"taskId": task_id, "sampleType": chosen, "sampleTypes": sample_types,
                                  "instanceIds": sorted(p.instance_id for p in profiles),
                                  "tree": {"elements": elements}, "truncated": truncated})


def resolve_sample_type(profiles, sample_types: list[str], requested: str | None) -> str | None:
    """`type/unit` or `type`; by default the first profile's default sample type (pprof's rule)."""
    if not profiles:
        return requested
    if not requested:
        first = profiles[0]
        return first.sample_types[first.default_index]
    for t in sample_types:
        if requested == t or requested == t.split("/")[0]:
            return t
    raise ApiError(400, "ARGUMENT_ERROR",
                   f"unknown sample type {requested!r}; available: {', '.join(sample_types)}",
                   sampleTypes=sample_types)
