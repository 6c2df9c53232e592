"""query_svc's HTTP routes: progress, the flame-graph analysis, diffs, exports, and the web UI."""
from __future__ import annotations

import asyncio
import json
import pathlib

import numpy as np
from aiohttp import web

from proftask.core.exports import to_folded, to_speedscope
from proftask.core.diff import diff_columns, diff_elements_json
from proftask.core.echo import echo
from proftask.core.flamegraph import NodeColumns, UnknownFocus, focus_rows, focused, preorder, render_elements
from proftask.core.progress import derive_progress, progress_json
from proftask.core.spread import instance_spread
from proftask.core.top import sort_rows, top_json
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, query_bool, query_int
from proftask.pprof.encode import encode_profile
from services.query_svc import analysis_queries, progress_queries
from services.query_svc.selection import Selection, parse_granularity, parse_instance_ids, require_task, select

EXPORT_FORMATS = ("pprof", "folded", "speedscope")
UI_DIR = pathlib.Path(__file__).resolve().parent / "ui"
UI_VIEWS = ("/ui", "/ui/tasks", "/ui/tasks/{taskId}", "/ui/diff")
MAX_STATS_NODES = 20_000  # instanceStats looks each kept node up per instance


MAX_FOCUS_DEPTH = 20_000


def parse_focus(raw: str | None) -> tuple[str, ...] | None:
    """`focus`: a JSON array of frame names, the path from the root's child to the node."""
    if raw is None or raw == "":
        return None
    try:
        path = json.loads(raw)
    except ValueError:
        path = None
    if not isinstance(path, list) or not all(isinstance(p, str) for p in path) or len(path) > MAX_FOCUS_DEPTH:
        raise ApiError(400, "ARGUMENT_ERROR", f"focus must be a JSON array of at most {MAX_FOCUS_DEPTH} frame names "
                       f"(the path from the root's child down), got {echo(raw)}")
    return tuple(path)


def with_tree(head: dict, elements_json: str) -> bytes:
    """`head` with "tree": {"elements": …} added; the elements are JSON text already (a merged
    tree is too large to go through json.dumps as objects)."""
    return (json.dumps(head)[:-1] + ', "tree": {"elements": ' + elements_json + "}}").encode()


