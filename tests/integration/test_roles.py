"""`proftask serve ROLE` runs one part; every part answers /healthz, /readyz and /metrics."""
import concurrent.futures
import os
import resource
import signal
import subprocess
import threading
import time
import uuid

import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.harness import PROFTASK, KafkaBroker, Proftask, free_port, new_topic_prefix, wait_until
from tests.integration.profiles import create_task, upload



@pytest.mark.parametrize("role,own_route,own_answer,foreign_route", [
    ("task", "/api/v1/pprof/tasks", {"tasks": []}, "/api/v1/pprof/tasks/x/progress"),
    ("ingest", None, None, "/api/v1/pprof/tasks"),
    ("query", "/api/v1/pprof/tasks/x/progress", {"code": "NOT_FOUND", "errorReason": 'task "x" not found'},
     "/api/v1/pprof/agent/commands"),
    ("processor", None, None, "/api/v1/pprof/tasks"),
])
def test_each_role_starts_alone_and_serves_only_its_routes(spawn, role, own_route, own_answer, foreign_route):
    p = spawn(role)
    ready = p.get("/readyz").json()
    assert ready["ready"] and ready["checks"]["kafka"]
    assert ("clickhouse" in ready["checks"]) == (role in ("query", "processor"))
    assert p.get("/healthz").status == 200 and b"proftask_" in p.get("/metrics").body
    if own_route:
        assert p.get(own_route).json() == own_answer
    foreign = p.get(foreign_route)
    assert foreign.status == 404 and foreign.json()["errorReason"] == "Not Found"  # no such route here


def unreachable_broker(broker: KafkaBroker) -> KafkaBroker:
    unreachable = type(broker).__new__(type(broker))
    unreachable.bootstrap = f"127.0.0.1:{free_port()}"  # nothing listens there
    return unreachable


def test_readyz_names_kafka_while_the_broker_is_unreachable(broker, tmp_path, output_dir):
    p = Proftask("task", unreachable_broker(broker), tmp_path, new_topic_prefix(), output_dir).start(wait=False)
    try:
        wait_until(lambda: p.get("/healthz").status == 200, timeout=30, message="alive")
        r = p.get("/readyz")
        assert r.status == 503 and "kafka" in r.json()["notReady"], r
    finally:
        p.stop()


def test_readyz_names_kafka_while_its_broker_hangs_or_dies_and_is_ready_again_when_it_is_back(tmp_path, output_dir):
    """Kafka checked as long as the process runs, not only at start: the clients retry a broker
    that hangs (SIGSTOP: its port still accepts) or dies on their own, and /readyz said ready."""
    own = KafkaBroker(tmp_path / "kafka")  # stopped below: not the session's broker
    own.start()
    p = Proftask("task,ingest", own, tmp_path / "data", new_topic_prefix(), output_dir)
    profile = require_conformance() / "go" / "pprof-sample.cpu.pb.gz"
    broker_pid = int((own.data_dir / "kafka.pid").read_text())

    def kafka_not_ready():
        r = p.get("/readyz")
        return r if r.status == 503 and "kafka" in r.json()["notReady"] else None

    try:
        p.start()
        task_id = create_task(p, ["i-1"], events="CPU", duration=1)
        os.kill(broker_pid, signal.SIGSTOP)
        try:
            wait_until(kafka_not_ready, timeout=30, message="kafka not ready while the broker hangs")
        finally:
            os.kill(broker_pid, signal.SIGCONT)
        wait_until(lambda: p.get("/readyz").status == 200, timeout=60, message="ready again")
        own.stop()
        wait_until(kafka_not_ready, timeout=30, message="kafka not ready while the broker is down")
        # and the requests that need it are answered "try again" (the producer gives a send 30 s
        # without progress), not held for minutes
        started = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(3) as clients:
            answers = [clients.submit(p.request, "POST", "/api/v1/pprof/tasks", {
                           "serviceId": "svc", "serviceInstanceIds": ["i-1"], "events": "HEAP"}, timeout=120),
                       clients.submit(upload, p, task_id, "i-1", profile, timeout=120),
                       clients.submit(p.request, "POST", "/api/v1/pprof/agent/errors",
                                      {"taskId": task_id, "serviceInstance": "i-1", "message": "boom"}, timeout=120)]
            for r in (answer.result() for answer in answers):
                assert r.status == 503 and r.json()["code"] == "UNAVAILABLE", r
        assert time.monotonic() - started < 45, time.monotonic() - started
        # aiokafka's retries meanwhile: ~13,000 lines a minute, now a few per line per 10 s
        kafka_lines = sum(" aiokafka" in line for line in p.log_path.read_text().splitlines())
        assert kafka_lines < 1_000, kafka_lines
        own.start()
        wait_until(lambda: p.get("/readyz").status == 200, timeout=120, message="ready again")
        r = p.post("/api/v1/pprof/tasks", {"serviceId": f"svc-{uuid.uuid4().hex[:8]}", "serviceInstanceIds": ["i-1"],
                                            "events": "HEAP"})
        assert r.status == 201, r
        assert upload(p, task_id, "i-1", profile).status == 202
    finally:
        p.stop()
        own.stop()


