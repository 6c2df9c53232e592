"""Hostile and slow HTTP clients against a real `proftask serve all`: JSON built to crash a
parser, headers and bodies dripped a byte at a time, more connections than the cap, unknown
ids by the dozen. Each gets a clear answer or a closed connection, and the server keeps serving."""
import json
import socket
import time
import uuid

import pytest

from tests.integration.harness import wait_until


HEADER_TIMEOUT_S = 1
BODY_IDLE_TIMEOUT_S = 1
MAX_CONNECTIONS = 30


@pytest.fixture(scope="module")
def guarded(spawn):
    return spawn("all", PROFTASK_HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT_S),
                 PROFTASK_HTTP_BODY_IDLE_TIMEOUT=str(BODY_IDLE_TIMEOUT_S),
                 PROFTASK_HTTP_MAX_CONNECTIONS=str(MAX_CONNECTIONS))


def connect(stack) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", stack.port), timeout=10)
    return s


def closed_by_server(s: socket.socket, within: float) -> float | None:
    """Seconds until the server closed `s` (reading what it sent meanwhile), None if still open."""
    started = time.monotonic()
    s.settimeout(0.1)
    while time.monotonic() - started < within:
        try:
            if s.recv(65536) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:  # reset: closed too
            return time.monotonic() - started
    return None


def task_body(**kw) -> dict:
    return {"serviceId": f"h-{uuid.uuid4().hex[:8]}", "serviceInstanceIds": ["i-1"], "events": "CPU",
            "duration": 1, **kw}


HOSTILE_JSON = {
    "a 5,000-digit integer": b'{"serviceId": "s", "taskId": "t", "duration": ' + b"9" * 5000 + b"}",
    "[ nested 100,000 deep": b"[" * 100_000,
    "a lone surrogate": b'{"serviceId": "\\ud800", "serviceInstanceIds": ["i"], "events": "CPU", "duration": 1, '
                        b'"taskId": "\\ud800", "serviceInstance": "i", "message": "\\udfff"}',
}


@pytest.mark.parametrize("route", ["/api/v1/pprof/tasks", "/api/v1/pprof/agent/errors"])
@pytest.mark.parametrize("kind", list(HOSTILE_JSON))
def test_hostile_json_is_a_400_argument_error(guarded, route, kind):
    r = guarded.post(route, raw=HOSTILE_JSON[kind])
    assert r.status == 400 and r.json()["code"] == "ARGUMENT_ERROR", (kind, r)
    assert guarded.get("/healthz").status == 200


@pytest.mark.parametrize("dump_period", [2**31, 2**63, 10**30])
def test_dump_period_beyond_int32_is_a_400_naming_the_bound(guarded, dump_period):
    r = guarded.post("/api/v1/pprof/tasks", task_body(events="MUTEX", dumpPeriod=dump_period))
    assert r.status == 400 and r.json()["code"] == "ARGUMENT_ERROR", r
    assert "from 1 to 2147483647" in r.json()["errorReason"] and str(dump_period) in r.json()["errorReason"]
    assert guarded.post("/api/v1/pprof/tasks", task_body(events="MUTEX", dumpPeriod=2**31 - 1)).status == 201


def test_a_20_kb_header_gets_an_answer_and_no_handler_fallback_is_logged(guarded):
    r = guarded.get("/api/v1/pprof/tasks/nope", headers={"X-Padding": "p" * 20_000})
    assert r.status == 404 and r.json()["code"] == "NOT_FOUND", r
    for _ in range(3):
        assert guarded.get("/healthz").status == 200
    assert "falling back" not in guarded.log_path.read_text()


@pytest.mark.parametrize("request_bytes", [
    b"GET /api/v1/pprof/tasks/" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",       # past the 32 KiB line
    b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"p" * 40_000 + b"\r\n\r\n",  # past it in a header
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 not http\r\n\r\n",                       # TLS to the HTTP port
], ids=["request-line", "header", "not-http"])
def test_a_request_aiohttp_cannot_parse_gets_the_apis_json_error_without_a_traceback(guarded, request_bytes):
    s = connect(guarded)
    s.sendall(request_bytes)
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        answer += chunk
    s.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"400" and b"application/json" in head, answer[:300]
    error = json.loads(body)
    assert error["code"] == "BAD_REQUEST" and "bytearray" not in error["errorReason"], error
    assert "Traceback" not in guarded.log_path.read_text()
    assert guarded.get("/healthz").status == 200


def test_a_header_dripping_connection_is_closed_within_the_header_timeout(guarded):
    s = connect(guarded)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
    started = time.monotonic()
    closed = None
    while closed is None and time.monotonic() - started < HEADER_TIMEOUT_S + 4:
        try:
            s.sendall(b"X")  # one byte of a header line every 0.2 s: never complete
        except OSError:
            closed = time.monotonic() - started
            break
        closed = closed_by_server(s, 0.2)
    s.close()
    assert closed is not None, "the server kept a header-dripping connection open"
    assert closed < HEADER_TIMEOUT_S + 2
    assert guarded.get("/healthz").status == 200


