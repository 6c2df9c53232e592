"""The errors the library raises, by kind, whatever transport answers them. Each carries the
`code` the client reads (SkyWalking's ARGUMENT_ERROR, proftask's INVALID_PROFILE, …) and a
`reason` for people; `extra` holds further fields of the answer (a task id). The transports
map the kind to their own terms in one place each: HTTP in proftask/http/errors.py, gRPC in
services/agent_grpc/errors.py."""
from __future__ import annotations

from typing import Any


class CannotRun(RuntimeError):
    """A command cannot do its work as things stand (another process holds its data, a replay
    did not finish): the CLI says why in one line and exits 1."""


class ProftaskError(Exception):
    code = "ERROR"

    def __init__(self, reason: str, code: str | None = None, **extra: Any):
        super().__init__(reason)
        self.reason, self.extra = reason, extra
        if code is not None:
            self.code = code


class Invalid(ProftaskError):
    """The request or its content is malformed or does not fit its target; do not retry as is."""
    code = "ARGUMENT_ERROR"


class Unauthenticated(ProftaskError):
    """No token, or an unknown one."""
    code = "UNAUTHENTICATED"


class Forbidden(ProftaskError):
    """The caller is known but may not do this (its role, or another tenant's listener)."""
    code = "FORBIDDEN"


class NotFound(ProftaskError):
    code = "NOT_FOUND"


class Conflict(ProftaskError):
    """The request names things that exist but do not belong together (an instance not of the task)."""
    code = "CONFLICT"


class TooLarge(ProftaskError):
    code = "PAYLOAD_TOO_LARGE"


class Unavailable(ProftaskError):
    """Not now (the task history is loading, Kafka is unreachable, the upload budget is full):
    try again, after `retry_after` seconds when it is set."""
    code = "UNAVAILABLE"

    def __init__(self, reason: str, code: str | None = None, retry_after: int | None = None, **extra: Any):
        super().__init__(reason, code, **extra)
        self.retry_after = retry_after
