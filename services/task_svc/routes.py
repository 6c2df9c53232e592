"""task_svc's HTTP routes: the task API (operators) and the commands route (agents)."""
from __future__ import annotations

import uuid

from aiohttp import web

from proftask.core.commands import encode_command_json
from proftask.core.echo import echo
from proftask.core.tasks import Task, deliverable_until
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, query_int, query_str, read_json
from proftask import task_usecases as usecases

MAX_LONG_POLL_S = 30
DEFAULT_LIST_LIMIT = 200
MAX_LIST_LIMIT = 10_000


def task_json(task: Task, grace_ms: int) -> dict:
    return {
        "id": task.task_id,
        "serviceId": task.spec.service_id,
        "serviceInstanceIds": list(task.spec.service_instance_ids),
        "createTime": task.create_time,
        "events": task.spec.events.name,
        "duration": task.spec.duration,
        "dumpPeriod": task.spec.dump_period,
        # when agents stop being handed the task: its status (core.progress.task_status) needs it
        "deadline": deliverable_until(task, grace_ms),
    }


class TaskRoutes:
    def __init__(self, svc):
        self.svc = svc  # services.task_svc.service.TaskService

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/pprof/tasks", self.create_task)
        app.router.add_get("/api/v1/pprof/tasks", self.list_tasks)
        app.router.add_get("/api/v1/pprof/tasks/{taskId}", self.get_task)
        app.router.add_get("/api/v1/pprof/agent/commands", self.agent_commands)

    def _view(self):
        return usecases.ready_view(self.svc)

    async def create_task(self, request: web.Request) -> web.Response:
        body = await read_json(request, self.svc.settings.max_json_body)
        status, answer = await usecases.create_task(self.svc, tenant_of(request), body)
        return web.json_response(answer, status=status)

    async def list_tasks(self, request: web.Request) -> web.Response:
        service_id = query_str(request, "serviceId", required=False)
        start = query_int(request, "startTime")
        end = query_int(request, "endTime")
        limit = query_int(request, "limit", DEFAULT_LIST_LIMIT, lo=1, hi=MAX_LIST_LIMIT)
        tasks = usecases.list_tasks(self._view(), tenant_of(request), service_id, start, end, limit)
        return web.json_response({"tasks": [task_json(t, self.svc.settings.task_grace_ms) for t in tasks]})

    async def get_task(self, request: web.Request) -> web.Response:
        task = await self._view().find(tenant_of(request), request.match_info["taskId"])
        if task is None:
            raise ApiError(404, "NOT_FOUND", f"task {echo(request.match_info['taskId'])} not found")
        return web.json_response(task_json(task, self.svc.settings.task_grace_ms))

    async def agent_commands(self, request: web.Request) -> web.Response:
        service = query_str(request, "service")
        instance = query_str(request, "serviceInstance")
        last_command_time = query_int(request, "lastCommandTime", 0)
        wait_s = query_int(request, "wait", 0, lo=0, hi=MAX_LONG_POLL_S)
        task = await self.svc.commands.next_task(tenant_of(request), service, instance,
                                                 last_command_time, wait_s)
        if task is None:
            return web.json_response({"commands": []})
        return web.json_response({"commands": [encode_command_json(task, str(uuid.uuid4()))]})
