"""The real skywalking-go agent (the 0.7 source vendored in ../shared, built with its toolexec into
a small service by skywalking_agent/run.sh) runs CPU, HEAP, MUTEX and THREADCREATE tasks against
proftask, unchanged, with tokens on: it sends no token on its pprof calls, so it calls a gRPC
listener bound to its tenant. Restarted, it polls from time 0 and is not handed its old tasks.

Without the vendored source the test fails, saying where it looked: CI always has ../shared
beside the clone, so a missing fixture is a broken setup, not a reason to skip the real agent."""
import os
import pathlib
import subprocess

import pytest

from tests.conformance.oracle import oracle_tree
from tests.integration.harness import free_port, wait_until
from tests.integration.profiles import as_oracle_shape


RUN = pathlib.Path(__file__).resolve().parent / "skywalking_agent" / "run.sh"
SOURCE_MISSING = 3
TOKENS = "acme-user=acme:user,acme-agent=acme:agent,globex-user=globex:user"
SERVICE, INSTANCE = "sw-agent-demo", "sw-agent-demo-1"


def as_(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def instrumented_demo():
    built = subprocess.run(["bash", str(RUN), "build"], capture_output=True, text=True, timeout=1200)
    if built.returncode == SOURCE_MISSING:
        pytest.fail(built.stderr.strip())
    assert built.returncode == 0, built.stderr[-5000:]
    return built.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def acme(spawn):
    """Tokens on; the agent's tenant, acme, has its own gRPC listener."""
    port = free_port()
    p = spawn("all", PROFTASK_TOKENS=TOKENS, PROFTASK_GRPC_TENANT_LISTENERS=f"acme=127.0.0.1:{port}")
    p.acme_grpc_target = f"127.0.0.1:{port}"
    return p


class Demo:
    """The instrumented demo, as instance INSTANCE of SERVICE, its output in the test log."""

    def __init__(self, stack, output_dir: pathlib.Path, instance: str = INSTANCE, **env):
        self.env = dict(os.environ, SW_AGENT_NAME=SERVICE, SW_AGENT_INSTANCE_NAME=instance,
                        SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE=stack.acme_grpc_target, **env)
        self.log_path = output_dir / f"skywalking-agent-{instance}.log"
        self.proc = None

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(["bash", str(RUN), "run"], env=self.env, stdout=log,
                                         stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)


def create(stack, events: str, instance: str = INSTANCE, **kw) -> str:
    r = stack.post("/api/v1/pprof/tasks", {"serviceId": SERVICE, "serviceInstanceIds": [instance],
                                           "events": events, **kw}, headers=as_("acme-user"))
    assert r.status == 201, r
    return r.json()["id"]


def progress(stack, task_id: str) -> dict:
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=as_("acme-user"))
    assert r.status == 200, r
    return r.json()


def wait_finished(stack, task_id: str, timeout: float) -> dict:
    def finished():
        r = stack.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=as_("acme-user"))
        if r.status == 404:
            return None  # the task's row is on its way to ClickHouse
        pr = r.json()
        assert not pr["errorInstanceIds"], pr["logs"]
        return pr if pr["successInstanceIds"] == [INSTANCE] else None
    return wait_until(finished, timeout=timeout, interval=0.5, message=f"task {task_id} finished")


