"""SkyWalking's agent protocol, driven by SkyWalking's official generated Go client
(skywalking.apache.org/repo/goapi, collect/pprof/v10) the way skywalking-go's agent uses it."""
import concurrent.futures
import json
import os
import pathlib
import re
import subprocess
import threading
import uuid

import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.harness import wait_until
from tests.integration.profiles import analysis, as_oracle_shape, create_task, logs_of, progress, upload, wait_finished


COMMAND_ARG_ORDER = ["SerialNumber", "TaskId", "Events", "Duration", "CreateTime", "DumpPeriod"]


SMALL_MAX_SIZE = 2 * 1024 * 1024
SMALL_IDLE_S = 2


@pytest.fixture(scope="module")
def small_stack(spawn):
    """pprofMaxSize of 2 MiB, so oversize uploads stay small, and an upload budget of as much, so
    one upload can fill it; a stream idle for 2 s is dropped."""
    return spawn("all", SW_RECEIVER_PPROF_MAX_SIZE=str(SMALL_MAX_SIZE), PROFTASK_UPLOAD_BUDGET_BYTES=str(SMALL_MAX_SIZE),
                 PROFTASK_HTTP_BODY_IDLE_TIMEOUT=str(SMALL_IDLE_S))


def sw(binary, stack, *args: str) -> dict:
    out = subprocess.run([str(binary), "-target", stack.grpc_target, *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def task_of_service(stack, instances, events="HEAP", **kw) -> tuple[str, str]:
    service = f"sw-{uuid.uuid4().hex[:8]}"
    return service, create_task(stack, instances, events=events, service=service, **kw)


def corpus(name: str) -> pathlib.Path:
    return require_conformance() / name


def wait_log(stack, task_id, operation_type):
    return wait_until(lambda: logs_of(stack, task_id, operation_type) or None, message=operation_type)


def test_poll_returns_skywalkings_pprof_task_query_once_per_task(stack, swclient):
    service, task_id = task_of_service(stack, ["pod-a", "pod-b"], events="BLOCK", duration=2, dumpPeriod=7)
    task = stack.get(f"/api/v1/pprof/tasks/{task_id}").json()
    got = sw(swclient, stack, "poll", "-service", service, "-instance", "pod-a")
    assert got["code"] == "OK"
    (command,) = got["commands"]
    assert command["command"] == "PprofTaskQuery" and command["order"] == COMMAND_ARG_ORDER
    args = command["args"]
    assert (args["TaskId"], args["Events"], args["Duration"], args["DumpPeriod"]) == (task_id, "block", "2", "7")
    assert args["CreateTime"] == str(task["createTime"])
    # the agent polls with the createTime it received: nothing newer, nothing again
    again = sw(swclient, stack, "poll", "-service", service, "-instance", "pod-a", "-last", args["CreateTime"])
    assert again == {"code": "OK", "commands": None}
    assert sw(swclient, stack, "poll", "-service", service, "-instance", "pod-z")["commands"] is None
    (notified,) = wait_log(stack, task_id, "NOTIFIED")
    assert notified["instanceId"] == "pod-a"


def test_full_sequence_matches_the_http_path(stack, swclient):
    """gRPC for pod-a, HTTP for pod-b, the same 1.2 MB profile (two 1 MiB chunks): the same
    progress and the same tree; an error report from pod-c lands as EXECUTION_TASK_ERROR."""
    profile = corpus("large/pprof-large.cpu.pb.gz")
    assert profile.stat().st_size > 1024 * 1024
    service, task_id = task_of_service(stack, ["pod-a", "pod-b", "pod-c"], events="CPU", duration=1)
    for pod in ("pod-a", "pod-b", "pod-c"):
        assert len(sw(swclient, stack, "poll", "-service", service, "-instance", pod)["commands"]) == 1

    sent = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
              "-file", str(profile))
    assert sent["first"] == "PPROF_PROFILING_SUCCESS" and sent["chunks"] == 2
    assert sent["statuses"] == ["PPROF_PROFILING_SUCCESS", "PPROF_PROFILING_SUCCESS"] and sent["code"] == "OK"
    assert upload(stack, task_id, "pod-b", profile).status == 202
    failed = sw(swclient, stack, "error", "-service", service, "-instance", "pod-c", "-task", task_id,
                "-message", "CPU profiling is already running")
    assert failed["first"] == "PPROF_EXECUTION_TASK_ERROR" and failed["code"] == "OK"

    done = wait_finished(stack, task_id, ["pod-a", "pod-b"])
    assert wait_until(lambda: progress(stack, task_id)["errorInstanceIds"] == ["pod-c"] or None)
    (error,) = logs_of(stack, task_id, "EXECUTION_TASK_ERROR")
    assert error["instanceId"] == "pod-c" and error["message"] == "CPU profiling is already running"
    finished = {entry["instanceId"] for entry in done["logs"] if entry["operationType"] == "EXECUTION_FINISHED"}
    notified = {entry["instanceId"] for entry in done["logs"] if entry["operationType"] == "NOTIFIED"}
    assert finished == {"pod-a", "pod-b"} and notified == {"pod-a", "pod-b", "pod-c"}
    over_grpc = analysis(stack, task_id, instanceIds="pod-a", maxNodes=5000)
    over_http = analysis(stack, task_id, instanceIds="pod-b", maxNodes=5000)
    assert over_grpc["instanceIds"] == ["pod-a"] and over_http["instanceIds"] == ["pod-b"]
    assert as_oracle_shape(over_grpc) == as_oracle_shape(over_http)
    assert over_grpc["tree"]["elements"][0]["total"] > 0


def test_skywalking_error_report_without_a_message(stack, swclient):
    service, task_id = task_of_service(stack, ["pod-a"])
    failed = sw(swclient, stack, "error", "-service", service, "-instance", "pod-a", "-task", task_id)
    assert failed["statuses"] == ["PPROF_EXECUTION_TASK_ERROR"]
    (error,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    assert "PPROF_EXECUTION_TASK_ERROR" in error["message"]
    assert "gave no error text" in error["message"] and "log of instance pod-a" in error["message"]


def test_unknown_task_or_instance_is_refused_and_the_server_keeps_serving(stack, swclient):
    service, task_id = task_of_service(stack, ["pod-a"], events="CPU", duration=1)
    profile = str(corpus("go/pprof-sample.cpu.pb.gz"))
    unknown = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", str(uuid.uuid4()),
                 "-file", profile)
    assert unknown["first"] == "PPROF_EXECUTION_TASK_ERROR" and "not found" in unknown["reason"]
    stranger = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-x", "-task", task_id,
                  "-file", profile)
    assert stranger["first"] == "PPROF_EXECUTION_TASK_ERROR" and "not an instance" in stranger["reason"]
    assert progress(stack, task_id)["errorInstanceIds"] == []
    ok = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id, "-file", profile)
    assert ok["statuses"] == ["PPROF_PROFILING_SUCCESS", "PPROF_PROFILING_SUCCESS"]
    wait_finished(stack, task_id, ["pod-a"])


