"""query_svc's HTTP routes: progress, the flame-graph analysis and its exports."""
from __future__ import annotations

import asyncio
import dataclasses
import json

from aiohttp import web

from proftask.core.exports import to_folded, to_speedscope
from proftask.core.flamegraph import NodeColumns, elements_json
from proftask.core.progress import derive_progress, progress_json
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, query_int
from proftask.pprof.encode import encode_profile
from proftask.pprof.fold import GRANULARITIES
from services.query_svc import analysis_queries, progress_queries
from services.query_svc.analysis_queries import StoredProfile

EXPORT_FORMATS = ("pprof", "folded", "speedscope")


@dataclasses.dataclass
class Selection:
    """What a request asks to analyse: the task's newest profile per chosen instance, a sample
    type and a granularity (the same filters for analysis and export)."""
    tenant: str
    task_id: str
    profiles: list[StoredProfile]
    sample_types: list[str]
    sample_type: str | None
    granularity: str

    @property
    def value_index(self) -> dict[str, int]:
        """profile id → 1-based position of the chosen sample type in its values."""
        return {p.profile_id: p.sample_types.index(self.sample_type) + 1
                for p in self.profiles if self.sample_type in p.sample_types}


class QueryRoutes:
    def __init__(self, svc):
        self.svc = svc  # services.query_svc.service.QueryService

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/progress", self.progress)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/analysis", self.analysis)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/export", self.export)

    async def _existing_task(self, request: web.Request) -> tuple[str, str]:
        tenant, task_id = tenant_of(request), request.match_info["taskId"]
        if not await progress_queries.task_exists(self.svc.clickhouse, tenant, task_id):
            raise ApiError(404, "NOT_FOUND", f"task {task_id} not found")
        return tenant, task_id

    async def _selection(self, request: web.Request) -> Selection:
        granularity = request.query.get("granularity") or "function"
        if granularity not in GRANULARITIES:
            raise ApiError(400, "ARGUMENT_ERROR", f"granularity must be one of {', '.join(GRANULARITIES)}")
        wanted = {i for i in (request.query.get("instanceIds") or "").split(",") if i}
        tenant, task_id = await self._existing_task(request)
        profiles = [p for p in await analysis_queries.latest_profiles(self.svc.clickhouse, tenant, task_id)
                    if not wanted or p.instance_id in wanted]
        sample_types: list[str] = []
        for p in profiles:
            sample_types += [t for t in p.sample_types if t not in sample_types]
        chosen = resolve_sample_type(profiles, sample_types, request.query.get("sampleType") or None)
        return Selection(tenant, task_id, profiles, sample_types, chosen, granularity)

    async def progress(self, request: web.Request) -> web.Response:
        tenant, task_id = await self._existing_task(request)
        logs = await progress_queries.task_logs(self.svc.clickhouse, tenant, task_id)
        return web.json_response(progress_json(derive_progress(logs)))

    async def analysis(self, request: web.Request) -> web.Response:
        max_nodes = query_int(request, "maxNodes", 0, lo=0, hi=10_000_000)
        sel = await self._selection(request)
        key = (sel.tenant, sel.task_id, tuple(sorted(sel.value_index.items())), sel.sample_type,
               sel.granularity, max_nodes)
        body = self.svc.cache.get(key)
        if body is None:
            columns = NodeColumns.empty()
            if sel.value_index:
                columns = await analysis_queries.node_columns(self.svc.clickhouse, sel.tenant, sel.task_id,
                                                              sel.value_index, sel.granularity)
            elements, _, truncated = await asyncio.to_thread(elements_json, columns, max_nodes)
            head = json.dumps({"taskId": sel.task_id, "sampleType": sel.sample_type,
                               "sampleTypes": sel.sample_types,
                               "instanceIds": sorted(p.instance_id for p in sel.profiles),
                               "truncated": truncated})
            body = (head[:-1] + ', "tree": {"elements": ' + elements + "}}").encode()
            self.svc.cache.put(key, body)
        return web.Response(body=body, content_type="application/json")

    async def export(self, request: web.Request) -> web.Response:
        fmt = request.query.get("format") or "pprof"
        if fmt not in EXPORT_FORMATS:
            raise ApiError(400, "ARGUMENT_ERROR", f"format must be one of {', '.join(EXPORT_FORMATS)}")
        sel = await self._selection(request)
        ch = self.svc.clickhouse
        filename = f"proftask-{sel.task_id}"
        if fmt == "pprof":
            body = await self._pprof(sel)
            return web.Response(body=body, content_type="application/octet-stream",
                                headers={"Content-Disposition": f'attachment; filename="{filename}.pb.gz"'})
        stacks = (await analysis_queries.stacks(ch, sel.tenant, sel.task_id, sel.value_index, sel.granularity)
                  if sel.value_index else [])
        if fmt == "folded":
            return web.Response(text=to_folded(stacks), content_type="text/plain",
                                headers={"Content-Disposition": f'attachment; filename="{filename}.folded"'})
        doc = to_speedscope(f"proftask task {sel.task_id}", sel.sample_type or "", stacks)
        return web.Response(text=json.dumps(doc), content_type="application/json",
                            headers={"Content-Disposition": f'attachment; filename="{filename}.speedscope.json"'})

    async def _pprof(self, sel: Selection) -> bytes:
        """A merged profile with every sample type; pprof merges only profiles whose sample
        types agree, and so does this."""
        if not sel.profiles:
            return encode_profile([sel.sample_type or "samples/count"], sel.sample_type or "", "", 0, [])
        first = sel.profiles[0]
        if any(p.sample_types != first.sample_types for p in sel.profiles):
            raise ApiError(409, "MIXED_SAMPLE_TYPES", "the chosen instances have different sample types "
                           "and cannot be merged into one pprof; choose them with instanceIds")
        stacks = await analysis_queries.stacks_all_values(self.svc.clickhouse, sel.tenant, sel.task_id,
                                                          [p.profile_id for p in sel.profiles])
        return encode_profile(first.sample_types, sel.sample_type, first.period_type, first.period, stacks)


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
