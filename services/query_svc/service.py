"""query_svc as a component of `proftask serve`: the analysis use case over one ClickHouse
client, one task view and one cache, and the routes given each of them."""
from __future__ import annotations


from aiohttp import web

from proftask.clickhouse.client import ClickHouse
from proftask.core.flamegraph import warm_up
from proftask.http.app import RoutesComponent
from proftask.task_view import TaskView
from proftask.analysis.answer_threads import off_loop
from services.query_svc.analysis import Analyses
from services.query_svc.analysis_cache import AnalysisCache
from services.query_svc.routes import QueryRoutes


class QueryService(RoutesComponent):
    name = "query_svc"

    def __init__(self, clickhouse: ClickHouse, tasks: TaskView | None = None):
        self.clickhouse = clickhouse
        self.tasks = tasks  # the Kafka truth for tasks ClickHouse has no row of yet
        self.analyses = Analyses(clickhouse, tasks, AnalysisCache())

    async def start(self) -> None:
        await off_loop(warm_up)  # the first tree rendered does not load the kernels

    def add_routes(self, app: web.Application) -> None:
        QueryRoutes(self.clickhouse, self.tasks, self.analyses).add_to(app)
