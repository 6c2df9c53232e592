"""ingest_svc's HTTP routes for agents: profile uploads and error reports."""
from __future__ import annotations

from aiohttp import web

from proftask import events, metrics
from proftask.core.tasks import Task
from proftask.events.v1 import events_pb2 as pb
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, query_str, read_json
from proftask.kafka.topics import task_key
from proftask.pprof.decode import ProfileError, ProfileTooLarge
from services.ingest_svc.upload import UploadTooLarge, check_profile, profile_id, receive_body

MAX_AGENT_MESSAGE = 16 * 1024  # characters kept of an agent's error message
MAX_IDEMPOTENCY_KEY = 256


def _field(body: dict, name: str, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ApiError(400, "ARGUMENT_ERROR", f"{name} must be a non-empty string")
    return value


def task_for_agent(view, tenant: str, task_id: str, service: str, instance: str) -> Task:
    """The task an agent reports on: 404 when unknown, 409 when the instance is not in it."""
    if not view.caught_up.is_set():
        raise ApiError(503, "UNAVAILABLE", "task view is still loading the task history")
    task = view.get(tenant, task_id)
    if task is None:
        raise ApiError(404, "NOT_FOUND", f"task {task_id} not found")
    if service and service != task.spec.service_id:
        raise ApiError(409, "CONFLICT", f"task {task_id} belongs to service {task.spec.service_id!r}, not {service!r}")
    if instance not in task.spec.service_instance_ids:
        raise ApiError(409, "CONFLICT", f"instance {instance!r} is not an instance of task {task_id}")
    return task


class IngestRoutes:
    def __init__(self, svc):
        self.svc = svc  # services.ingest_svc.service.IngestService

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/pprof/agent/profiles", self.upload_profile)
        app.router.add_post("/api/v1/pprof/agent/errors", self.agent_error)

    async def _record_failure(self, tenant: str, task_id: str, instance: str,
                              reason: pb.TaskFailedOnInstance.Reason, message: str) -> None:
        event = events.new_event(tenant, pb.TaskFailedOnInstance(task_id=task_id, instance_id=instance,
                                                                 reason=reason, message=message))
        await self.svc.producer.send(self.svc.topics.task_events, task_key(tenant, task_id), event)

    async def upload_profile(self, request: web.Request) -> web.Response:
        settings = self.svc.settings
        task_id = query_str(request, "taskId")
        service = query_str(request, "service", required=False)
        instance = query_str(request, "serviceInstance")
        idempotency_key = request.headers.get("Idempotency-Key", "")
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ApiError(400, "ARGUMENT_ERROR", f"Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters")
        tenant = tenant_of(request)
        task_for_agent(self.svc.view, tenant, task_id, service, instance)
        try:
            body = await receive_body(request, settings.pprof_max_size, settings.memory_parser_enabled)
            await self.svc.cpu.run(check_profile, body, settings.decompressed_max_size)
        except (UploadTooLarge, ProfileTooLarge) as e:
            await self._record_failure(tenant, task_id, instance, pb.TaskFailedOnInstance.PROFILE_TOO_LARGE, str(e))
            raise ApiError(413, "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR", str(e)) from None
        except ProfileError as e:
            await self._record_failure(tenant, task_id, instance, pb.TaskFailedOnInstance.INVALID_PROFILE,
                                       f"invalid profile: {e}")
            raise ApiError(400, "INVALID_PROFILE", f"invalid profile: {e}") from None
        pid = profile_id(tenant, task_id, instance, idempotency_key, body)
        if self.svc.view.profile_stored(tenant, pid):
            return web.json_response({"code": "SUCCESS", "profileId": pid, "duplicate": True,
                                      "errorReason": None}, status=202)
        event = events.new_event(tenant, pb.ProfileUploaded(task_id=task_id, instance_id=instance, profile_id=pid,
                                                            content=body, idempotency_key=idempotency_key,
                                                            size=len(body)))
        await self.svc.producer.send(self.svc.topics.profiles, task_key(tenant, task_id), event)
        metrics.INGEST_BYTES.inc(len(body))
        return web.json_response({"code": "SUCCESS", "profileId": pid, "duplicate": False,
                                  "errorReason": None}, status=202)

    async def agent_error(self, request: web.Request) -> web.Response:
        body = await read_json(request, self.svc.settings.max_json_body)
        if not isinstance(body, dict):
            raise ApiError(400, "ARGUMENT_ERROR", "request body must be a JSON object")
        task_id = _field(body, "taskId")
        service = _field(body, "service", required=False)
        instance = _field(body, "serviceInstance")
        message = _field(body, "message", required=False)
        if len(message) > MAX_AGENT_MESSAGE:
            message = message[:MAX_AGENT_MESSAGE] + "… (truncated)"
        tenant = tenant_of(request)
        task_for_agent(self.svc.view, tenant, task_id, service, instance)
        await self._record_failure(tenant, task_id, instance, pb.TaskFailedOnInstance.AGENT_ERROR,
                                   message or "the agent reported an error without a message")
        return web.json_response({"code": "SUCCESS", "errorReason": None}, status=202)
