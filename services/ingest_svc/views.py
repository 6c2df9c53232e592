"""ingest_svc's answers as HTTP sees them: the JSON shapes of its routes, in one place (its
refusals are the library's errors, answered by proftask/http/errors.py)."""
from __future__ import annotations

from aiohttp import web


def upload_accepted(profile_id: str, duplicate: bool) -> web.Response:
    """202: the profile is stored in Kafka (or was already, under the same Idempotency-Key)."""
    return web.json_response({"code": "SUCCESS", "profileId": profile_id, "duplicate": duplicate,
                              "errorReason": None}, status=202)


def error_recorded() -> web.Response:
    """202: the agent's error report is recorded in the task's progress."""
    return web.json_response({"code": "SUCCESS", "errorReason": None}, status=202)


def expectation_failed(expect: str) -> web.Response:
    """417 for an `Expect` other than 100-continue. It is answered before the middlewares run,
    so in their JSON error shape here."""
    return web.json_response({"code": "EXPECTATION_FAILED", "errorReason": f"unknown Expect: {expect}"},
                             status=417)
