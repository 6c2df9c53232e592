"""skywalking.v10.PprofTask: SkyWalking's agent protocol as a thin adapter over the library's
CommandDesk (proftask.agent_commands) and ProfileIntake (proftask.ingest.intake), so an agent gets
the same tasks, and its uploads the same checks and events, as over HTTP (the protocol:
docs/skywalking-protocol.md)."""
from __future__ import annotations

import asyncio
import logging
import uuid

import grpc

from proftask.agent_commands import CommandDesk
from proftask.auth import AGENT, Principal, TokenTable, bearer_token
from proftask.core.commands import COMMAND_NAME, command_args
from proftask.core.tasks import MAX_ID_LENGTH, Task
from proftask.errors import Forbidden, ProftaskError, TooLarge, Unavailable
from proftask.ingest.budget import UploadBusy
from proftask.ingest.intake import ProfileIntake, Reason
from proftask.ingest.upload import UploadInterrupted, UploadOverDeclared
from proftask.skywalking.common.v3 import Command_pb2, Common_pb2
from proftask.skywalking.pprof.v10 import Pprof_pb2, Pprof_pb2_grpc
from services.agent_grpc.errors import collection_status, grpc_status

log = logging.getLogger(__name__)

Status = Pprof_pb2.PprofProfilingStatus
SUCCESS = Status.PPROF_PROFILING_SUCCESS
EXECUTION_TASK_ERROR = Status.PPROF_EXECUTION_TASK_ERROR
OVERSIZE = Status.PPROF_TERMINATED_BY_OVERSIZE
AUTH_METADATA = "authentication"  # gRPC metadata keys arrive lower-cased
ERROR_MESSAGE_WAIT_S = 10  # how long a rejected error report may take to send its errorMessage
# How long an upload waits for room in the upload budget; meanwhile gRPC's flow control holds
# the agent's chunks. SkyWalking's agent does not retry a refused upload, so wait generously, but
# less than the 60 s it gives a whole upload (reporter/pprof_manager.go): the agent gets the
# refusal, and the task log the reason, rather than the agent's deadline cutting the wait short.
BUDGET_WAIT_S = 45


def agent_names_refusal(service: str, instance: str) -> str | None:
    """Why an agent's names are refused, if they are: both are required, and at most
    MAX_ID_LENGTH characters, as over HTTP (they are kept and listed as live agents)."""
    if not service or not instance:
        return "service and serviceInstance are required"
    if max(len(service), len(instance)) > MAX_ID_LENGTH:
        return f"service and serviceInstance must be at most {MAX_ID_LENGTH} characters"
    return None


def commands_message(task: Task | None) -> Command_pb2.Commands:
    if task is None:
        return Command_pb2.Commands()
    args = [Common_pb2.KeyStringValuePair(key=k, value=v) for k, v in command_args(task, str(uuid.uuid4()))]
    return Command_pb2.Commands(commands=[Command_pb2.Command(command=COMMAND_NAME, args=args)])


class _Upload:
    """The content chunks of one collect stream, counted against the declared size (which the
    upload budget was charged): a stream that carries more is refused at the first byte over, and
    one that sends nothing for idle_timeout_s (http.bodyIdleTimeoutSeconds, as an HTTP body) is
    dropped, so a stalled agent does not hold the budget that every tenant's uploads share."""

    def __init__(self, context: grpc.aio.ServicerContext, first: Pprof_pb2.PprofData, declared: int | None,
                 idle_timeout_s: float):
        self.context, self.first, self.declared, self.received = context, first, declared, 0
        self.idle_timeout_s = idle_timeout_s
        self.ended = False  # the stream ended, or was refused; from then on intake records the outcome
        self.admitted = False  # the upload budget took it: its chunks are being read

    def short_message(self) -> str:
        if self.declared is None:
            return f"upload ended after {self.received} bytes (no size declared)"
        return f"upload ended after {self.received} of {self.declared} declared bytes"

    def gone_message(self) -> str:
        """Why the task failed when the agent went away mid-upload."""
        if not self.admitted:
            return (f"the agent gave up while its upload ({self.declared} declared bytes) waited for room in "
                    f"the upload budget (the server was busy with other uploads)")
        return self.short_message()

    async def chunks(self):
        self.admitted = True
        if self.first.WhichOneof("result") == "content":
            yield self._counted(self.first.content)
        while True:
            try:
                async with asyncio.timeout(self.idle_timeout_s):
                    message = await self.context.read()
            except TimeoutError:
                self.ended = True
                raise UploadInterrupted(f"no bytes for {self.idle_timeout_s:g} s: {self.short_message()}") from None
            if message is grpc.aio.EOF:
                break
            if message.WhichOneof("result") == "content":
                yield self._counted(message.content)
        self.ended = True
        if self.declared is not None and self.received < self.declared:
            raise UploadInterrupted(self.short_message())

    def _counted(self, content: bytes) -> bytes:
        self.received += len(content)
        if self.declared is not None and self.received > self.declared:
            self.ended = True
            raise UploadOverDeclared(f"upload carried {self.received} bytes or more, more than the "
                                     f"{self.declared} declared")
        return content