def analysis(stack, task_id: str, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    r = stack.get(f"/api/v1/pprof/tasks/{task_id}/analysis?{query}", headers=as_("acme-user"))
    assert r.status == 200, r
    return r.json()


def functions(result: dict) -> set[str]:
    return {e["codeSignature"] for e in result["tree"]["elements"][1:]}


@pytest.fixture(scope="module")
def first_run(instrumented_demo, acme, output_dir):
    """THREADCREATE, one minute of MUTEX and of CPU, then HEAP, all finished by one agent run."""
    tasks = {"THREADCREATE": create(acme, "THREADCREATE"),
             "MUTEX": create(acme, "MUTEX", duration=1, dumpPeriod=1), "CPU": create(acme, "CPU", duration=1)}
    demo = Demo(acme, output_dir)
    demo.start()
    try:
        for task_id in tasks.values():
            wait_finished(acme, task_id, timeout=150)  # CPU and MUTEX profile for a minute
        # A heap profile shows the heap as of the last GC: taken now, the demo's is well grown.
        tasks["HEAP"] = create(acme, "HEAP")
        wait_finished(acme, tasks["HEAP"], timeout=60)
    except BaseException:
        demo.stop()
        raise
    yield tasks, demo
    demo.stop()


def test_cpu_heap_mutex_tasks_finish_with_their_hot_functions(acme, first_run):
    tasks, _ = first_run
    assert "main.burnCPU" in functions(analysis(acme, tasks["CPU"]))
    assert "main.retainMemory" in functions(analysis(acme, tasks["HEAP"], sampleType="inuse_space"))
    assert "main.contendMutex" in functions(analysis(acme, tasks["MUTEX"], sampleType="delay"))
    assert "main.contendMutex" in functions(analysis(acme, tasks["MUTEX"], sampleType="contentions"))
    # the tenant is acme's, by the listener: another tenant does not see the task
    assert acme.get(f"/api/v1/pprof/tasks/{tasks['CPU']}/progress", headers=as_("globex-user")).status == 404


def test_threadcreate_analysis_equals_go_tool_pprof(acme, first_run, tmp_path):
    """Go's threadcreate stacks are unnamed frames: each a frame named "", as the shared oracle
    reads `go tool pprof -raw`."""
    task_id = first_run[0]["THREADCREATE"]
    exported = acme.get(f"/api/v1/pprof/tasks/{task_id}/export?format=pprof", headers=as_("acme-user"))
    assert exported.status == 200, exported
    path = tmp_path / "threadcreate.pb.gz"
    path.write_bytes(exported.body)
    for granularity in ("function", "line"):
        got = as_oracle_shape(analysis(acme, task_id, granularity=granularity))
        assert got == oracle_tree([path], None, granularity)
        assert {"", ":0"} & {f for node in got["nodes"] for f in node.split("\x1f")}


def test_restarted_agent_runs_no_old_task_again_and_a_new_cpu_task(acme, first_run):
    tasks, demo = first_run
    before = {name: (progress(acme, t)["logs"], as_oracle_shape(analysis(acme, t))) for name, t in tasks.items()}
    demo.stop()
    demo.start()  # same instance name; it polls from time 0
    cpu = create(acme, "CPU", duration=1)
    wait_finished(acme, cpu, timeout=150)
    assert "main.burnCPU" in functions(analysis(acme, cpu))
    after = {name: (progress(acme, t)["logs"], as_oracle_shape(analysis(acme, t))) for name, t in tasks.items()}
    for name in tasks:
        assert after[name][0] == before[name][0], f"{name}: new logs after the restart"
        assert after[name][1] == before[name][1], f"{name}: analysis changed after the restart"


def test_an_agent_failure_without_error_text_points_at_the_agents_log(acme, instrumented_demo, output_dir):
    """skywalking-go reports a failure with no error text: here it cannot write its profile file."""
    instance = "sw-agent-demo-unwritable"
    task_id = create(acme, "HEAP", instance=instance)
    demo = Demo(acme, output_dir, instance,
                SW_AGENT_REPORTER_GRPC_PROFILE_PPROF_FILE_PATH="/proc/proftask-cannot-write-here")
    demo.start()
    try:
        def failed():
            r = acme.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=as_("acme-user"))
            return r.status == 200 and r.json()["errorInstanceIds"] == [instance] and r.json()
        pr = wait_until(failed, timeout=60, interval=0.5, message="the agent's failure recorded")
    finally:
        demo.stop()
    (error,) = [entry for entry in pr["logs"] if entry["operationType"] == "EXECUTION_TASK_ERROR"]
    assert "gave no error text" in error["message"] and f"log of instance {instance}" in error["message"]