def test_proftask_up_runs_every_service_in_one_process(broker, tmp_path, output_dir):
    p = Proftask("all", broker, tmp_path, new_topic_prefix(), output_dir)
    with open(p.log_path, "ab") as log:
        p.proc = subprocess.Popen([PROFTASK, "up"], env=p.env(), stdout=log, stderr=subprocess.STDOUT)
    try:
        p.wait_ready()
        checks = p.get("/readyz").json()["checks"]
        assert {"clickhouse", "task_view", "agents_view", "processor.consumer", "agent_grpc"} <= set(checks)
        assert p.get("/api/v1/pprof/tasks").json() == {"tasks": []}
        assert p.post("/graphql", {"query": "{ version }"}).json() == {"data": {"version": "10.3"}}
    finally:
        p.stop()


def test_an_open_files_limit_that_leaves_no_room_for_connections_refuses_to_start_in_one_line(broker, tmp_path,
                                                                                              output_dir):
    """`ulimit -n 256`: the server took one connection at a time (the rest it keeps for Kafka,
    ClickHouse and its files), so a `make up` waiting for it to be ready gave up, leaving it on."""
    p = Proftask("task", broker, tmp_path, new_topic_prefix(), output_dir)
    done = subprocess.run([PROFTASK, "serve", "task"], env=p.env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (256, 256)))
    assert done.returncode == 1, done
    assert done.stderr.splitlines()[-1] == (
        "proftask serve: the open-files limit (ulimit -n) is 256: proftask keeps 256 for Kafka, ClickHouse and "
        "its files and needs 64 more for HTTP connections; raise it to at least 320"), done.stderr[-2000:]
    # with gRPC too, each port needs its own room: 320 is not enough for two
    done = subprocess.run([PROFTASK, "serve", "all"], env=p.env(), capture_output=True, text=True, timeout=60,
                          preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (320, 320)))
    assert done.returncode == 1, done
    assert done.stderr.splitlines()[-1] == (
        "proftask serve: the open-files limit (ulimit -n) is 320: proftask keeps 256 for Kafka, ClickHouse and "
        "its files and needs 64 more for the connections of each of its 2 ports; raise it to at least 384"), \
        done.stderr[-2000:]


def test_a_process_still_waiting_for_kafka_stops_at_once_on_sigterm(broker, tmp_path, output_dir):
    # `make down` while the broker is away: the wait for Kafka used to hold SIGTERM off for good
    p = Proftask("all", unreachable_broker(broker), tmp_path, new_topic_prefix(), output_dir).start(wait=False)
    try:
        wait_until(lambda: p.get("/healthz").status == 200, timeout=30, message="alive")
        p.terminate()
        assert p.proc.wait(timeout=10) == 0
        assert "proftask all: stopping" in p.log_path.read_text()
    finally:
        p.stop()


def test_a_stop_answers_the_agents_long_polls_at_once(broker, tmp_path, output_dir):
    # an agent waits up to 30 s for a command; the stop waited for every such poll to time out
    p = Proftask("task,query", broker, tmp_path, new_topic_prefix(), output_dir).start()  # query: GraphQL
    try:
        service, answer = f"svc-{uuid.uuid4().hex[:8]}", {}

        def poll():
            answer["reply"] = p.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance=i-1&wait=30")

        poller = threading.Thread(target=poll)
        poller.start()
        wait_until(lambda: any(s["name"] == service for s in p.post("/graphql", {
            "query": '{ listServices(layer: "GENERAL") { name } }'}).json()["data"]["listServices"]),
            message="the agent's poll arrived")
        started = time.monotonic()
        p.terminate()
        assert p.proc.wait(timeout=20) == 0
        poller.join(5)
        assert time.monotonic() - started < 5, "the stop waited for the long poll"
        assert answer["reply"].status == 200 and answer["reply"].json()["commands"] == []
    finally:
        p.stop()
