"""The one place where the library's error kinds (proftask.errors) become gRPC answers: a status
code for a call that is aborted, and SkyWalking's PprofProfilingStatus for a Collect stream the
agent reads to its end."""
from __future__ import annotations

import grpc

from proftask.errors import (Conflict, Forbidden, Invalid, NotFound, ProftaskError, TooLarge, Unauthenticated,
                             Unavailable)
from proftask.skywalking.pprof.v10 import Pprof_pb2

Status = Pprof_pb2.PprofProfilingStatus

GRPC_STATUS: dict[type[ProftaskError], grpc.StatusCode] = {
    Invalid: grpc.StatusCode.INVALID_ARGUMENT, Unauthenticated: grpc.StatusCode.UNAUTHENTICATED,
    Forbidden: grpc.StatusCode.PERMISSION_DENIED, NotFound: grpc.StatusCode.NOT_FOUND,
    Conflict: grpc.StatusCode.FAILED_PRECONDITION, TooLarge: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE}


def grpc_status(e: ProftaskError) -> grpc.StatusCode:
    return next((code for kind, code in GRPC_STATUS.items() if isinstance(e, kind)), grpc.StatusCode.UNKNOWN)


def collection_status(e: ProftaskError) -> Pprof_pb2.PprofProfilingStatus:
    """What SkyWalking's agent reads of a refused upload: OVERSIZE for a profile too large,
    EXECUTION_TASK_ERROR for every other refusal (the reason goes with it as trailing metadata)."""
    return Status.PPROF_TERMINATED_BY_OVERSIZE if isinstance(e, TooLarge) else Status.PPROF_EXECUTION_TASK_ERROR
