"""API errors: always JSON {"code", "errorReason"} with a fitting status, never a stack trace.
The one place where the library's error kinds (proftask.errors) become HTTP statuses."""
from __future__ import annotations

import json
import logging
import sys
from typing import Any, overload

from aiohttp import web

from proftask.core.echo import echo
from proftask.errors import (Conflict, Forbidden, Invalid, NotFound, ProftaskError, TooLarge, Unauthenticated,
                             Unavailable)

log = logging.getLogger(__name__)


class ApiError(ProftaskError):
    """An error of the HTTP edge itself (a malformed query parameter), with its status."""

    def __init__(self, status: int, code: str, reason: str, **extra: Any):
        super().__init__(reason, code, **extra)
        self.status = status


HTTP_STATUS: dict[type[ProftaskError], int] = {
    Invalid: 400, Unauthenticated: 401, Forbidden: 403, NotFound: 404, Conflict: 409, TooLarge: 413,
    Unavailable: 503}


def http_status(e: ProftaskError) -> int:
    if isinstance(e, ApiError):
        return e.status
    return next((status for kind, status in HTTP_STATUS.items() if isinstance(e, kind)), 500)


def error_response(status: int, code: str, reason: str, headers: dict | None = None, **extra: Any) -> web.Response:
    return web.json_response({"code": code, "errorReason": reason, **extra}, status=status, headers=headers)


def error_answer(e: ProftaskError) -> web.Response:
    """The answer to an error of the library: `Retry-After` when it says when to try again."""
    retry_after = getattr(e, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return error_response(http_status(e), e.code, e.reason, headers, **e.extra)


CODES = {400: "BAD_REQUEST", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED",
          413: "PAYLOAD_TOO_LARGE", 415: "UNSUPPORTED_MEDIA_TYPE", 503: "UNAVAILABLE"}


@web.middleware
async def json_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except ProftaskError as e:
        return error_answer(e)
    except ConnectionError as e:
        if request.transport is None or request.transport.is_closing():  # the client went away
            log.info("client connection lost on %s %s: %s", request.method, request.path, e)
            raise
        # ClickHouse (or another backend) unreachable: try again later
        log.warning("backend unavailable on %s %s: %s", request.method, request.path, e)
        return error_response(503, "UNAVAILABLE", f"a backend is unavailable: {e}")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        reason = e.reason if e.status != 413 else f"request body too large ({e.text})"
        return error_response(e.status, CODES.get(e.status, "HTTP_ERROR"), reason)
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "INTERNAL_ERROR", "internal error; see the server log")


async def read_json(request: web.Request, max_bytes: int) -> Any:
    """The request body as JSON, refusing oversized bodies before reading them whole."""
    if request.content_length is not None and request.content_length > max_bytes:
        raise ApiError(413, "PAYLOAD_TOO_LARGE", f"request body over {max_bytes} bytes")
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > max_bytes:
            raise ApiError(413, "PAYLOAD_TOO_LARGE", f"request body over {max_bytes} bytes")
    try:
        value = json.loads(body)
    except RecursionError:
        raise ApiError(400, "ARGUMENT_ERROR", "malformed JSON: nested too deeply") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ApiError(400, "ARGUMENT_ERROR", f"malformed JSON: {e}") from None
    except ValueError:  # Python's guard against quadratic int parsing
        raise ApiError(400, "ARGUMENT_ERROR", f"malformed JSON: a number has more than "
                       f"{sys.get_int_max_str_digits()} digits") from None
    bad = _first_non_unicode_string(value)
    if bad is not None:
        raise ApiError(400, "ARGUMENT_ERROR", f"a string of the body ({echo(bad)}) holds a lone UTF-16 "
                       "surrogate escape, which is not Unicode text") from None
    return value


def _first_non_unicode_string(value: Any) -> str | None:
    """JSON lets "\\ud800" through; protobuf, ClickHouse and the UI cannot store it. Iterative, as
    the document may nest up to the recursion limit."""
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return node
    return None


@overload
def query_int(request: web.Request, name: str, default: int, lo: int | None = None,
              hi: int | None = None) -> int: ...
@overload
def query_int(request: web.Request, name: str, default: None = None, lo: int | None = None,
              hi: int | None = None) -> int | None: ...
def query_int(request: web.Request, name: str, default: int | None = None,
              lo: int | None = None, hi: int | None = None) -> int | None:
    raw = request.query.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(400, "ARGUMENT_ERROR", f"{name} must be an integer, got {echo(raw)}") from None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        raise ApiError(400, "ARGUMENT_ERROR", f"{name} must be between {lo} and {hi}, got {value}")
    return value


def query_bool(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "").lower()
    if raw not in ("", "true", "false", "1", "0"):
        raise ApiError(400, "ARGUMENT_ERROR", f"{name} must be true or false, got {echo(raw)}")
    return raw in ("true", "1")


def query_str(request: web.Request, name: str, required: bool = True, max_len: int = 512) -> str:
    value = request.query.get(name, "")
    if required and not value:
        raise ApiError(400, "ARGUMENT_ERROR", f"{name} is required (a non-empty query parameter)")
    if len(value) > max_len:
        raise ApiError(400, "ARGUMENT_ERROR", f"{name} must be at most {max_len} characters, got {echo(value)}")
    return value