class PprofTaskServicer(Pprof_pb2_grpc.PprofTaskServicer):
    """`bound_tenant`: this servicer answers a listener bound to one tenant (PROFTASK_GRPC_TENANT_LISTENERS)."""

    def __init__(self, commands: CommandDesk, intake: ProfileIntake, tokens: TokenTable,
                 bound_tenant: str | None = None):
        self.commands, self.intake, self.tokens, self.bound_tenant = commands, intake, tokens, bound_tenant

    def resolve_principal(self, context: grpc.aio.ServicerContext) -> Principal:
        """Who makes this call (raises Unauthenticated or Forbidden). SkyWalking agents send their token as
        `Authentication` metadata (plain, or Bearer). skywalking-go sends none on its pprof calls:
        on a listener bound to a tenant a call without a token is that tenant's agent, and a call
        with one must be of that tenant."""
        token = next((v for k, v in context.invocation_metadata() or () if k == AUTH_METADATA), None)
        if not token and self.bound_tenant is not None:
            return Principal(self.bound_tenant, AGENT)
        principal = self.tokens.authenticate(bearer_token(token) or token)
        if self.bound_tenant is not None and principal.tenant != self.bound_tenant:
            raise Forbidden(f"this listener serves tenant {self.bound_tenant} only")
        principal.require(AGENT)
        return principal

    async def _tenant(self, context: grpc.aio.ServicerContext) -> str:
        try:
            return self.resolve_principal(context).tenant
        except ProftaskError as e:
            await context.abort(grpc_status(e), e.reason)
            raise  # abort() raises; this line only tells a reader (and mypy) that nothing returns

    async def getPprofTaskCommands(self, request: Pprof_pb2.PprofTaskCommandQuery,
                                   context: grpc.aio.ServicerContext) -> Command_pb2.Commands:
        tenant = await self._tenant(context)  # first: a caller without a token learns nothing else
        refusal = agent_names_refusal(request.service, request.serviceInstance)
        if refusal is not None:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, refusal)
        try:
            task = await self.commands.next_task(tenant, request.service, request.serviceInstance,
                                                 request.lastCommandTime)
        except ProftaskError as e:
            await context.abort(grpc_status(e), e.reason)
        return commands_message(task)

    async def collect(self, request_iterator, context: grpc.aio.ServicerContext) -> None:
        """Metadata first, answered at once (the agent blocks on that answer); then the content
        chunks; a last status once the profile is on Kafka or refused."""
        tenant = await self._tenant(context)  # before reading anything the caller sent
        first = await context.read()
        if first is grpc.aio.EOF:
            return
        if not first.HasField("metadata"):
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "the first PprofData must carry metadata")
        meta = first.metadata
        try:
            task = await self.intake.task_for(tenant, meta.taskId, meta.service, meta.serviceInstance)
        except Unavailable as e:
            await context.abort(grpc_status(e), e.reason)
        except ProftaskError as e:  # no such task, or not this instance's
            log.info("collect refused: %s", e.reason)
            await self._reply(context, EXECUTION_TASK_ERROR, e.reason)
            return
        if meta.type != SUCCESS:
            await self._agent_failure(context, tenant, first)
            return
        declared = meta.contentSize if meta.contentSize >= 0 else None  # int32 wraps past 2 GiB
        try:
            await self.intake.check_declared_size(tenant, meta.taskId, meta.serviceInstance, declared)
        except TooLarge as e:
            await self._reply(context, collection_status(e), e.reason)
            return
        await context.write(Pprof_pb2.PprofCollectionResponse(status=SUCCESS))
        upload = _Upload(context, first, declared, self.intake.settings.http_limits.body_idle_timeout_s)
        try:
            await self.intake.accept(tenant, task, meta.serviceInstance, upload.chunks(), "",
                                     declared=declared, budget_wait_s=BUDGET_WAIT_S)
        except UploadBusy as e:
            # Waited BUDGET_WAIT_S in vain; the agent will not retry, so the task says why.
            try:
                await self.intake.record_failure(tenant, meta.taskId, meta.serviceInstance, Reason.NOT_STORED, str(e))
            except Unavailable as unlogged:  # Kafka away too: the answer says why all the same
                log.warning("upload refused busy, and its task log not sent: %s", unlogged.reason)
            await self._reply(context, EXECUTION_TASK_ERROR, str(e))
            return
        except ProftaskError as e:  # too large, invalid, interrupted, not stored: as the kind says
            await self._reply(context, collection_status(e), e.reason)
            return
        except asyncio.CancelledError:
            # The agent went away mid-upload (cancelled, deadline, connection lost): the task's
            # progress says so. Recorded apart from this handler, which is being cancelled.
            if not upload.ended:
                self.intake.record_failure_later(tenant, meta.taskId, meta.serviceInstance, Reason.UPLOAD_INTERRUPTED,
                                                 upload.gone_message())
            raise
        await context.write(Pprof_pb2.PprofCollectionResponse(status=SUCCESS))

    async def _agent_failure(self, context, tenant: str, first: Pprof_pb2.PprofData) -> None:
        try:
            await self._record_agent_failure(context, tenant, first)
        except Unavailable as e:  # its log not taken (Kafka away): the call ends UNAVAILABLE, not UNKNOWN
            await context.abort(grpc_status(e), e.reason)

    async def _record_agent_failure(self, context, tenant: str, first: Pprof_pb2.PprofData) -> None:
        """The agent reports that the task failed. SkyWalking's agent sends no message (it
        stops once answered); a client that sends errorMessage, with the metadata or after the
        answer, gets it into the task log."""
        meta = first.metadata
        oversize = meta.type == OVERSIZE
        await context.write(Pprof_pb2.PprofCollectionResponse(status=OVERSIZE if oversize else EXECUTION_TASK_ERROR))
        message = first.errorMessage if first.WhichOneof("result") == "errorMessage" else ""
        if not message:
            message = await self._trailing_error_message(context)
        if oversize:
            await self.intake.record_failure(tenant, meta.taskId, meta.serviceInstance, Reason.PROFILE_TOO_LARGE,
                                             message or "the agent reported the profile as too large")
        else:
            if not message:
                # skywalking-go (0.7) drops its error text: only its own log says what went wrong.
                log.warning("agent %s/%s reported PPROF_EXECUTION_TASK_ERROR for task %s without an "
                            "error text; the reason is in the agent's own log", meta.service,
                            meta.serviceInstance, meta.taskId)
                message = (f"the agent gave no error text with PPROF_EXECUTION_TASK_ERROR (skywalking-go "
                           f"sends none): see the log of instance {meta.serviceInstance} for the reason")
            await self.intake.record_agent_error(tenant, meta.taskId, meta.serviceInstance, message)

    @staticmethod
    async def _trailing_error_message(context) -> str:
        message = ""
        try:
            while True:
                item = await asyncio.wait_for(context.read(), ERROR_MESSAGE_WAIT_S)
                if item is grpc.aio.EOF:
                    return message
                if item.WhichOneof("result") == "errorMessage":
                    message = message or item.errorMessage
        except TimeoutError:
            return message

    @staticmethod
    async def _reply(context, status: Pprof_pb2.PprofProfilingStatus, reason: str) -> None:
        # The status is all SkyWalking's agent reads; the reason travels as trailing metadata.
        context.set_trailing_metadata((("proftask-reason", reason.encode("ascii", "backslashreplace").decode()),))
        await context.write(Pprof_pb2.PprofCollectionResponse(status=status))