def test_garbage_bytes_get_an_execution_task_error(stack, swclient, tmp_path):
    garbage = tmp_path / "garbage.pb.gz"
    garbage.write_bytes(os.urandom(300_000))
    service, task_id = task_of_service(stack, ["pod-a"])
    sent = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
              "-file", str(garbage))
    assert sent["statuses"] == ["PPROF_PROFILING_SUCCESS", "PPROF_EXECUTION_TASK_ERROR"]
    (error,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    assert error["message"].startswith("invalid profile:")
    assert progress(stack, task_id)["successInstanceIds"] == []


def test_a_profile_of_another_event_is_refused_with_what_was_received(stack, swclient):
    """Issue 12 item 8 on SkyWalking's Collect: a HEAP task refuses a CPU profile."""
    service, task_id = task_of_service(stack, ["pod-a"])
    sent = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
              "-file", str(corpus("go/pprof-sample.cpu.pb.gz")))
    assert sent["statuses"] == ["PPROF_PROFILING_SUCCESS", "PPROF_EXECUTION_TASK_ERROR"]
    assert sent["reason"] == (
        "the profile does not fit a HEAP task: it carries sample types samples/count, cpu/nanoseconds "
        "(a CPU profile?); a HEAP profile carries alloc_objects/count, alloc_space/bytes, "
        "inuse_objects/count, inuse_space/bytes"), sent
    (error,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    assert error["instanceId"] == "pod-a" and error["message"] == sent["reason"]
    assert progress(stack, task_id)["successInstanceIds"] == []


def test_a_stream_cut_mid_way_is_logged_and_nothing_is_stored(stack, swclient):
    service, task_id = task_of_service(stack, ["pod-a"], events="CPU", duration=1)
    sent = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
              "-file", str(corpus("large/pprof-large.cpu.pb.gz")), "-chunk-bytes", "65536", "-cut-after", "3")
    assert sent["first"] == "PPROF_PROFILING_SUCCESS" and sent["cut"] is True
    (error,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    received = re.fullmatch(r"upload ended after (\d+) of 1201687 declared bytes", error["message"])
    assert received and int(received[1]) <= 3 * 65536, error  # what reached the server of 3 chunks and error["instanceId"] == "pod-a"
    assert progress(stack, task_id)["successInstanceIds"] == []
    # the agent's next attempt goes through
    again = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
               "-file", str(corpus("go/pprof-sample.cpu.pb.gz")))
    assert again["statuses"][-1] == "PPROF_PROFILING_SUCCESS"
    wait_finished(stack, task_id, ["pod-a"])


