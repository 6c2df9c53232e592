"""query_svc's HTTP routes: progress, the flame-graph analysis, diffs, exports, and the web UI.
Each parses its parameters, asks the use case (analysis.py) or the queries, and answers
through views.py, where every response's shape is."""
from __future__ import annotations

import json
import pathlib
from typing import TYPE_CHECKING

from aiohttp import web

from proftask.clickhouse.client import ClickHouse
from proftask.core.diff import diff_columns, diff_elements_json
from proftask.core.echo import echo
from proftask.core.merged_sample_types import SampleTypesDisagree, merged_sample_types
from proftask.core.progress import derive_progress
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, query_bool, query_int
from proftask.pprof.encode import Timing, encode_profile
from proftask.analysis import analysis_queries, progress_queries
from proftask.analysis.answer_threads import off_loop
from services.query_svc import views
from services.query_svc.analysis import Analyses, Question
from proftask.analysis.selection import (Selection, parse_granularity, parse_instance_ids, require_columns_fit,
                                         require_task)

if TYPE_CHECKING:
    from proftask.task_view import TaskView

EXPORT_FORMATS = ("pprof", "folded", "speedscope")
UI_DIR = pathlib.Path(__file__).resolve().parent / "ui"
# "/ui/" too: a view of its own before the static route, which answers a folder 403
UI_VIEWS = ("/ui", "/ui/", "/ui/tasks", "/ui/tasks/{taskId}", "/ui/diff")
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


def question(request: web.Request) -> Question:
    """The task, instances, sample type and granularity a request asks about."""
    return Question(tenant_of(request), request.match_info["taskId"],
                    parse_instance_ids(request.query.getall("instanceIds", ())),
                    request.query.get("sampleType") or None,
                    parse_granularity(request.query.get("granularity")))


class QueryRoutes:
    def __init__(self, clickhouse: ClickHouse, tasks: TaskView | None, analyses: Analyses):
        self.clickhouse = clickhouse
        self.tasks = tasks  # the Kafka truth for tasks ClickHouse has no row of yet
        self.analyses = analyses

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
        return views.ui_index(UI_DIR / "index.html")

    async def progress(self, request: web.Request) -> web.Response:
        tenant, task_id = tenant_of(request), request.match_info["taskId"]
        await require_task(self.clickhouse, self.tasks, tenant, task_id)
        logs = await progress_queries.task_logs(self.clickhouse, tenant, task_id)
        return views.progress(derive_progress(logs))

    async def analysis(self, request: web.Request) -> web.Response:
        max_nodes = query_int(request, "maxNodes", 0, lo=0, hi=10_000_000)
        with_stats = query_bool(request, "instanceStats")
        focus = parse_focus(request.query.get("focus"))
        return views.json_body(await self.analyses.tree(question(request), max_nodes, with_stats, focus))

    async def top(self, request: web.Request) -> web.Response:
        """pprof's -top of the whole merged profile, whatever maxNodes the tree is viewed at."""
        limit = query_int(request, "limit", 0, lo=0, hi=10_000_000)
        return views.json_body(await self.analyses.top(question(request), limit))

    async def diff(self, request: web.Request) -> web.Response:
        """Two tasks, or two instance sets of one task, as one tree with both sides' sums."""
        q = request.query
        base_id = q.get("baseTaskId")
        if not base_id:
            raise ApiError(400, "ARGUMENT_ERROR", "baseTaskId is required")
        max_nodes = query_int(request, "maxNodes", 0, lo=0, hi=10_000_000)
        granularity = parse_granularity(q.get("granularity"))
        tenant = tenant_of(request)
        # the tasks are arguments here, not the resource: an unknown one is a 400 naming it
        base = await self.analyses.select(Question(tenant, base_id, parse_instance_ids(q.getall("baseInstanceIds", ())),
                                                   q.get("sampleType") or None, granularity), missing_status=400)
        compare = await self.analyses.select(Question(
            tenant, q.get("compareTaskId") or base_id, parse_instance_ids(q.getall("compareInstanceIds", ())),
            base.sample_type or q.get("sampleType") or None, granularity), missing_status=400)
        columns = await off_loop(diff_columns, await self.analyses.columns(base),
                                          await self.analyses.columns(compare))
        elements, _, truncated = await off_loop(diff_elements_json, columns, max_nodes)
        return views.json_body(await off_loop(views.diff_body, base, compare, columns, truncated, elements))

    async def export(self, request: web.Request) -> web.Response:
        fmt = request.query.get("format") or "pprof"
        if fmt not in EXPORT_FORMATS:
            raise ApiError(400, "ARGUMENT_ERROR", f"format must be one of {', '.join(EXPORT_FORMATS)}")
        sel = await self.analyses.select(question(request))
        if fmt == "pprof":
            return views.pprof_download(sel.task_id, await self._pprof(sel))
        stacks = (await analysis_queries.stacks(self.clickhouse, sel.tenant, sel.task_id, sel.value_index,
                                                sel.granularity)
                  if sel.value_index else [])
        if fmt == "folded":
            return views.folded_download(sel.task_id, await off_loop(views.folded_body, stacks))
        return views.speedscope_download(sel.task_id, await off_loop(
            views.speedscope_body, sel.task_id, sel.sample_type, stacks))

    async def _pprof(self, sel: Selection) -> bytes:
        """A merged profile with the sample types every chosen profile has, as pprof merges them
        (core.merged_sample_types)."""
        if not sel.profiles:
            return await off_loop(encode_profile, [sel.sample_type or "samples/count"],
                                           sel.sample_type or "", "", 0, [])
        try:
            sample_types, columns = merged_sample_types([p.sample_types for p in sel.profiles])
        except SampleTypesDisagree as e:
            raise ApiError(409, "MIXED_SAMPLE_TYPES", str(e)) from None
        require_columns_fit(sel.profiles, sample_types, columns)  # a pprof file sums each sample type
        whole = all(p.sample_types == sample_types for p in sel.profiles)  # each profile's values as they are
        stacks, files = await analysis_queries.stacks_all_values(self.clickhouse, sel.tenant, sel.task_id,
                                                                 [p.profile_id for p in sel.profiles],
                                                                 None if whole else columns)
        assert sel.sample_type is not None  # a selection with profiles has its sample type
        # pprof's default: the chosen type where the merge keeps it, else the merge's first
        default = sel.sample_type if sel.sample_type in sample_types else sample_types[0]
        timing = Timing.merged(p.timing for p in sel.profiles)
        return await off_loop(encode_profile, sample_types, default, sel.profiles[0].period_type, timing.period,
                              stacks, files=files, time_nanos=timing.time_nanos, duration_nanos=timing.duration_nanos)
