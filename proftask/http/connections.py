"""Slow and greedy HTTP clients: a header-read timeout, a body-idle timeout and a cap on open
connections, for one process's HTTP port.

aiohttp (3.14) has none of the three: a connection that drips its headers, or a body one byte
at a time, is held until aiohttp's keep-alive timeout (an hour), and every such connection holds
a file descriptor. Each accepted connection is wrapped in a `GuardedConnection` that forwards
everything to aiohttp's own protocol and watches the bytes go by; `request_phase`, an app
middleware, tells it when a request's headers are complete and when its handler is done.

A stop drains the requests in hand first (`ConnectionGuard.drain`): aiohttp's own shutdown drops
every byte that arrives after it begins, so an upload still arriving then never completes and
its client waited aiohttp's whole shutdown timeout (60 s; `make down` kills at 20 s) for no answer.
"""
from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import resource
import time
from collections.abc import Callable
from typing import cast

from aiohttp import web
from aiohttp.http_exceptions import LineTooLong

from proftask.config import HttpLimits
from proftask.errors import CannotRun, Unavailable
from proftask.http.errors import CODES, error_response

log = logging.getLogger(__name__)


def _refusal(limit: int) -> bytes:
    body = json.dumps({"code": "UNAVAILABLE",
                       "errorReason": f"too many open connections (this server keeps at most {limit}); "
                                      "retry later"}).encode()
    return (b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            b"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n" % len(body)) + body


STOPPING_RETRY_AFTER_S = 2  # a restart takes about that long
FILES_KEPT_FOR_THE_REST = 256  # Kafka and ClickHouse connections, chDB's files, logs
MIN_CONNECTIONS = 64  # below, the readiness checks and a few agents take them all


