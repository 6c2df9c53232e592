"""Faults, with real processes killed: a Kafka broker of a 3-node cluster, an ingest replica
mid-upload, the processor mid-batch, ClickHouse away for 30 s. After each, every accepted
profile is counted exactly once and every task's progress is right. `make chaos` runs these."""
import http.client
import time
import urllib.parse

import pytest

from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.harness import KafkaCluster, Proftask, new_topic_prefix, wait_until
from tests.integration.profiles import analysis, create_task, logs_of, upload, wait_finished



def small_profile():
    return require_conformance() / "go/pprof-sample.cpu.pb.gz"


def upload_as_agent(stack, task_id, instance, body, key, give_up_s=90):
    """What the Go agent does: retry under one Idempotency-Key until the upload is accepted."""
    deadline = time.monotonic() + give_up_s
    while True:
        r = upload(stack, task_id, instance, body, key=key)
        if r.status == 202 or time.monotonic() > deadline:
            return r
        time.sleep(0.5)


def assert_counted_once(stack, task_id, instances, profile_path, sample_type="cpu"):
    done = wait_finished(stack, task_id, instances, timeout=180)
    assert done["errorInstanceIds"] == []
    finished = logs_of(stack, task_id, "EXECUTION_FINISHED")
    assert sorted(entry["instanceId"] for entry in finished) == sorted(instances)  # once per instance
    want = oracle_tree([profile_path], sample_type=sample_type)["total"] * len(instances)
    assert analysis(stack, task_id, sampleType=sample_type, maxNodes=10)["tree"]["elements"][0]["total"] == want


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    c = KafkaCluster(tmp_path_factory.mktemp("kafka-cluster"))
    c.start()
    yield c
    c.stop()


def test_a_kafka_broker_killed_during_a_stream_of_uploads(cluster, tmp_path_factory, output_dir):
    stack = Proftask("all", cluster, tmp_path_factory.mktemp("proftask"), new_topic_prefix(), output_dir,
                     {"PROFTASK_KAFKA_REPLICATION_FACTOR": "3"})
    try:
        stack.start()
        pods = [f"pod-{i}" for i in range(40)]
        task_id = create_task(stack, pods, events="CPU", duration=5)
        body = small_profile().read_bytes()
        replies, readiness = [], []
        for i, pod in enumerate(pods):
            if i == 12:
                cluster.kill(1)  # the first bootstrap server, a controller voter and partition leader
            replies.append(upload_as_agent(stack, task_id, pod, body, key=f"{pod}-attempt"))
            if i >= 12:
                readiness.append(stack.get("/readyz").json()["checks"]["kafka"])
        assert {r.status for r in replies} == {202}, [r for r in replies if r.status != 202][:3]
        # two nodes of three answer: Kafka is there (its readiness asked a random node, and came and went)
        for _ in range(10):
            readiness.append(stack.get("/readyz").json()["checks"]["kafka"])
            time.sleep(1)
        assert all(readiness), readiness
        assert_counted_once(stack, task_id, pods, small_profile())
        # the broker comes back and nothing changes
        cluster.restart()
        assert_counted_once(stack, task_id, pods, small_profile())
    finally:
        stack.stop()
        cluster.restart()


def send_half_then_die(replica: Proftask, task_id: str, instance: str, body: bytes, key: str) -> None:
    """Stream the first half of an upload to `replica`, then SIGKILL it: the connection breaks."""
    url = urllib.parse.urlsplit(replica.base)
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    conn.putrequest("POST", f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance={instance}")
    conn.putheader("Content-Length", str(len(body)))
    conn.putheader("Idempotency-Key", key)
    conn.endheaders()
    conn.send(body[: len(body) // 2])
    replica.kill()
    with pytest.raises((ConnectionError, http.client.HTTPException, OSError)):
        conn.send(body[len(body) // 2:])
        conn.getresponse()
    conn.close()


def test_an_ingest_replica_killed_mid_upload(spawn):
    prefix = new_topic_prefix()
    main = spawn("all", prefix=prefix)
    doomed = spawn("ingest", prefix=prefix)
    profile = require_conformance() / "large/pprof-large.cpu.pb.gz"
    body = profile.read_bytes()
    task_id = create_task(main, ["pod-a", "pod-b"], events="CPU", duration=5)
    wait_until(lambda: doomed.get(f"/api/v1/pprof/tasks/{task_id}/progress").status in (404, 200) and
               upload(doomed, task_id, "pod-z", b"").status == 409)  # the replica knows the task

    send_half_then_die(doomed, task_id, "pod-a", body, key="pod-a-1")
    assert upload_as_agent(main, task_id, "pod-a", body, key="pod-a-1").status == 202  # the retry, elsewhere

    # a replica that took the whole upload and died before the agent saw the answer
    second = spawn("ingest", prefix=prefix)
    wait_until(lambda: upload(second, task_id, "pod-z", b"").status == 409)
    assert upload(second, task_id, "pod-b", body, key="pod-b-1").status == 202
    second.kill()
    again = upload_as_agent(main, task_id, "pod-b", body, key="pod-b-1")
    assert again.status == 202
    assert_counted_once(main, task_id, ["pod-a", "pod-b"], profile)


def test_the_processor_killed_and_restarted_mid_batch(spawn, tmp_path_factory):
    prefix = new_topic_prefix()
    data_dir = tmp_path_factory.mktemp("proftask")
    ingest = spawn("ingest", prefix=prefix)
    processor = spawn("all", prefix=prefix, data_dir=data_dir)
    profile = require_conformance() / "large/pprof-large.cpu.pb.gz"
    pods = [f"pod-{i}" for i in range(16)]
    task_id = create_task(processor, pods, events="CPU", duration=5)
    wait_until(lambda: upload(ingest, task_id, "pod-zz", b"").status == 409)
    for pod in pods:
        assert upload(ingest, task_id, pod, profile, key=pod).status == 202
    # kill while profiles are being stored: some are, some are not yet
    wait_until(lambda: 2 <= len(logs_of(processor, task_id, "EXECUTION_FINISHED")), timeout=120)
    stored_before = len(logs_of(processor, task_id, "EXECUTION_FINISHED"))
    processor.kill()
    assert stored_before < len(pods), "the batch finished before the kill; the test proves nothing"
    processor.start()
    assert_counted_once(processor, task_id, pods, profile)


def test_clickhouse_unavailable_for_30_seconds(spawn, tmp_path):
    outage = tmp_path / "clickhouse-down"
    stack = spawn("all", PROFTASK_FAULT_CLICKHOUSE_OUTAGE_FILE=str(outage))
    pods = [f"pod-{i}" for i in range(10)]
    task_id = create_task(stack, pods, events="CPU", duration=5)
    wait_until(lambda: stack.get(f"/api/v1/pprof/tasks/{task_id}/progress").status == 200)
    outage.touch()
    began = time.monotonic()
    for pod in pods:  # ingest needs no ClickHouse: uploads go on being accepted
        assert upload(stack, task_id, pod, small_profile()).status == 202
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/progress")
    assert r.status == 503 and r.json()["code"] == "UNAVAILABLE"
    time.sleep(max(0.0, 30 - (time.monotonic() - began)))  # the outage lasts 30 s
    outage.unlink()
    assert_counted_once(stack, task_id, pods, small_profile())
    log = (stack.log_path).read_text()
    assert "fault injected" in log  # the processor met the outage and waited it out
