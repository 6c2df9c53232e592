"""Many concurrent uploads of a profile near pprofMaxSize against `proftask serve all`: how each
attempt is answered (202, 503 + Retry-After, other), how long until every instance is stored, and
the peak RSS of the server and its CPU workers. Starts its own broker and server.

    .venv/bin/python -m bench.big_uploads [--uploads 30] [--size-mb 30] [--env NAME=VALUE ...]
"""
from __future__ import annotations

import argparse
import collections
import concurrent.futures
import json
import pathlib
import socket
import tempfile
import threading
import time
import urllib.parse

from bench.big_profile import big_profile
from tests.integration.harness import KafkaBroker, Proftask, new_topic_prefix
from tests.integration.profiles import create_task, progress, upload

OUT = pathlib.Path(__file__).resolve().parents[1] / "test-output"


def cached_big_profile(size_mb: float) -> pathlib.Path:
    path = pathlib.Path(tempfile.gettempdir()) / f"proftask-big-profile-{size_mb:g}mb.pb.gz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(big_profile(int(size_mb * 1024 * 1024)))
        tmp.rename(path)
    return path


def process_tree(pid: int) -> list[int]:
    out = [pid]
    for task in pathlib.Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            out += process_tree(int(child))
    return out


def status_kb(pid: int, field: str) -> int:
    try:
        for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssWatch:
    """Peak RSS (VmHWM) of the server and of every child seen while it runs."""

    def __init__(self, pid: int):
        self.pid, self.peaks, self._stop = pid, {}, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.2):
            for pid in process_tree(self.pid):
                self.peaks[pid] = max(self.peaks.get(pid, 0), status_kb(pid, "VmHWM"))

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def upload_expecting_continue(p: Proftask, task_id: str, instance: str, data: bytes, key: str) -> tuple[int, dict]:
    """POST as the Go agent does it (Expect: 100-continue): the body only goes after 100 Continue,
    so a refusal costs no transfer. Returns (status, headers)."""
    url = urllib.parse.urlsplit(p.base)
    path = f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance={instance}"
    with socket.create_connection((url.hostname, url.port), timeout=600) as s:
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: {url.netloc}\r\nContent-Type: application/octet-stream\r\n"
                  f"Content-Length: {len(data)}\r\nIdempotency-Key: {key}\r\nExpect: 100-continue\r\n"
                  f"Connection: close\r\n\r\n".encode())
        reader = s.makefile("rb")
        status, headers = _response_head(reader)
        if status == 100:
            s.sendall(data)
            status, headers = _response_head(reader)
        return status, headers


def _response_head(reader) -> tuple[int, dict]:
    status = int(reader.readline().split()[1])
    headers = {}
    while (line := reader.readline().strip()):
        name, _, value = line.decode().partition(":")
        headers[name.strip().lower()] = value.strip()
    if status != 100:
        reader.read(int(headers.get("content-length", 0)))
    return status, headers


def upload_until_accepted(p: Proftask, task_id: str, instance: str, data: bytes, deadline: float,
                          expect: bool) -> list:
    """The agent's behaviour: retry a 503 after its Retry-After, under the same Idempotency-Key."""
    answers = []
    while time.monotonic() < deadline:
        if expect:
            status, headers = upload_expecting_continue(p, task_id, instance, data, f"bench-{instance}")
        else:
            r = upload(p, task_id, instance, data, key=f"bench-{instance}")
            status, headers = r.status, {k.lower(): v for k, v in r.headers.items()}
        answers.append(status)
        if status != 503:
            break
        time.sleep(float(headers.get("retry-after", "1")))
    return answers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--uploads", type=int, default=30)
    ap.add_argument("--size-mb", type=float, default=30)
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--env", action="append", default=[], help="NAME=VALUE for the server")
    ap.add_argument("--no-expect", action="store_true",
                    help="send bodies at once (urllib) instead of Expect: 100-continue as the Go agent does")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    data = cached_big_profile(args.size_mb).read_bytes()
    env = dict(e.split("=", 1) for e in args.env)
    with tempfile.TemporaryDirectory(prefix="proftask-bench-") as tmp:
        work = pathlib.Path(tmp)
        broker = KafkaBroker(work / "kafka")
        broker.start()
        p = None
        try:
            p = Proftask("all", broker, work / "data", new_topic_prefix(), OUT, env).start()
            names = [f"big-{n:02d}" for n in range(args.uploads)]
            task_id = create_task(p, names, events="CPU", duration=1)
            started = time.monotonic()
            deadline = started + args.timeout
            with RssWatch(p.proc.pid) as rss:
                with concurrent.futures.ThreadPoolExecutor(args.uploads) as agents:
                    answers = list(agents.map(lambda n: upload_until_accepted(p, task_id, n, data, deadline,
                                                                            not args.no_expect), names))
                uploaded = time.monotonic() - started
                stored, failed = [], []
                while time.monotonic() < deadline:
                    pr = progress(p, task_id)
                    stored, failed = pr["successInstanceIds"], pr["errorInstanceIds"]
                    if len(stored) + len(set(failed) - set(stored)) >= args.uploads:
                        break
                    accepted = sum(1 for a in answers if a and a[-1] == 202)
                    if len(stored) >= accepted:
                        break
                    time.sleep(0.5)
                finished = time.monotonic() - started
            first = collections.Counter(a[0] for a in answers if a)
            final = collections.Counter(a[-1] for a in answers if a)
            server_kb = rss.peaks.get(p.proc.pid, 0)
            workers_kb = sorted((kb for pid, kb in rss.peaks.items() if pid != p.proc.pid), reverse=True)
            print(json.dumps({
                "case": "big_uploads", "uploads": args.uploads, "bytes": len(data), "env": env,
                "expect_100_continue": not args.no_expect,
                "first_answers": dict(first), "final_answers": dict(final),
                "attempts": sum(len(a) for a in answers),
                "stored": len(stored), "failed_instances": sorted(set(failed) - set(stored)),
                "upload_seconds": round(uploaded, 1), "until_all_stored_seconds": round(finished, 1),
                "server_peak_rss_mb": round(server_kb / 1024),
                "worker_peak_rss_mb": [round(k / 1024) for k in workers_kb],
                "server_rss_after_mb": round(status_kb(p.proc.pid, "VmRSS") / 1024),
            }), flush=True)
        finally:
            if p is not None:
                p.stop()
            broker.stop()


if __name__ == "__main__":
    main()