def within_open_files_limit(limits: HttpLimits, ports: int = 1) -> HttpLimits:
    """Past the open-files limit accept() fails (EMFILE) and asyncio spins logging it: cap the
    connections below it instead, and say so. The soft limit is first raised to the hard one,
    as Go's runtime does at start; a limit that leaves fewer than MIN_CONNECTIONS refuses to
    start, in one line (with `ulimit -n 256` the server took one connection at a time, and a
    `make up` waiting for it to be ready gave up).

    `ports`: the process's listening ports (HTTP, and the gRPC ones), each taking at most
    maxConnections; together they stay under the limit (an HTTP/2 flood of the gRPC port took the
    process to its last file and HTTP uploads to 10-17 s). The answer's maxConnections is each
    port's."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
            soft = hard
        except (ValueError, OSError) as e:  # a hard limit the kernel caps lower (nr_open)
            log.info("open-files limit left at %d (raising it to %d: %s)", soft, hard, e)
    if soft == resource.RLIM_INFINITY:
        return limits
    room = (soft - FILES_KEPT_FOR_THE_REST) // ports
    if room < min(MIN_CONNECTIONS, limits.max_connections):
        needs = "for HTTP connections" if ports == 1 else f"for the connections of each of its {ports} ports"
        raise CannotRun(f"the open-files limit (ulimit -n) is {soft}: proftask keeps {FILES_KEPT_FOR_THE_REST} "
                        f"for Kafka, ClickHouse and its files and needs {MIN_CONNECTIONS} more {needs}; "
                        f"raise it to at least {FILES_KEPT_FOR_THE_REST + MIN_CONNECTIONS * ports}")
    if limits.max_connections <= room:
        return limits
    # the default shared by HTTP and gRPC (20,000 files: 9,872 a port) is said, not warned of
    chosen = limits.max_connections != HttpLimits.max_connections
    log.log(logging.WARNING if chosen or ports == 1 else logging.INFO,
            "maxConnections %d lowered to %d%s: the open-files limit (ulimit -n) is %d", limits.max_connections,
            room, f" per port ({ports} listening ports)" if ports > 1 else "", soft)
    return dataclasses.replace(limits, max_connections=room)


class ConnectionGuard:
    """The connections of one listening socket: counts them and builds their protocols."""

    def __init__(self, limits: HttpLimits, aiohttp_protocol: Callable[[], asyncio.Protocol]):
        self.limits = limits  # within_open_files_limit's, reckoned for every port of the process
        self._aiohttp_protocol = aiohttp_protocol
        self.open: dict[asyncio.Protocol, GuardedConnection] = {}  # aiohttp protocol → its guard
        self.refused = 0
        self.timed_out = 0
        self._last_refusal_log = 0.0
        self.requesting: set[GuardedConnection] = set()  # those whose handler runs
        self._request_ended = asyncio.Event()

    def __call__(self) -> asyncio.Protocol:  # the protocol factory for loop.create_server
        return GuardedConnection(self)

    def refuse(self, transport: asyncio.Transport) -> None:
        self.refused += 1
        transport.write(_refusal(self.limits.max_connections))
        transport.close()
        now = time.monotonic()
        if now - self._last_refusal_log > 10:  # one line per 10 s, not one per connection
            self._last_refusal_log = now
            log.warning("HTTP: %d open connections, the cap; refusing more (%d refused so far)",
                        len(self.open), self.refused)

    def request_ended(self, connection: GuardedConnection) -> None:
        self.requesting.discard(connection)
        self._request_ended.set()

    async def drain(self, timeout_s: float, answer_s: float) -> None:
        """Waits up to timeout_s for the requests in hand to end, bodies still arriving included;
        then refuses each body still arriving (503 with Retry-After: the client sends it again,
        to the restarted server) and waits up to answer_s for those answers. Call it once the
        listening socket is closed and the long polls are answered, before aiohttp's shutdown."""
        if await self._until_no_request(timeout_s):
            return
        refused = 0
        for connection in list(self.requesting):
            refused += connection.refuse_body(Unavailable(
                "proftask is stopping: this upload was not received whole in time; send it again",
                retry_after=STOPPING_RETRY_AFTER_S))
        if refused:
            log.warning("HTTP: stopping: %d upload(s) still arriving were refused (503, send again)", refused)
        await self._until_no_request(answer_s)

    async def _until_no_request(self, timeout_s: float) -> bool:
        try:
            async with asyncio.timeout(timeout_s):
                while self.requesting:
                    self._request_ended.clear()
                    await self._request_ended.wait()
        except TimeoutError:
            return False
        return True

    def middleware(self):
        """Tells each request's connection when its handler runs (headers complete) and ends."""
        @web.middleware
        async def request_phase(request: web.Request, handler):
            guard = self.open.get(request.protocol)
            if guard is None:
                return await handler(request)
            guard.request_started(request)
            try:
                return await handler(request)
            finally:
                guard.request_done()
        return request_phase


