"""The Go agent end to end: real demo programs run by the agent pick tasks up through the API,
profile, upload; the analysis shows what each program made hot."""
import uuid

import pytest

from tests.integration.demo import Demo, build_demo
from tests.integration.harness import new_topic_prefix, wait_until
from tests.integration.profiles import analysis, create_task, logs_of, progress, wait_finished



@pytest.fixture(scope="module")
def demo_binary(tmp_path_factory):
    return build_demo(tmp_path_factory.mktemp("demo-bin"))


@pytest.fixture
def demos(demo_binary, tmp_path):
    started = []

    def _start(server, service, instance, *flags):
        d = Demo(demo_binary, server, service, instance, tmp_path, *flags)
        started.append(d)
        return d

    yield _start
    for d in started:
        d.stop()


def share(result: dict, prefix: str) -> float:
    """The share of the root's total in nodes whose codeSignature starts with prefix, counting
    each sample once (the outermost matching node of a path)."""
    elements = result["tree"]["elements"]
    by_id = {e["id"]: e for e in elements}
    total = elements[0]["total"]
    matched = 0
    for e in elements[1:]:
        if not e["codeSignature"].startswith(prefix):
            continue
        parent, nested = by_id.get(e["parentId"]), False
        while parent is not None and parent["id"] != "0":
            if parent["codeSignature"].startswith(prefix):
                nested = True
                break
            parent = by_id.get(parent["parentId"])
        if not nested:
            matched += e["total"]
    return matched / total if total else 0.0


def names(result: dict) -> set[str]:
    return {e["codeSignature"] for e in result["tree"]["elements"]}


# event → (demo load, task parameters, sample type checked, hot function, minimal share)
SCENARIOS = {
    "CPU": ("/cpu", {"duration": 1}, None, "main.burnCPU", 0.5),
    "HEAP": ("/alloc", {}, "inuse_space", "main.allocate", 0.5),
    "ALLOCS": ("/alloc", {}, "alloc_space", "main.allocate", 0.5),
    "BLOCK": ("/block", {"duration": 1, "dumpPeriod": 1}, "delay", "main.blockOnChannel", 0.5),
    "MUTEX": ("/mutex", {"duration": 1, "dumpPeriod": 1}, "delay", "main.contendMutex", 0.5),
    "GOROUTINE": ("/goroutines", {}, None, "main.spawnGoroutines", 0.5),
    "THREADCREATE": ("/alloc", {}, None, "runtime.", 0.0),
}


def test_every_event_end_to_end_on_two_instances(stack, demos):
    tasks, services, early = {}, {}, []
    for event, (load, _params, *_rest) in SCENARIOS.items():
        service = f"demo-{event.lower()}-{uuid.uuid4().hex[:6]}"
        services[event] = service
        flags = ["-load", load]
        if event in ("BLOCK", "MUTEX"):  # the app samples on its own before the task: not uploaded
            flags += ["-block-rate", "1", "-mutex-fraction", "1", "-early-contention", "1s"]
        for instance in ("demo-1", "demo-2"):
            demo = demos(stack, service, instance, *flags)
            if event in ("BLOCK", "MUTEX"):
                early.append(demo)
    busy_service = f"demo-busy-{uuid.uuid4().hex[:6]}"
    demos(stack, busy_service, "busy-1", "-load", "", "-own-cpu-profile")
    for demo in early:  # their agents start after the early contention
        wait_until(lambda: "early contention done" in demo.output(), message="early contention")  # noqa: B023 - awaited within the iteration
    for event, (_load, params, *_rest) in SCENARIOS.items():
        tasks[event] = create_task(stack, ["demo-1", "demo-2"], events=event, service=services[event], **params)
    busy_task = create_task(stack, ["busy-1"], events="CPU", service=busy_service, duration=1)

    # A task reaches a waiting agent in well under a second (long poll), not SkyWalking's ~30 s.
    heap_created = stack.get(f"/api/v1/pprof/tasks/{tasks['HEAP']}").json()["createTime"]
    notified = wait_until(lambda: (lambda ls: ls if len(ls) == 2 else None)(logs_of(stack, tasks["HEAP"], "NOTIFIED")))
    assert max(entry["operationTime"] for entry in notified) - heap_created < 1000, notified

    (busy_error,) = wait_until(lambda: logs_of(stack, busy_task, "EXECUTION_TASK_ERROR"), timeout=30)
    assert "cpu profiling already in use" in busy_error["message"], busy_error

    for event in SCENARIOS:
        wait_finished(stack, tasks[event], ["demo-1", "demo-2"], timeout=150)
    for event, (_load, _params, sample_type, hot, minimal) in SCENARIOS.items():
        for instance in ("demo-1", "demo-2"):
            result = analysis(stack, tasks[event], sampleType=sample_type, instanceIds=instance)
            assert result["tree"]["elements"][0]["total"] > 0, (event, instance)
            assert share(result, hot) >= minimal, (event, instance, share(result, hot))
            if event in ("BLOCK", "MUTEX"):
                assert not {n for n in names(result) if n.startswith("main.earlyContention")}, event
                assert "main.blockOnChannelEarly" not in names(result), event
    assert progress(stack, busy_task)["successInstanceIds"] == []


