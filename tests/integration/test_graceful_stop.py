"""A graceful stop (SIGTERM, as `make down` or a rolling restart sends) or a crash (SIGKILL) of
the process that stores profiles, while it folds and writes a burst of large ones, loses none and
counts none twice: after the restart every instance finishes and the merged tree sums every
profile once. Faust used to acknowledge the
batches in flight as their actors were cancelled and commit them on the way out, unwritten:
5 to 7 of 10 instances finished, in 14 runs out of 15. And with the actors acking out of order,
Faust committed past an offset still in flight (faust-streaming #606, proftask.faust_commits):
1 run of 5 ended with an instance never finished."""
from __future__ import annotations

import json
import signal
import socket
import time

import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.harness import new_topic_prefix, wait_until
from tests.integration.profiles import analysis, create_task, progress, upload

INSTANCES = 10


def _serving_with_one_large_stored(spawn, tmp_path):
    """A `serve all` that stored one large profile: it, its data and topics, the profile's bytes
    and its tree's root total (what a restarted process's trees are checked against)."""
    body = (require_conformance() / "large" / "pprof-large.cpu.pb.gz").read_bytes()
    data, prefix = tmp_path / "data", new_topic_prefix()
    p = spawn("all", prefix=prefix, data_dir=data)
    one = create_task(p, ["one"], events="CPU", duration=1)
    assert upload(p, one, "one", body).status == 202
    wait_until(lambda: progress(p, one)["successInstanceIds"] == ["one"], timeout=120)
    return p, data, prefix, body, analysis(p, one)["tree"]["elements"][0]["total"]


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stop_mid_burst_loses_no_profile(spawn, tmp_path, stop):
    p, data, prefix, body, one_total = _serving_with_one_large_stored(spawn, tmp_path)
    names = [f"pod-{i}" for i in range(INSTANCES)]
    task_id = create_task(p, names, events="CPU", duration=1)
    for name in names:
        assert upload(p, task_id, name, body).status == 202
    # stopped once the first profiles are stored and the rest are folding or being written
    wait_until(lambda: len(progress(p, task_id)["successInstanceIds"]) >= 1, timeout=120, interval=0.02)
    assert len(progress(p, task_id)["successInstanceIds"]) < INSTANCES, "the stop came too late to test"
    p.proc.send_signal(stop)
    assert p.proc.wait(60) == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    again = spawn("all", prefix=prefix, data_dir=data)
    wait_until(lambda: len(progress(again, task_id)["successInstanceIds"]) == INSTANCES, timeout=120,
               interval=0.2, message="every instance finishes after the restart")
    assert analysis(again, task_id)["tree"]["elements"][0]["total"] == INSTANCES * one_total


class ArrivingUpload:
    """An agent's upload sent by hand: headers (with `Expect: 100-continue`, as the Go agent and
    curl send them), then the body in as many writes as the test chooses."""

    def __init__(self, p, task_id: str, instance: str, body: bytes):
        host, port = p.base.split("//")[1].split(":")
        self.sock = socket.create_connection((host, int(port)), timeout=30)
        self.sock.sendall((f"POST /api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance={instance} HTTP/1.1\r\n"
                           f"Host: {host}\r\nContent-Type: application/octet-stream\r\n"
                           f"Content-Length: {len(body)}\r\nExpect: 100-continue\r\n\r\n").encode())
        assert self.sock.recv(1024).startswith(b"HTTP/1.1 100 Continue")

    def send(self, part: bytes) -> None:
        self.sock.sendall(part)

    def answer(self) -> tuple[int, dict[str, str], dict]:
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            chunk = self.sock.recv(65536)
            assert chunk, f"the connection closed without a whole answer: {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        headers = dict(line.split(": ", 1) for line in lines[1:])
        self.sock.close()
        return int(lines[0].split()[1]), headers, json.loads(body)


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0


def test_a_stop_receives_the_uploads_still_arriving_and_refuses_in_time_those_that_stall(spawn, tmp_path):
    # aiohttp's shutdown drops the bytes that arrive after it begins: an upload still arriving
    # at a stop got no answer, and the stop took aiohttp's 60 s (make down killed it at 20 s)
    p, data, prefix, body, one_total = _serving_with_one_large_stored(spawn, tmp_path)
    half = len(body) // 2

    task_id = create_task(p, ["arriving", "stalled"], events="CPU", duration=1)
    arriving, stalled = ArrivingUpload(p, task_id, "arriving", body), ArrivingUpload(p, task_id, "stalled", body)
    arriving.send(body[:half])
    stalled.send(body[:half])  # and never the rest
    stopped = time.monotonic()
    p.terminate()
    wait_until(lambda: "proftask all: stopping" in p.log_path.read_text(), message="the stop began")
    arriving.send(body[half:])
    assert arriving.answer()[0] == 202, "an upload whose body arrives during the stop is received"
    status, headers, answer = stalled.answer()
    assert (status, answer["code"], headers["Retry-After"]) == (503, "UNAVAILABLE", "2")
    assert "send it again" in answer["errorReason"]
    assert p.proc.wait(30) == 0
    assert time.monotonic() - stopped < 18, "within deploy/standalone.sh's 20 s before it kills"

    again = spawn("all", prefix=prefix, data_dir=data)
    wait_until(lambda: progress(again, task_id)["successInstanceIds"] == ["arriving"], timeout=120,
               message="the upload received during the stop is stored")
    assert progress(again, task_id)["errorInstanceIds"] == [], "a refusal to send again is not a failure"
    assert upload(again, task_id, "stalled", body).status == 202  # the agent sends it again
    wait_until(lambda: sorted(progress(again, task_id)["successInstanceIds"]) == ["arriving", "stalled"],
               timeout=120)
    assert analysis(again, task_id)["tree"]["elements"][0]["total"] == 2 * one_total
