"""`proftask serve ROLE` runs one part; every part answers /healthz, /readyz and /metrics."""
import threading
import time
import uuid

import pytest

from tests.integration.harness import KafkaBroker, Proftask, free_port, new_topic_prefix, wait_until



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