class QueryRoutes:
    def __init__(self, svc):
        self.svc = svc  # services.query_svc.service.QueryService

    def add_to(self, app: web.Application) -> None:
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/progress", self.progress)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/analysis", self.analysis)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/top", self.top)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}/export", self.export)
        app.router.add_get("/api/v1/pprof/diff", self.diff)
        app.router.add_get("/", self.index)
        for view in UI_VIEWS:  # every view has a URL that opens it (DESIGN §4c); app.js routes it
            app.router.add_get(view, self.index)
        app.router.add_static("/ui/", UI_DIR)

    async def index(self, _: web.Request) -> web.FileResponse:
        # Nothing from the server is ever parsed as HTML by the UI; the policy makes sure.
        return web.FileResponse(UI_DIR / "index.html", headers={
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
            "Cache-Control": "no-cache"})

    async def _selection(self, request: web.Request) -> Selection:
        return await select(self.svc.clickhouse, self.svc.tasks, tenant_of(request), request.match_info["taskId"],
                            parse_instance_ids(request.query.get("instanceIds")),
                            request.query.get("sampleType") or None,
                            parse_granularity(request.query.get("granularity")))

    async def progress(self, request: web.Request) -> web.Response:
        tenant, task_id = tenant_of(request), request.match_info["taskId"]
        await require_task(self.svc.clickhouse, self.svc.tasks, tenant, task_id)
        logs = await progress_queries.task_logs(self.svc.clickhouse, tenant, task_id)
        return web.json_response(progress_json(derive_progress(logs)))

    async def _columns(self, sel: Selection) -> NodeColumns:
        if not sel.value_index:
            return NodeColumns.empty()
        return await analysis_queries.node_columns(self.svc.clickhouse, sel.tenant, sel.task_id,
                                                   sel.value_index, sel.granularity)

    async def analysis(self, request: web.Request) -> web.Response:
        max_nodes = query_int(request, "maxNodes", 0, lo=0, hi=10_000_000)
        with_stats = query_bool(request, "instanceStats")
        focus = parse_focus(request.query.get("focus"))
        sel = await self._selection(request)
        key = (sel.tenant, sel.task_id, tuple(sorted(sel.value_index.items())), sel.sample_type,
               sel.granularity, max_nodes, with_stats, focus)
        body = self.svc.cache.get(key)
        if body is None:
            heaviest = None
            if max_nodes and focus is None and sel.value_index:  # the cut tree: only its nodes are read
                heaviest = await analysis_queries.heaviest_node_columns(
                    self.svc.clickhouse, sel.tenant, sel.task_id, sel.value_index, sel.granularity, max_nodes)
            columns, node_count = heaviest if heaviest is not None else (await self._columns(sel), None)
            if focus is not None:
                try:
                    columns = focused(columns, await asyncio.to_thread(focus_rows, columns, list(focus)))
                except UnknownFocus as e:
                    raise ApiError(400, "ARGUMENT_ERROR", str(e)) from None
            # maxNodes counts inside a focus: the root and the ancestors on its path come on top
            kept = max_nodes + len(focus) if max_nodes and focus else max_nodes
            ordered, parent_pos, truncated = await asyncio.to_thread(preorder, columns, kept)
            if node_count is not None:  # the nodes the query left out were dropped too
                truncated = node_count - len(ordered)
            head = {"taskId": sel.task_id, "sampleType": sel.sample_type, "sampleTypes": sel.sample_types,
                    "instanceIds": sel.instance_ids, "truncated": truncated}
            if focus is not None:
                head["focus"] = list(focus)
            extra = None
            if with_stats:
                extra, head["instanceCount"] = await self._instance_stats(sel, columns.node[ordered])
            elements = await asyncio.to_thread(render_elements, columns, ordered, parent_pos, extra)
            body = with_tree(head, elements)
            self.svc.cache.put(key, body)
        return web.Response(body=body, content_type="application/json")

    async def top(self, request: web.Request) -> web.Response:
        """pprof's -top of the whole merged profile, whatever maxNodes the tree is viewed at."""
        limit = query_int(request, "limit", 0, lo=0, hi=10_000_000)
        sel = await self._selection(request)
        key = ("top", sel.tenant, sel.task_id, tuple(sorted(sel.value_index.items())), sel.sample_type,
               sel.granularity, limit)
        body = self.svc.cache.get(key)
        if body is None:
            rows, total = ([], 0) if not sel.value_index else await analysis_queries.top_rows(
                self.svc.clickhouse, sel.tenant, sel.task_id, sel.value_index, sel.granularity)
            rows = await asyncio.to_thread(sort_rows, rows, "flat", sel.granularity)
            body = json.dumps({"taskId": sel.task_id, "sampleType": sel.sample_type, "sampleTypes": sel.sample_types,
                               "instanceIds": sel.instance_ids, "granularity": sel.granularity,
                               "total": total,
                               "rows": top_json(rows, limit)}).encode()
            self.svc.cache.put(key, body)
        return web.Response(body=body, content_type="application/json")

    async def _instance_stats(self, sel: Selection, nodes: np.ndarray) -> tuple[dict[str, np.ndarray], int]:
        if len(nodes) > MAX_STATS_NODES:
            raise ApiError(400, "ARGUMENT_ERROR", f"instanceStats covers at most {MAX_STATS_NODES} nodes; "
                           f"this tree has {len(nodes)}: set maxNodes")
        totals, roots = ([], {}) if not sel.value_index else await analysis_queries.profile_node_totals(
            self.svc.clickhouse, sel.tenant, sel.task_id, sel.value_index, sel.granularity, nodes.tolist())
        by_profile = {p.profile_id: p.instance_id for p in sel.profiles}
        spread = instance_spread(nodes, [(by_profile[p], n, t) for p, n, t in totals],
                                 {by_profile[p]: t for p, t in roots.items()})
        extra = {"instances": spread.instances, "shareMin": np.round(spread.share_min, 6),
                 "shareMax": np.round(spread.share_max, 6)}
        return extra, spread.instance_count

    async def diff(self, request: web.Request) -> web.Response:
        """Two tasks, or two instance sets of one task, as one tree with both sides' sums."""
        q = request.query
        base_id = q.get("baseTaskId")
        if not base_id:
            raise ApiError(400, "ARGUMENT_ERROR", "baseTaskId is required")
        max_nodes = query_int(request, "maxNodes", 0, lo=0, hi=10_000_000)
        granularity = parse_granularity(q.get("granularity"))
        tenant, ch, tasks = tenant_of(request), self.svc.clickhouse, self.svc.tasks
        # the tasks are arguments here, not the resource: an unknown one is a 400 naming it
        base = await select(ch, tasks, tenant, base_id, parse_instance_ids(q.get("baseInstanceIds")),
                            q.get("sampleType") or None, granularity, missing_status=400)
        compare = await select(ch, tasks, tenant, q.get("compareTaskId") or base_id,
                               parse_instance_ids(q.get("compareInstanceIds")),
                               base.sample_type or q.get("sampleType") or None, granularity, missing_status=400)
        columns = await asyncio.to_thread(diff_columns, await self._columns(base), await self._columns(compare))
        elements, _, truncated = await asyncio.to_thread(diff_elements_json, columns, max_nodes)
        head = {"sampleType": base.sample_type, "truncated": truncated,
                "base": {"taskId": base.task_id, "instanceIds": base.instance_ids, "total": columns.base_root},
                "compare": {"taskId": compare.task_id, "instanceIds": compare.instance_ids,
                            "total": columns.compare_root}}
        return web.Response(body=with_tree(head, elements), content_type="application/json")

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
        assert sel.sample_type is not None  # a selection with profiles has its sample type
        return encode_profile(first.sample_types, sel.sample_type, first.period_type, first.period, stacks)