def test_upload_waits_out_a_server_outage_and_counts_once(spawn, demos, tmp_path):
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    server = spawn("all", prefix=prefix, data_dir=data_dir)
    service = f"demo-outage-{uuid.uuid4().hex[:6]}"
    demo = demos(server, service, "demo-1", "-load", "/cpu")
    task_id = create_task(server, ["demo-1"], events="CPU", service=service, duration=1)
    wait_until(lambda: logs_of(server, task_id, "NOTIFIED"), message="the agent got the task")
    server.stop()  # down while the agent profiles and when it first tries to upload
    wait_until(lambda: f"upload of task {task_id} failed" in demo.output(), timeout=120, interval=0.5,
               message="an upload attempt while the server is down")
    server.start()
    wait_finished(server, task_id, ["demo-1"], timeout=120)
    assert len(logs_of(server, task_id, "EXECUTION_FINISHED")) == 1
    result = analysis(server, task_id)
    assert share(result, "main.burnCPU") >= 0.5


RESTART_MESSAGE = "the agent restarted while profiling (process killed or stopped?); the task was not finished on this instance"


def test_a_task_cut_short_by_a_killed_process_is_reported_by_the_restarted_agent(stack, demos, tmp_path):
    """SIGKILL mid-task, then a restart: the operator reads why the instance failed at once, not
    a pending instance until the task's deadline; the task is not run again."""
    service = f"demo-killed-{uuid.uuid4().hex[:6]}"
    demo = demos(stack, service, "demo-1", "-load", "")
    task_id = create_task(stack, ["demo-1"], events="CPU", service=service, duration=1)  # a minute
    created = stack.get(f"/api/v1/pprof/tasks/{task_id}").json()["createTime"]
    state_file = tmp_path / f"state-{service}-demo-1" / "state.json"
    wait_until(lambda: state_file.exists() and task_id in state_file.read_text(), timeout=20,
               message="the agent started the task")
    demo.proc.kill()
    demo.proc.wait(10)

    demos(stack, service, "demo-1", "-load", "")  # the same instance and state directory
    pr = wait_until(lambda: (lambda p: p if p["errorInstanceIds"] else None)(progress(stack, task_id)),
                    timeout=30, interval=0.2, message="the instance's error in the task's progress")
    assert pr["errorInstanceIds"] == ["demo-1"] and pr["successInstanceIds"] == [], pr
    (error,) = logs_of(stack, task_id, "EXECUTION_TASK_ERROR")
    assert error["instanceId"] == "demo-1" and RESTART_MESSAGE in error["message"], error
    # Well before the deadline: even before the minute of profiling would have ended.
    assert error["operationTime"] < created + 60_000, (error, created)
    assert len(logs_of(stack, task_id, "NOTIFIED")) == 1  # not handed out, nor run, again
