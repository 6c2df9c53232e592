"""ingest_svc's HTTP routes for agents: profile uploads and error reports. What a report does
is in proftask/ingest/intake.py, shared with the SkyWalking gRPC protocol; its refusals become
HTTP answers in proftask/http/errors.py, its other answers' shapes are in views.py."""
from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import HttpVersion11, web
from aiohttp.http_exceptions import ContentLengthError, TransferEncodingError

from proftask import metrics
from proftask.core.echo import echo
from proftask.http.app import tenant_of
from proftask.http.errors import ApiError, error_answer, query_str, read_json
from proftask.ingest.intake import ProfileIntake
from proftask.ingest.upload import CHUNK, UploadInterrupted
from services.ingest_svc import views

MAX_IDEMPOTENCY_KEY = 256


def _field(body: dict, name: str, required: bool = True) -> str:
    value = body.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise ApiError(400, "ARGUMENT_ERROR", f"{name} must be a non-empty string, got {echo(value)}")
    return value


async def _request_body(request: web.Request) -> AsyncIterator[bytes]:
    """The body's chunks; a client that goes away mid-body is an interrupted upload (not a
    backend failure), counted as the gRPC path counts a short stream."""
    declared = request.content_length
    received = 0
    try:
        async for chunk in request.content.iter_chunked(CHUNK):
            received += len(chunk)
            yield chunk
    except (ConnectionError, ContentLengthError, TransferEncodingError):
        of = f" of {declared}" if declared is not None else ""
        raise UploadInterrupted(f"upload interrupted after {received}{of} bytes") from None
    if declared is not None and received < declared:
        raise UploadInterrupted(f"upload interrupted after {received} of {declared} bytes")


class IngestRoutes:
    def __init__(self, intake: ProfileIntake):
        self.intake = intake

    def add_to(self, app: web.Application) -> None:
        app.router.add_post("/api/v1/pprof/agent/profiles", self.upload_profile, expect_handler=self._expect_upload)
        app.router.add_post("/api/v1/pprof/agent/errors", self.agent_error)

    async def _expect_upload(self, request: web.Request) -> web.Response | None:
        """`Expect: 100-continue` (the Go agent, curl): a full budget answers 503 before the
        client sends the body, so a refusal costs no transfer (it says no more than "busy", so
        it needs no token). Otherwise continue as aiohttp does."""
        budget = self.intake.budget
        declared = request.content_length
        if declared is not None and declared <= self.intake.settings.pprof_max_size and not budget.has_room(declared):
            metrics.UPLOADS_REFUSED_BUSY.inc()
            return error_answer(budget.busy(None, declared))
        expect = request.headers.get("Expect", "")
        if request.version == HttpVersion11 and expect.lower() == "100-continue":
            await request.writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            request.writer.output_size = 0
            return None
        return views.expectation_failed(expect)

    async def upload_profile(self, request: web.Request) -> web.Response:
        task_id = query_str(request, "taskId")
        service = query_str(request, "service", required=False)
        instance = query_str(request, "serviceInstance")
        idempotency_key = request.headers.get("Idempotency-Key", "")
        if len(idempotency_key) > MAX_IDEMPOTENCY_KEY:
            raise ApiError(400, "ARGUMENT_ERROR", f"Idempotency-Key must be at most {MAX_IDEMPOTENCY_KEY} characters, "
                                                  f"got {echo(idempotency_key)}")
        tenant = tenant_of(request)
        # Refusals answer as their kind says (proftask/http/errors.py): UploadBusy and
        # UploadNotStored 503 with Retry-After (the agent sends it again), UploadTooLarge 413,
        # UploadInterrupted (logged; the client is most likely gone), InvalidProfile and
        # ProfileMisfit 400.
        task = await self.intake.task_for(tenant, task_id, service, instance)
        await self.intake.check_declared_size(tenant, task_id, instance, request.content_length, idempotency_key)
        pid, duplicate = await self.intake.accept(tenant, task, instance, _request_body(request),
                                                  idempotency_key, declared=request.content_length)
        return views.upload_accepted(pid, duplicate)

    async def agent_error(self, request: web.Request) -> web.Response:
        body = await read_json(request, self.intake.settings.max_json_body)
        if not isinstance(body, dict):
            raise ApiError(400, "ARGUMENT_ERROR", "request body must be a JSON object")
        task_id = _field(body, "taskId")
        service = _field(body, "service", required=False)
        instance = _field(body, "serviceInstance")
        message = _field(body, "message", required=False)
        tenant = tenant_of(request)
        await self.intake.task_for(tenant, task_id, service, instance)
        await self.intake.record_agent_error(tenant, task_id, instance, message)
        return views.error_recorded()