class GuardedConnection(asyncio.Protocol):
    """aiohttp's protocol for one connection, with deadlines. Phases: HEADERS (from connect, or
    from the first byte after the previous request: header timeout), REQUEST (handler running;
    while its body is unread-to-the-end, body-idle timeout), IDLE (aiohttp's keep-alive)."""

    def __init__(self, guard: ConnectionGuard):
        self._guard = guard
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.Transport | None = None
        self._loop = asyncio.get_running_loop()
        self._phase = "HEADERS"
        self._phase_since = self._loop.time()
        self._last_byte = self._phase_since
        self._request: web.BaseRequest | None = None
        self._timer: asyncio.TimerHandle | None = None

    # ---- asyncio.Protocol, forwarded to aiohttp ----
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        stream = cast(asyncio.Transport, transport)  # a TCP server's transports are stream transports
        self._transport = stream
        if len(self._guard.open) >= self._guard.limits.max_connections:
            self._guard.refuse(stream)
            return
        self._inner = self._guard._aiohttp_protocol()
        self._guard.open[self._inner] = self
        self._inner.connection_made(transport)
        self._arm(self._phase_since + self._guard.limits.header_timeout_s)

    def data_received(self, data: bytes) -> None:
        if self._inner is None:
            return
        now = self._loop.time()
        self._last_byte = now
        if self._phase == "IDLE" and (self._request is None or self._request.content.is_eof()):
            self._enter("HEADERS", now)  # the first byte of the next request
        self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel_timer()
        if self._inner is not None:
            self._guard.open.pop(self._inner, None)
            self._inner.connection_lost(exc)
        self._request = None

    # ---- phases, from the middleware ----
    def request_started(self, request: web.BaseRequest) -> None:
        self._request = request
        self._guard.requesting.add(self)
        self._enter("REQUEST", self._loop.time())

    def request_done(self) -> None:
        self._guard.request_ended(self)
        self._enter("IDLE", self._loop.time())

    def refuse_body(self, why: Exception) -> int:
        """The handler reading a body still arriving gets `why` instead of the rest (1), and
        answers it; a body already whole is left to its handler (0)."""
        request = self._request
        if request is None or request.content.is_eof() or request.content.exception() is not None:
            return 0
        request.content.set_exception(why)
        return 1

    def _enter(self, phase: str, now: float) -> None:
        self._phase, self._phase_since = phase, now
        limits = self._guard.limits
        if phase == "HEADERS":
            self._arm(now + limits.header_timeout_s)
        elif phase == "REQUEST":
            self._arm(now + limits.body_idle_timeout_s)
        else:
            self._cancel_timer()  # aiohttp's keep-alive timeout closes an idle connection

    # ---- deadlines ----
    def _arm(self, when: float) -> None:
        self._cancel_timer()
        self._timer = self._loop.call_at(when, self._check)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _check(self) -> None:
        self._timer = None
        transport = self._transport
        if transport is None or transport.is_closing():
            return
        now, limits = self._loop.time(), self._guard.limits
        if self._phase == "HEADERS":
            if now >= self._phase_since + limits.header_timeout_s:
                self._drop(f"no complete request headers within {limits.header_timeout_s:g} s")
            else:
                self._arm(self._phase_since + limits.header_timeout_s)
        elif self._phase == "REQUEST":
            request = self._request
            if request is None or request.content.is_eof():
                return  # the whole body is in: the handler may take its time
            if not transport.is_reading():
                # aiohttp stopped reading (the handler has not consumed the buffer yet): the
                # client is not the one being slow.
                self._last_byte = now
            deadline = self._last_byte + limits.body_idle_timeout_s
            if now >= deadline:
                self._drop(f"no byte of the request body for {limits.body_idle_timeout_s:g} s")
            else:
                self._arm(deadline)

    def _drop(self, why: str) -> None:
        self._guard.timed_out += 1
        peer = self._transport.get_extra_info("peername") if self._transport else None
        log.info("HTTP: closing the connection of %s: %s", peer, why)
        # Abort, not close: nothing useful can be sent to a client stuck mid-request, and the
        # handler reading the body sees the connection lost at once.
        if self._transport is not None:
            self._transport.abort()


class JsonErrorsRequestHandler(web.RequestHandler):
    """aiohttp's protocol for a connection, answering in the API's shape what fails before a
    handler runs (a request line or header past its limits, bytes that are no HTTP): aiohttp
    answers those itself in plain text quoting its parser (`Got more than 32768 bytes when
    reading: bytearray(b'/api/v1/...')`) and logs a traceback. A 4xx is logged in one line."""

    __slots__ = ()

    def handle_error(self, request: web.BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if request.writer.output_size > 0:  # part of an answer is out: the connection is broken (as aiohttp)
            raise ConnectionError("Response is sent already, cannot send another response with the error message")
        if status >= 500 and exc is None:  # aiohttp's 504: a handler past its timeout
            log.warning("HTTP request answered %d by aiohttp: %s", status, message or "no handler answer in time")
            answer = error_response(status, "TIMEOUT" if status == 504 else "HTTP_ERROR",
                                    "the request was not answered in time" if status == 504 else str(status))
        elif status >= 500:
            log.error("HTTP request failed outside its handler: %s", status, exc_info=exc)
            answer = error_response(status, "INTERNAL_ERROR", "internal error; see the server log")
        else:
            if isinstance(exc, LineTooLong):
                reason = "the request line or a header field is too long"
            else:
                reason = f"malformed HTTP request ({type(exc).__name__ if exc else message or status})"
            log.info("HTTP request refused before its handler: %s", reason)
            answer = error_response(status, CODES.get(status, "BAD_REQUEST"), reason)
        answer.force_close()
        return answer
