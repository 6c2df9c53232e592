"""task_svc's answers as HTTP sees them: every JSON shape of its routes (the task API, the
agents' commands, the live agents), in one place."""
from __future__ import annotations

from collections.abc import Iterable

from aiohttp import web

from proftask.agents_view import LiveAgent
from proftask.core.commands import COMMAND_NAME, command_args
from proftask.core.tasks import Task, deliverable_until


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


def created(status: int, answer: dict) -> web.Response:
    """A creation request's answer as the use case gave it (proftask.task_usecases.create_task):
    201 with the id and warnings, 400 or 409 with the reason."""
    return web.json_response(answer, status=status)


def tasks(found: Iterable[Task], grace_ms: int) -> web.Response:
    return web.json_response({"tasks": [task_json(t, grace_ms) for t in found]})


def task(found: Task, grace_ms: int) -> web.Response:
    return web.json_response(task_json(found, grace_ms))


def command_json(task: Task, serial_number: str) -> dict:
    """SkyWalking's PprofTaskQuery command, its six args in order (proftask.core.commands)."""
    return {
        "command": COMMAND_NAME,
        "args": [{"key": k, "value": v} for k, v in command_args(task, serial_number)],
    }


def commands(task: Task | None, serial_number: str) -> web.Response:
    """The commands an agent's poll gets: the task's, or none."""
    return web.json_response({"commands": [command_json(task, serial_number)] if task is not None else []})


def agent_json(agent: LiveAgent) -> dict:
    return {"service": agent.service, "instance": agent.instance, "firstSeen": agent.first_seen,
            "lastSeen": agent.last_seen, "via": agent.via}


def services(by_service: Iterable[tuple[str, list[LiveAgent]]]) -> web.Response:
    """The services whose agents poll: how many instances, first and last seen of any."""
    return web.json_response({"services": [
        {"service": service, "instances": len(agents), "firstSeen": min(a.first_seen for a in agents),
         "lastSeen": max(a.last_seen for a in agents)}
        for service, agents in by_service]})


def instances(service: str, agents: Iterable[LiveAgent]) -> web.Response:
    return web.json_response({"service": service, "instances": [agent_json(a) for a in agents]})
