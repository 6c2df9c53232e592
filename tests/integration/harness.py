"""Real processes for integration tests: an Apache Kafka broker started by deploy/kafka/kafka.sh
and `proftask serve` processes, each on free ports with its own directories, so the suite runs
beside a `make up` stack without touching it."""
from __future__ import annotations

import asyncio
import json
import os
import pathlib
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from typing import Any
from collections.abc import Callable, Iterator

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROFTASK = str(pathlib.Path(sys.executable).parent / "proftask")


def free_port_block(n: int) -> int:
    """A base port such that base+1 … base+n are free now (all from this worker's ports)."""
    for _ in range(200):
        base = next(_worker_ports)
        block = list(range(base, base + n + 1))
        if (_SLICE is None or base + n < sum(_SLICE)) and not _HANDED_OUT.intersection(block) \
                and all(map(_is_free, block)):
            _HANDED_OUT.update(block)
            return base
    raise RuntimeError(f"no block of {n} free ports")


def _is_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _slice_of_this_worker() -> tuple[int, int] | None:
    """Ports below the kernel's ephemeral range, a slice of their own per xdist worker.

    A port the kernel hands out for `bind(0)` is in the ephemeral range, which every outgoing
    connection (Kafka clients, curl, the agents) also draws its local port from: between picking
    such a port and a server binding it, a connection could take it ("address already in use",
    seen in CI). Below the range only listeners bind, and the per-worker slice keeps two test
    workers from choosing the same port. None when the range leaves no room below it."""
    try:
        low = int(pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(worker[2:]) if worker[2:].isdigit() else 0
    start, size = 10000 + (index % 8) * 2000, 2000
    return (start, size) if start + size <= low else None


def _ports_of_this_worker() -> Iterator[int]:
    if _SLICE is None:
        while True:
            yield _kernel_port()
    start, size = _SLICE
    # Drawn at random, each once: two test sessions on one machine (a helper's, the CI's) do not
    # walk the same sequence, and a port just released (TIME_WAIT, a slow exit) is not reused.
    while True:
        for offset in random.sample(range(size), size):
            if start + offset not in _HANDED_OUT:
                yield start + offset
        _HANDED_OUT.clear()  # all handed out once: their tests are long over


_HANDED_OUT: set[int] = set()  # ports given to a test, not given again (a block's too)


_SLICE = _slice_of_this_worker()
_worker_ports = _ports_of_this_worker()


def free_port() -> int:
    for _ in range(4000):
        port = next(_worker_ports)
        if _is_free(port):
            _HANDED_OUT.add(port)
            return port
    raise RuntimeError("no free port")


def wait_until(condition: Callable[[], Any], timeout: float = 30, interval: float = 0.05,
               message: str = "condition") -> Any:
    """Polls until condition() returns something truthy; returns it."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"{message} not met within {timeout}s (last: {last!r})")


class KafkaBroker:
    def __init__(self, data_dir: pathlib.Path):
        self.data_dir = data_dir
        self.port, self.controller_port = free_port(), free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"

    def start(self) -> None:
        subprocess.run([str(ROOT / "deploy/kafka/kafka.sh"), "start", str(self.data_dir),
                        str(self.port), str(self.controller_port)], check=True)
        subprocess.run([PROFTASK, "kafka", "wait", "--kafka", self.bootstrap, "--timeout", "120"],
                       check=True, stdout=subprocess.DEVNULL)

    def stop(self) -> None:
        subprocess.run([str(ROOT / "deploy/kafka/kafka.sh"), "stop", str(self.data_dir)], check=False)


def set_max_message_bytes(broker: KafkaBroker, topic: str, limit: int) -> None:
    """The largest record batch the broker takes on `topic`: one below a send makes Kafka refuse it."""
    async def alter() -> None:
        admin = AIOKafkaAdminClient(bootstrap_servers=broker.bootstrap)
        await admin.start()
        try:
            await admin.alter_configs([ConfigResource(ConfigResourceType.TOPIC, topic,
                                                      configs={"max.message.bytes": str(limit)})])
        finally:
            await admin.close()

    asyncio.run(alter())


class KafkaCluster:
    """Three KRaft nodes (replication 3, min ISR 2), as deploy/kafka/kafka.sh cluster-start runs them."""

    def __init__(self, data_dir: pathlib.Path):
        self.data_dir = data_dir
        self.ports = [free_port() for _ in range(3)]
        self.controller_ports = [free_port() for _ in range(3)]
        self.bootstrap = ",".join(f"127.0.0.1:{p}" for p in self.ports)

    def _kafka(self, *args: str) -> None:
        subprocess.run([str(ROOT / "deploy/kafka/kafka.sh"), *args], check=True)

    def start(self) -> None:
        self._kafka("cluster-start", str(self.data_dir), ",".join(map(str, self.ports)),
                    ",".join(map(str, self.controller_ports)))
        subprocess.run([PROFTASK, "kafka", "wait", "--kafka", self.bootstrap, "--timeout", "120"],
                       check=True, stdout=subprocess.DEVNULL)

    def node_dir(self, node: int) -> pathlib.Path:
        return self.data_dir / f"node-{node}"

    def kill(self, node: int) -> None:
        """SIGKILL one node (1..3): a crash, not a shutdown."""
        self._kafka("kill", str(self.node_dir(node)))

    def restart(self) -> None:
        """Start whichever nodes are down (cluster-start skips the running ones)."""
        self.start()

    def stop(self) -> None:
        subprocess.run([str(ROOT / "deploy/kafka/kafka.sh"), "cluster-stop", str(self.data_dir)], check=False)


class Response:
    def __init__(self, status: int, body: bytes, headers: dict[str, str] | None = None):
        self.status, self.body, self.headers = status, body, headers or {}

    def json(self) -> Any:
        return json.loads(self.body)

    def __repr__(self) -> str:
        return f"<{self.status} {self.body[:300]!r}>"


class HttpClient:
    """JSON over HTTP to `base`, answering a Response even for errors and refused connections."""

    def __init__(self, base: str):
        self.base = base

    def request(self, method: str, path: str, body: Any = None, raw: bytes | None = None,
                headers: dict[str, str] | None = None, timeout: float = 60) -> Response:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return Response(r.status, r.read(), dict(r.headers))
        except urllib.error.HTTPError as e:
            return Response(e.code, e.read(), dict(e.headers))
        except ConnectionError:
            return Response(0, b"")
        except urllib.error.URLError:
            return Response(0, b"")

    def get(self, path: str, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw) -> Response:
        return self.request("POST", path, body, **kw)


class Proftask(HttpClient):
    """One `proftask serve ROLE` process."""

    def __init__(self, role: str, broker: KafkaBroker, data_dir: pathlib.Path, topic_prefix: str,
                 log_dir: pathlib.Path, extra_env: dict[str, str] | None = None):
        self.role, self.broker, self.data_dir, self.topic_prefix = role, broker, data_dir, topic_prefix
        self.port = free_port()
        super().__init__(f"http://127.0.0.1:{self.port}")
        self.grpc_port = free_port()
        self.grpc_target = f"127.0.0.1:{self.grpc_port}"
        self.log_path = log_dir / f"proftask-{role}-{self.port}.log"
        self.extra_env = extra_env or {}
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict[str, str]:
        return dict(os.environ, PROFTASK_KAFKA_BOOTSTRAP=self.broker.bootstrap,
                    PROFTASK_KAFKA_TOPIC_PREFIX=self.topic_prefix, PROFTASK_DATA_DIR=str(self.data_dir),
                    PROFTASK_HTTP_PORT=str(self.port), PROFTASK_GRPC_PORT=str(self.grpc_port),
                    PROFTASK_KAFKA_PARTITIONS="4", **self.extra_env)

    def start(self, wait: bool = True) -> Proftask:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([PROFTASK, "serve", self.role], env=self.env(), stdout=log,
                                     stderr=subprocess.STDOUT, cwd=ROOT)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout: float = 120) -> None:
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"proftask {self.role} exited {self.proc.returncode}: "
                                     + self.log_path.read_text()[-3000:])
            return self.get("/readyz").status == 200

        wait_until(ready, timeout, interval=0.2, message=f"proftask {self.role} ready")

    def stop(self) -> None:
        stop_all([self])

    def terminate(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)

    def reap(self, deadline: float) -> None:
        if self.proc is None:
            return
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def kill(self) -> None:
        """SIGKILL: no shutdown, no commit, no flush."""
        self.proc.kill()
        self.proc.wait()

    def cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """Run another `proftask` command with this process's configuration."""
        return subprocess.run([PROFTASK, *args], env=self.env(), capture_output=True, text=True,
                              timeout=timeout, cwd=ROOT)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None


def stop_all(procs: list[Proftask], grace: float = 30) -> None:
    """SIGTERM to all at once, then wait: shutting down one after the other cost minutes."""
    for p in procs:
        p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.reap(deadline)


def new_topic_prefix() -> str:
    return f"t{uuid.uuid4().hex[:8]}."
