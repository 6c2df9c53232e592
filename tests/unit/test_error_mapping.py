"""Each kind of error the library raises answers the same status and code on every transport:
HTTP (proftask/http/errors.py) and gRPC (services/agent_grpc/errors.py) map them in one place."""
from __future__ import annotations

import grpc
import pytest

from proftask.auth import TokenTable, parse_token_list
from proftask.errors import Conflict, Forbidden, NotFound, Unauthenticated, Unavailable
from proftask.http.errors import ApiError, error_answer, http_status
from proftask.ingest.budget import UploadBudget
from proftask.ingest.intake import InvalidProfile, ProfileMisfit, UploadNotStored
from proftask.ingest.upload import UploadInterrupted, UploadTooLarge
from services.agent_grpc.errors import Status, collection_status, grpc_status


@pytest.mark.parametrize("error, status, code", [
    (NotFound("task x not found"), 404, "NOT_FOUND"),
    (Conflict("instance y is not an instance of task x"), 409, "CONFLICT"),
    (Unavailable("task view is still loading the task history"), 503, "UNAVAILABLE"),
    (UploadTooLarge("upload is over pprofMaxSize (10 bytes)"), 413, "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR"),
    (UploadInterrupted("upload interrupted after 3 of 9 bytes"), 400, "UPLOAD_INTERRUPTED"),
    (InvalidProfile("invalid profile: not gzip"), 400, "INVALID_PROFILE"),
    (ProfileMisfit("the profile does not fit a HEAP task"), 400, "PROFILE_EVENT_MISMATCH"),
    (Unauthenticated("unknown token"), 401, "UNAUTHENTICATED"),
    (Forbidden("a user token cannot do this"), 403, "FORBIDDEN"),
    (ApiError(400, "ARGUMENT_ERROR", "limit must be an integer"), 400, "ARGUMENT_ERROR"),
])
def test_http_status_and_code(error, status, code):
    assert (http_status(error), error.code) == (status, code)


def test_busy_and_not_stored_answer_503_with_retry_after():
    budget = UploadBudget(10)
    assert budget.try_charge("default", 8)
    for error in (budget.busy("default", 5), UploadNotStored("the profile arrived but could not be stored", 7)):
        answer = error_answer(error)
        assert answer.status == 503 and "Retry-After" in answer.headers
    assert error_answer(Unavailable("loading")).headers.get("Retry-After") is None


def test_auth_errors_on_grpc():
    tokens = TokenTable(parse_token_list("t1=acme:user"))
    with pytest.raises(Unauthenticated) as e:
        tokens.authenticate("nope")
    assert grpc_status(e.value) == grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(Forbidden) as e:
        tokens.authenticate("t1").require("agent")
    assert grpc_status(e.value) == grpc.StatusCode.PERMISSION_DENIED
    assert grpc_status(Unavailable("loading")) == grpc.StatusCode.UNAVAILABLE


def test_collect_answers_oversize_only_for_too_large():
    assert collection_status(UploadTooLarge("over")) == Status.PPROF_TERMINATED_BY_OVERSIZE
    for error in (InvalidProfile("invalid profile: x"), ProfileMisfit("misfit"), UploadInterrupted("short"),
                  UploadNotStored("lost", 1), NotFound("no task")):
        assert collection_status(error) == Status.PPROF_EXECUTION_TASK_ERROR
