"""The proftask CLI against a running proftask, as a user runs it."""
import json
import os
import subprocess
import threading
import urllib.parse


from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.harness import PROFTASK
from tests.integration.profiles import create_task, upload

SEP = "\x1f"


def cli(stack, *args, timeout=120, **env):
    return subprocess.run([PROFTASK, *args, "--server", stack.base], capture_output=True, text=True,
                          timeout=timeout, env=dict(os.environ, **env))


def folded_tree(text: str) -> dict:
    """Folded stacks as the oracle's {total, nodes: {path: [total, self]}}."""
    nodes, grand = {}, 0
    for line in text.splitlines():
        stack, _, value = line.rpartition(" ")
        frames, v = stack.split(";"), int(value)
        grand += v
        for depth in range(1, len(frames) + 1):
            node = nodes.setdefault(SEP.join(frames[:depth]), [0, 0])
            node[0] += v
        nodes[SEP.join(frames)][1] += v
    return {"total": grand, "nodes": nodes}


def test_create_wait_analyze_and_export(stack, tmp_path):
    profile = require_conformance() / "go/pyroscope-heap.pb.gz"
    bad = cli(stack, "task", "create", "--service", "cli-svc", "--instances", "", "--event", "heap")
    assert bad.returncode == 3 and "ARGUMENT_ERROR" in bad.stderr
    created = cli(stack, "task", "create", "--service", "cli-svc", "--instances", "pod-1,pod-2", "--event", "heap")
    assert created.returncode == 0, created.stderr
    task_id = created.stdout.strip()
    assert task_id in cli(stack, "task", "list", "--service", "cli-svc").stdout

    # `task wait` follows the task while the agents upload: pod-1 finishes, pod-2 reports an error
    waiting = subprocess.Popen([PROFTASK, "task", "wait", task_id, "--server", stack.base, "--interval", "0.2",
                                "--timeout", "120"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    threading.Timer(1.0, lambda: upload(stack, task_id, "pod-1", profile)).start()
    threading.Timer(1.5, lambda: stack.post("/api/v1/pprof/agent/errors", {
        "taskId": task_id, "serviceInstance": "pod-2", "message": "heap snapshot failed"})).start()
    out, err = waiting.communicate(timeout=150)
    assert waiting.returncode == 1, err  # one instance failed
    assert "1/2 finished, 1 failed, 0 pending" in err and "pod-2: heap snapshot failed" in err
    progress = cli(stack, "task", "progress", task_id).stdout
    assert "pod-1     finished" in progress and "heap snapshot failed" in progress

    table = cli(stack, "analyze", task_id, "--top", "5", "--sample-type", "alloc_space")
    assert table.returncode == 0 and table.stdout.startswith("alloc_space/bytes:"), table.stderr
    assert len(table.stdout.splitlines()) == 2 + 5 + 1 and "more; --top N" in table.stdout.splitlines()[-1]

    folded = tmp_path / "heap.folded"
    done = cli(stack, "analyze", task_id, "--format", "folded", "--sample-type", "alloc_space", "-o", str(folded))
    assert done.returncode == 0 and done.stdout.strip() == str(folded)
    want = oracle_tree([profile], sample_type="alloc_space")
    assert folded_tree(folded.read_text()) == {"total": want["total"], "nodes": want["nodes"]}

    exported = tmp_path / "heap.pb.gz"
    assert cli(stack, "analyze", task_id, "--format", "pprof", "-o", str(exported)).returncode == 0
    for sample_type in ("inuse_space", "alloc_objects"):  # go tool pprof reads it: the same trees
        assert oracle_tree([exported], sample_type=sample_type) == oracle_tree([profile], sample_type=sample_type)


def test_wait_exit_codes_for_finished_and_timeout(stack):
    task_id = cli(stack, "task", "create", "--service", "cli-svc2", "--instances", "pod-1", "--event", "cpu",
                  "--duration", "1").stdout.strip()
    timed_out = cli(stack, "task", "wait", task_id, "--timeout", "1", "--interval", "0.2")
    assert timed_out.returncode == 2 and "timed out" in timed_out.stderr
    upload(stack, task_id, "pod-1", require_conformance() / "go/pprof-sample.cpu.pb.gz")
    finished = cli(stack, "task", "wait", task_id, "--timeout", "60", "--interval", "0.2")
    assert finished.returncode == 0 and "1/1 finished" in finished.stderr


def test_wait_ends_failed_when_the_task_s_deadline_passes_before_an_instance_runs_it(spawn):
    """No grace: a HEAP task's deadline is its creation. An instance that never ran it never
    will: `task wait` ends (1, as `task list` says failed) instead of waiting for ever."""
    stack = spawn("all", PROFTASK_TASK_GRACE_MINUTES="0")
    task_id = cli(stack, "task", "create", "--service", "cli-gone", "--instances", "gone-1", "--event", "heap"
                  ).stdout.strip()
    waited = cli(stack, "task", "wait", task_id, "--timeout", "30", "--interval", "0.2")
    assert waited.returncode == 1, waited.stderr
    assert "gone-1: not settled in the time the task gives an instance: not handed the task by its deadline" \
        in waited.stderr
    assert "0/1 finished, 1 failed" in waited.stderr
    listed = cli(stack, "task", "list", "--service", "cli-gone").stdout
    assert task_id in listed and listed.rstrip().endswith("failed")
    assert cli(stack, "task", "progress", task_id).stdout.splitlines()[1].split()[:2] == ["gone-1", "missed"]


def test_tokens_unreachable_server_and_help(spawn):
    secured = spawn("all", PROFTASK_TOKENS="cli-token=acme:user")
    refused = cli(secured, "task", "list")
    assert refused.returncode == 3 and "UNAUTHENTICATED" in refused.stderr
    assert cli(secured, "task", "list", "--token", "cli-token").returncode == 0
    assert cli(secured, "task", "list", PROFTASK_TOKEN="cli-token").returncode == 0
    down = subprocess.run([PROFTASK, "task", "list", "--server", "http://127.0.0.1:9"], capture_output=True,
                          text=True, timeout=60)
    assert down.returncode == 3 and "UNREACHABLE" in down.stderr
    help_text = subprocess.run([PROFTASK, "analyze", "--help"], capture_output=True, text=True).stdout
    for option in ("--format", "--output", "--instances", "--sample-type", "--granularity", "--top", "--token"):
        assert option in help_text


def test_task_list_shows_each_tasks_status(stack):
    from tests.integration.harness import wait_until

    service = "cli-status"
    profile = require_conformance() / "go/pyroscope-heap.pb.gz"  # HEAP tasks take heap profiles
    waiting = create_task(stack, ["w-1"], service=service)
    running = create_task(stack, ["r-1", "r-2"], service=service)
    finished = create_task(stack, ["f-1"], service=service)
    failed = create_task(stack, ["x-1", "x-2"], service=service)
    assert stack.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance=r-1").status == 200
    assert upload(stack, finished, "f-1", profile).status == 202
    assert upload(stack, failed, "x-1", profile).status == 202
    assert stack.post("/api/v1/pprof/agent/errors", {"taskId": failed, "serviceInstance": "x-2",
                                                     "message": "no"}).status == 202
    want = {waiting: "waiting", running: "running", finished: "finished", failed: "failed"}

    def statuses():
        out = cli(stack, "task", "list", "--service", service)
        assert out.returncode == 0, out.stderr
        lines = out.stdout.splitlines()
        assert lines[0].split()[-1] == "STATUS"
        got = {line.split()[0]: line.split()[-1] for line in lines[1:]}
        return got if got == want else None

    wait_until(statuses, timeout=60, interval=0.5, message="each task's status")


def test_analyze_sorts_as_pprof_top_and_top_cum(stack):
    from tests.integration.profiles import create_task, wait_finished
    from tests.integration.test_truth_on_big_profiles import pprof_top

    profile = require_conformance() / "go/parca-fib.pb.gz"
    task_id = create_task(stack, ["p-1"], events="CPU", duration=1)
    assert upload(stack, task_id, "p-1", profile).status == 202
    wait_finished(stack, task_id, ["p-1"])
    want = pprof_top(profile, "cpu/nanoseconds")
    assert len({flat for _, flat, _ in want}) < len(want)  # ties to break
    for sort, order in (("flat", want), ("cum", pprof_top(profile, "cpu/nanoseconds", cum=True))):
        out = cli(stack, "analyze", task_id, "--top", "0", "--raw", "--sort", sort)
        assert out.returncode == 0, out.stderr
        rows = [line.split(maxsplit=4) for line in out.stdout.splitlines()[2:]]
        assert [(name, int(flat), int(cum)) for flat, _, cum, _, name in rows] == order, sort


def test_a_task_id_that_needs_quoting_is_asked_about_as_written(stack):
    """An id pasted with a space, '#', '?', '/', '..' or non-ASCII is a task that is not found,
    not a traceback, and not another task (urllib took '#' and '?' as the path's end)."""
    real = create_task(stack, ["q-1"], events="HEAP", service="quoting")
    for task_id in ("abc def", f"{real}#x", f"{real}?x=1", "%2e%2e", "..", "a/b", "💥"):
        for command in (["task", "get"], ["task", "progress"], ["task", "wait", "--timeout", "1"], ["analyze"]):
            done = cli(stack, *command, task_id)
            assert done.returncode == 3, (command, task_id, done.stderr)
            assert "Traceback" not in done.stderr
            assert f"NOT_FOUND: task {json.dumps(task_id)} not found" in done.stderr, done.stderr


def test_wait_against_a_process_without_the_query_role_says_so_rather_than_wait_for_good(spawn):
    front = spawn("task,ingest")  # its own topics: nothing folds or answers progress there
    task_id = create_task(front, ["s-1"], events="HEAP", service="split")
    for command in (["task", "wait", "--timeout", "30"], ["task", "progress"]):
        done = cli(front, *command, task_id, timeout=60)
        assert done.returncode == 3, (command, done.stdout, done.stderr)
        assert f"knows task {task_id} but answers no progress of it" in done.stderr, done.stderr


def test_names_and_messages_from_agents_are_printed_with_their_control_characters_escaped(stack):
    """An instance id, an agent's error text or a function name holding a line break split the
    CLI's rows; an escape sequence in one rewrote the operator's terminal."""
    from proftask.pprof.encode import encode_profile
    from tests.integration.profiles import wait_finished

    service, escape = "cli-hostile", "\x1b]0;owned\x07\x1b[2J"
    instances = ["tab\tnl\nx", "rtl\u202eevil"]
    task_id = create_task(stack, instances, service=service, events="CPU", duration=1)
    body = encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "", 0,
                          [([("main.main", 1, False), (f"main.evil{escape}\nfake row", 2, False)], [7])])
    assert upload(stack, task_id, urllib.parse.quote(instances[0], safe=""), body).status == 202
    assert stack.post("/api/v1/pprof/agent/errors", {"taskId": task_id, "serviceInstance": instances[1],
                                                     "message": f"boom{escape}\nsecond line"}).status == 202
    wait_finished(stack, task_id, instances[:1])
    listed = cli(stack, "task", "list", "--service", service)
    assert listed.returncode == 0, listed.stderr
    assert len(listed.stdout.splitlines()) == 2 and "tab\\tnl\\nx" in listed.stdout, listed.stdout
    top = cli(stack, "analyze", task_id, "--top", "0")
    assert top.returncode == 0, top.stderr
    assert "main.evil\\x1b]0;owned\\x07\\x1b[2J\\nfake row" in top.stdout, top.stdout
    waited = cli(stack, "task", "wait", task_id, "--timeout", "60")
    assert "rtl\\u202eevil: boom\\x1b]0;owned\\x07\\x1b[2J\\nsecond line" in waited.stderr, waited.stderr
    for out in (listed.stdout, top.stdout, waited.stderr):
        assert not any(c in out for c in "\x1b\x07\u202e\t"), out
