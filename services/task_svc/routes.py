"""task_svc's HTTP routes: the task API (operators) and the commands route (agents). What the
task API does is proftask/task_usecases.py (shared with GraphQL); its answers' shapes are in
views.py."""
from __future__ import annotations

import uuid

from aiohttp import web

from proftask import task_usecases as usecases
from proftask.agent_commands import CommandDesk
from proftask.core.echo import echo
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, query_int, query_str, read_json
from proftask.task_usecases import TaskDesk
from services.task_svc import views

MAX_LONG_POLL_S = 30
DEFAULT_LIST_LIMIT = 200
MAX_LIST_LIMIT = 10_000


class TaskRoutes:
    def __init__(self, desk: TaskDesk, commands: CommandDesk):
        self.desk = desk
        self.commands = commands
        self.grace_ms = desk.settings.task_grace_ms

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/pprof/tasks", self.create_task)
        app.router.add_get("/api/v1/pprof/tasks", self.list_tasks)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}", self.get_task)
        app.router.add_get("/api/v1/pprof/agent/commands", self.agent_commands)

    async def create_task(self, request: web.Request) -> web.Response:
        body = await read_json(request, self.desk.settings.max_json_body)
        status, answer = await usecases.create_task(self.desk, tenant_of(request), body)
        return views.created(status, answer)

    async def list_tasks(self, request: web.Request) -> web.Response:
        service_id = query_str(request, "serviceId", required=False)
        start = query_int(request, "startTime")
        end = query_int(request, "endTime")
        limit = query_int(request, "limit", DEFAULT_LIST_LIMIT, lo=1, hi=MAX_LIST_LIMIT)
        found = usecases.list_tasks(usecases.ready_view(self.desk), tenant_of(request), service_id, start, end, limit)
        return views.tasks(found, self.grace_ms)

    async def get_task(self, request: web.Request) -> web.Response:
        task = await usecases.ready_view(self.desk).find(tenant_of(request), request.match_info["taskId"])
        if task is None:
            raise ApiError(404, "NOT_FOUND", f"task {echo(request.match_info['taskId'])} not found")
        return views.task(task, self.grace_ms)

    async def agent_commands(self, request: web.Request) -> web.Response:
        service = query_str(request, "service")
        instance = query_str(request, "serviceInstance")
        last_command_time = query_int(request, "lastCommandTime", 0)
        wait_s = query_int(request, "wait", 0, lo=0, hi=MAX_LONG_POLL_S)
        task = await self.commands.next_task(tenant_of(request), service, instance, last_command_time, wait_s)
        return views.commands(task, str(uuid.uuid4()))