def test_an_idle_body_is_dropped_but_a_slow_steady_one_is_not(guarded):
    head = (b"POST /api/v1/pprof/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n")
    idle = connect(guarded)
    idle.sendall(head % 100 + b'{"serviceId"')
    closed = closed_by_server(idle, BODY_IDLE_TIMEOUT_S + 4)
    idle.close()
    assert closed is not None and closed < BODY_IDLE_TIMEOUT_S + 2, "an idle upload kept its connection"

    # A body that takes longer than the idle timeout in total, never pausing that long, is served.
    body = json.dumps(task_body(events="HEAP")).encode()
    steady = connect(guarded)
    steady.sendall(head % len(body))
    started = time.monotonic()
    for i in range(0, len(body), len(body) // 8 + 1):
        steady.sendall(body[i:i + len(body) // 8 + 1])
        time.sleep(BODY_IDLE_TIMEOUT_S / 3)
    assert time.monotonic() - started > BODY_IDLE_TIMEOUT_S * 2
    steady.settimeout(30)
    answer = steady.recv(65536)
    steady.close()
    assert answer.startswith(b"HTTP/1.1 201"), answer


def test_connections_beyond_the_cap_are_refused_and_service_resumes(guarded):
    held = [connect(guarded) for _ in range(MAX_CONNECTIONS)]
    try:
        extra = connect(guarded)
        extra.settimeout(5)
        refusal = extra.recv(65536)
        extra.close()
        assert refusal.startswith(b"HTTP/1.1 503"), refusal
        body = json.loads(refusal.split(b"\r\n\r\n", 1)[1])
        assert body["code"] == "UNAVAILABLE" and str(MAX_CONNECTIONS) in body["errorReason"]
    finally:
        for s in held:
            s.close()
    wait_until(lambda: guarded.get("/healthz").status == 200, timeout=10, message="served again")
    assert guarded.post("/api/v1/pprof/tasks", task_body(events="GOROUTINE")).status == 201


def test_unknown_ids_are_answered_fast_and_their_echo_is_capped(guarded):
    guarded.get(f"/api/v1/pprof/tasks/{uuid.uuid4()}")  # the first lookup opens its connection
    started = time.monotonic()
    for _ in range(50):
        r = guarded.get(f"/api/v1/pprof/tasks/{uuid.uuid4()}")
        assert r.status == 404 and r.json()["code"] == "NOT_FOUND", r
    elapsed = time.monotonic() - started
    assert elapsed < 2.5, f"50 unknown-id GETs took {elapsed:.2f} s"

    long_id = "x" * 6000
    r = guarded.get(f"/api/v1/pprof/tasks/{long_id}")
    assert r.status == 404, r
    reason = r.json()["errorReason"]
    assert len(reason) < 200 and "(6000 characters)" in reason, reason
    r = guarded.post("/api/v1/pprof/agent/errors", {"taskId": long_id, "serviceInstance": "i"})
    assert r.status == 404 and len(r.json()["errorReason"]) < 200, r



def test_the_grpc_port_takes_no_more_connections_than_the_cap_and_serves_again(guarded, swclient):
    """Raw HTTP/2 connections by the hundred, no call on them: the gRPC port keeps maxConnections
    of them and closes the rest at once (they took the process to its last open file), and
    agents are served again once they are gone."""
    import os
    import subprocess

    def open_files() -> int:
        return len(os.listdir(f"/proc/{guarded.proc.pid}/fd"))

    before = open_files()
    host, port = guarded.grpc_target.rsplit(":", 1)
    flood, closed = [], set()
    for _ in range(MAX_CONNECTIONS * 4):
        s = socket.create_connection((host, int(port)), timeout=10)
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        flood.append(s)

    def count_closed() -> int | None:
        for i, s in enumerate(flood):
            if i not in closed and _closed_by_server(s):
                closed.add(i)
        return len(closed) if len(closed) >= MAX_CONNECTIONS * 3 else None

    try:
        wait_until(count_closed, timeout=30, message="connections past the cap closed")
        assert len(closed) == MAX_CONNECTIONS * 3  # and the cap's are kept
        assert open_files() - before <= MAX_CONNECTIONS + 10  # a few of Kafka's and chDB's come and go
        assert guarded.get("/healthz").status == 200  # HTTP has connections of its own
    finally:
        for s in flood:
            s.close()
    def polled():
        try:
            r = subprocess.run([str(swclient), "-target", guarded.grpc_target, "poll", "-service", "after-flood",
                                "-instance", "i-1"], capture_output=True, text=True, timeout=10)
        except subprocess.TimeoutExpired:
            return None
        return r if r.returncode == 0 else None

    out = wait_until(polled, timeout=60, message="gRPC served again")
    assert not json.loads(out.stdout).get("commands")


def _closed_by_server(s: socket.socket) -> bool:
    """Whether the server closed s, reading what it sent (HTTP/2 settings) meanwhile."""
    s.settimeout(0.01)
    try:
        while s.recv(65536):
            pass
        return True
    except TimeoutError:
        return False
    except ConnectionResetError:
        return True
