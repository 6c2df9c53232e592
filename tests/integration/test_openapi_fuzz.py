"""schemathesis against /openapi.json of a running proftask: whatever it generates, never a 500,
and every answer is one the document declares. Budget: PROFTASK_FUZZ_EXAMPLES examples per
operation (default 60)."""
import itertools
import os

import schemathesis
from schemathesis import GenerationMode
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.integration.profiles import create_task

EXAMPLES = int(os.environ.get("PROFTASK_FUZZ_EXAMPLES", "60"))


CHECKS = [schemathesis.checks.not_a_server_error, schemathesis.checks.status_code_conformance,
          schemathesis.checks.content_type_conformance, schemathesis.checks.response_schema_conformance]


def test_api_never_fails_on_generated_requests(stack):
    # schemathesis' pytest plugin does not run on pytest 9 yet; its strategies under hypothesis do.
    create_task(stack, ["pod-1"])  # something to find, besides the 404s
    schema = schemathesis.openapi.from_url(stack.base + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    called: list[str] = []
    for operation, mode in itertools.product(operations, GenerationMode):  # valid and invalid requests
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=operation.as_strategy(generation_mode=mode))
        def fuzz(case):
            if case.query and "wait" in case.query:
                case.query["wait"] = 0  # a long poll would only spend the budget waiting
            case.call_and_validate(checks=CHECKS)
            called.append(case.operation.label)

        try:
            fuzz()
        except Unsatisfiable:
            assert mode is GenerationMode.NEGATIVE  # nothing invalid to make (no parameters, no body)
    assert {o.label for o in operations} == set(called)  # every operation was exercised


def test_openapi_document_names_every_route(stack):
    doc = stack.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    for path in ("/api/v1/pprof/tasks", "/api/v1/pprof/tasks/{taskId}/analysis", "/api/v1/pprof/agent/profiles",
                 "/api/v1/pprof/diff", "/api/v1/pprof/agent/commands"):
        assert path in doc["paths"]
