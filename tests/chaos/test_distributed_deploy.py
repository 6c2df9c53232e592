"""deploy/distributed.sh as an operator runs it: a 3-node Kafka cluster, two task_svc and two
ingest_svc behind nginx, gRPC, processor and query; an ingest replica dies and uploads go on."""
import os
import signal
import subprocess

import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.harness import ROOT, HttpClient, free_port, free_port_block
from tests.integration.profiles import analysis, create_task, upload, wait_finished



@pytest.fixture(scope="module")
def distributed(tmp_path_factory):
    data = tmp_path_factory.mktemp("dist")
    ports = [free_port() for _ in range(6)]
    env = dict(os.environ, DATA=str(data), HTTP_PORT=str(free_port()), GRPC_PORT=str(free_port()),
               PORT_BASE=str(free_port_block(6)),
               KAFKA_PORTS=",".join(map(str, ports[:3])), KAFKA_CONTROLLER_PORTS=",".join(map(str, ports[3:])))
    script = str(ROOT / "deploy/distributed.sh")
    up = subprocess.run([script, "up"], env=env, capture_output=True, text=True, timeout=600)
    try:
        assert up.returncode == 0, up.stdout[-2000:] + up.stderr[-4000:]
        yield HttpClient(f"http://127.0.0.1:{env['HTTP_PORT']}"), data
    finally:
        subprocess.run([script, "down"], env=env, capture_output=True, timeout=300)


def test_uploads_go_on_when_an_ingest_replica_dies(distributed):
    lb, data = distributed
    profile = require_conformance() / "go/pyroscope-heap.pb.gz"
    pods = [f"pod-{i}" for i in range(6)]
    task_id = create_task(lb, pods)
    for pod in pods[:3]:
        assert upload(lb, task_id, pod, profile).status == 202
    os.kill(int((data / "ingest-1" / "pid").read_text()), signal.SIGKILL)
    for pod in pods[3:]:
        assert upload(lb, task_id, pod, profile).status == 202  # nginx retries on ingest-2
    wait_finished(lb, task_id, pods, timeout=120)
    elements = analysis(lb, task_id, maxNodes=5)["tree"]["elements"]
    assert elements[0]["total"] > 0 and lb.get("/").status == 200  # the UI, through the balancer
