"""The real skywalking-go agent (0.7.0, built from its published module with its toolexec into a
small service) runs a HEAP task and a CPU task against proftask, unchanged. The suite runs it
when the Go module proxy serves the agent, and skips saying why when it does not."""
import os
import pathlib
import subprocess

import pytest

from tests.integration.profiles import analysis, create_task, wait_finished

pytestmark = pytest.mark.integration

RUN = pathlib.Path(__file__).resolve().parent / "skywalking_agent" / "run.sh"
PROXY_REFUSED = 3


@pytest.fixture(scope="module")
def instrumented_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("skywalking-agent")
    built = subprocess.run(["bash", str(RUN), "build"], capture_output=True, text=True, timeout=900,
                           env=dict(os.environ, SKYWALKING_DEMO_OUT=str(out)))
    if built.returncode == PROXY_REFUSED:
        pytest.skip(built.stderr.strip())
    assert built.returncode == 0, built.stderr
    return out


def functions(result: dict) -> set[str]:
    return {e["codeSignature"] for e in result["tree"]["elements"][1:]}


def test_skywalking_go_agent_completes_heap_and_cpu_tasks(instrumented_demo, stack, output_dir):
    service, instance = "sw-agent-demo", "sw-agent-demo-1"
    heap = create_task(stack, [instance], events="HEAP", service=service)
    cpu = create_task(stack, [instance], events="CPU", duration=1, service=service)
    env = dict(os.environ, SKYWALKING_DEMO_OUT=str(instrumented_demo), SW_AGENT_NAME=service,
               SW_AGENT_INSTANCE_NAME=instance, SW_AGENT_REPORTER_GRPC_BACKEND_SERVICE=stack.grpc_target)
    with open(output_dir / "skywalking-agent-demo.log", "wb") as log:
        demo = subprocess.Popen(["bash", str(RUN), "run"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_finished(stack, heap, [instance], timeout=60)
        assert "main.retainMemory" in functions(analysis(stack, heap, sampleType="inuse_space"))
        wait_finished(stack, cpu, [instance], timeout=150)  # one minute of CPU profiling
        assert "main.burnCPU" in functions(analysis(stack, cpu))
    finally:
        demo.terminate()
        demo.wait(timeout=30)