def test_a_stream_that_ends_short_of_its_declared_size(stack, swclient):
    profile = corpus("go/pprof-sample.cpu.pb.gz")
    service, task_id = task_of_service(stack, ["pod-a"], events="CPU", duration=1)
    sent = sw(swclient, stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
              "-file", str(profile), "-declare", str(profile.stat().st_size + 10))
    assert sent["statuses"] == ["PPROF_PROFILING_SUCCESS", "PPROF_EXECUTION_TASK_ERROR"]
    (error,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    assert "declared" in error["message"]


def test_declared_oversize_is_refused_before_any_chunk(small_stack, swclient, tmp_path):
    big = tmp_path / "big.pb.gz"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    service, task_id = task_of_service(small_stack, ["pod-a"])
    sent = sw(swclient, small_stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
              "-file", str(big))
    assert sent["statuses"] == ["PPROF_TERMINATED_BY_OVERSIZE"] and "chunks" not in sent
    (log,) = wait_log(small_stack, task_id, "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR")
    assert "pprofMaxSize" in log["message"]


def test_a_stream_carrying_more_than_it_declared_is_refused_at_the_first_chunk_over(small_stack, swclient,
                                                                                    tmp_path):
    """The upload budget is charged the declared size: a stream that lies is refused as soon as
    it carries more (not buffered to its end, up to pprofMaxSize each), and the task says so."""
    big = tmp_path / "big.pb.gz"
    big.write_bytes(os.urandom(3 * 1024 * 1024))
    service, task_id = task_of_service(small_stack, ["pod-a"])
    sent = sw(swclient, small_stack, "upload", "-service", service, "-instance", "pod-a", "-task", task_id,
              "-file", str(big), "-declare", "1000", "-chunk-bytes", "65536")  # the declared size lies
    assert sent["first"] == "PPROF_PROFILING_SUCCESS"
    assert sent["statuses"][-1] == "PPROF_EXECUTION_TASK_ERROR"
    assert sent["reason"] == "upload carried 65536 bytes or more, more than the 1000 declared", sent
    (log,) = wait_log(small_stack, task_id, "EXECUTION_TASK_ERROR")
    assert log["instanceId"] == "pod-a" and log["message"] == sent["reason"]
    assert small_stack.get("/readyz").status == 200


def collect_stalling(stack, service: str, task_id: str, instance: str, declared: int, content: bytes,
                     release: threading.Event) -> tuple[list[str], str | None]:
    """A collect stream that declares `declared` bytes, sends `content`, then nothing until
    `release` is set: the statuses the server answers, and its reason."""
    import grpc

    from proftask.skywalking.pprof.v10 import Pprof_pb2, Pprof_pb2_grpc

    def requests():
        yield Pprof_pb2.PprofData(metadata=Pprof_pb2.PprofMetaData(
            service=service, serviceInstance=instance, taskId=task_id, contentSize=declared,
            type=Pprof_pb2.PprofProfilingStatus.PPROF_PROFILING_SUCCESS))
        yield Pprof_pb2.PprofData(content=content)
        release.wait(60)

    with grpc.insecure_channel(stack.grpc_target) as channel:
        call = Pprof_pb2_grpc.PprofTaskStub(channel).collect(requests(), timeout=60)
        statuses = [Pprof_pb2.PprofProfilingStatus.Name(r.status) for r in call]
        return statuses, dict(call.trailing_metadata() or ()).get("proftask-reason")


def test_a_stalled_stream_is_dropped_and_gives_its_upload_budget_back(small_stack):
    """An agent that declares an upload and then sends nothing held the budget every tenant's
    uploads share, for as long as it kept the stream open: it is dropped after the idle timeout."""
    profile = corpus("go/pprof-sample.cpu.pb.gz")
    service, task_id = task_of_service(small_stack, ["pod-a", "pod-b"], events="CPU", duration=1)
    release = threading.Event()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        try:
            stalled = pool.submit(collect_stalling, small_stack, service, task_id, "pod-a", SMALL_MAX_SIZE,
                                  profile.read_bytes()[:100], release)
            # while it holds the whole budget, another upload is refused as busy
            wait_until(lambda: upload(small_stack, task_id, "pod-b", profile).status == 503 or None,
                       timeout=SMALL_IDLE_S + 5, interval=0.05, message="an upload refused as busy")
            statuses, reason = stalled.result(timeout=SMALL_IDLE_S + 10)
        finally:
            release.set()
    assert statuses == ["PPROF_PROFILING_SUCCESS", "PPROF_EXECUTION_TASK_ERROR"]
    assert reason == f"no bytes for {SMALL_IDLE_S} s: upload ended after 100 of {SMALL_MAX_SIZE} declared bytes"
    (error,) = wait_log(small_stack, task_id, "EXECUTION_TASK_ERROR")
    assert error["instanceId"] == "pod-a" and error["message"] == reason
    assert upload(small_stack, task_id, "pod-b", profile).status == 202
    wait_finished(small_stack, task_id, ["pod-b"])


def test_keepalive_is_answered_and_polling_goes_on(stack, swclient):
    service, task_id = task_of_service(stack, ["pod-a"])
    assert sw(swclient, stack, "keepalive", "-service", service, "-instance", "pod-a")["code"] == "OK"
    assert len(sw(swclient, stack, "poll", "-service", service, "-instance", "pod-a")["commands"]) == 1


def test_agent_names_past_the_http_limit_are_refused_and_not_listed(stack):
    """An agent's names are kept and listed as a live agent: over gRPC, as over HTTP, at most
    512 characters (a 1,000,000-character service made every services list 1 MB)."""
    import grpc

    from proftask.skywalking.management.v3 import Management_pb2, Management_pb2_grpc
    from proftask.skywalking.pprof.v10 import Pprof_pb2, Pprof_pb2_grpc
    service, long_name = f"sw-{uuid.uuid4().hex[:8]}", "s" * 513
    with grpc.insecure_channel(stack.grpc_target) as channel:
        pprof, management = Pprof_pb2_grpc.PprofTaskStub(channel), Management_pb2_grpc.ManagementServiceStub(channel)
        calls = [(pprof.getPprofTaskCommands, Pprof_pb2.PprofTaskCommandQuery(service=long_name, serviceInstance="pod-a")),
                 (pprof.getPprofTaskCommands, Pprof_pb2.PprofTaskCommandQuery(service=service, serviceInstance=long_name)),
                 (management.keepAlive, Management_pb2.InstancePingPkg(service=long_name, serviceInstance="pod-a"))]
        for call, request in calls:
            with pytest.raises(grpc.RpcError) as refused:
                call(request, timeout=10)
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert refused.value.details() == "service and serviceInstance must be at most 512 characters"
        management.keepAlive(Management_pb2.InstancePingPkg(service=service, serviceInstance="pod-a"), timeout=10)
    listed = wait_until(lambda: (lambda names: names if service in names else None)(
        [s["service"] for s in stack.get("/api/v1/pprof/services").json()["services"]]))
    assert long_name not in listed
