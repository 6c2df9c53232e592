"""Tokens name a tenant and a role; a tenant never sees another's tasks (HTTP and gRPC)."""
import json
import select
import socket
import subprocess
import uuid

import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.harness import wait_until


TOKENS = "acme-user=acme:user,acme-agent=acme:agent,globex-user=globex:user,globex-agent=globex:agent,root=acme:admin"


@pytest.fixture(scope="module")
def secured(spawn):
    return spawn("all", PROFTASK_TOKENS=TOKENS)


def as_(token):
    return {"Authorization": f"Bearer {token}"}


def create(stack, token, service, instances=("pod-1",)):
    return stack.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": list(instances),
                                              "events": "CPU", "duration": 1},  # they take CPU profiles
                      headers=as_(token))


def sw(binary, stack, token, *args):
    out = subprocess.run([str(binary), "-target", stack.grpc_target, "-auth", token, *args],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_no_token_or_a_wrong_one_is_401_and_roles_are_kept(secured):
    assert secured.get("/api/v1/pprof/tasks").status == 401
    r = secured.get("/api/v1/pprof/tasks", headers=as_("guess"))
    assert r.status == 401 and r.json()["code"] == "UNAUTHENTICATED"
    assert secured.get("/api/v1/pprof/tasks", headers=as_("acme-agent")).status == 403  # agents poll, not list
    r = secured.get("/api/v1/pprof/agent/commands?service=s&serviceInstance=i", headers=as_("acme-user"))
    assert r.status == 403 and r.json()["code"] == "FORBIDDEN"
    assert secured.get("/api/v1/pprof/tasks", headers=as_("root")).status == 200
    assert secured.get("/healthz").status == 200 and secured.get("/readyz").status == 200


def test_tenant_b_cannot_list_read_analyse_or_upload_to_tenant_as_task(secured, swclient):
    service = f"shop-{uuid.uuid4().hex[:6]}"
    r = create(secured, "acme-user", service)
    assert r.status == 201, r
    task_id = r.json()["id"]
    # the same service name in another tenant is another service: no conflict
    assert create(secured, "globex-user", service).status == 201
    acme = secured.get(f"/api/v1/pprof/tasks?serviceId={service}", headers=as_("acme-user")).json()["tasks"]
    assert [t["id"] for t in acme] == [task_id]
    globex = secured.get(f"/api/v1/pprof/tasks?serviceId={service}", headers=as_("globex-user")).json()["tasks"]
    assert task_id not in [t["id"] for t in globex] and len(globex) == 1

    wait_until(lambda: secured.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=as_("acme-user")).status == 200)
    for path in (f"/api/v1/pprof/tasks/{task_id}", f"/api/v1/pprof/tasks/{task_id}/progress",
                 f"/api/v1/pprof/tasks/{task_id}/analysis", f"/api/v1/pprof/tasks/{task_id}/export?format=folded"):
        assert secured.get(path, headers=as_("globex-user")).status == 404, path
        assert secured.get(path, headers=as_("acme-user")).status == 200, path

    profile = (require_conformance() / "go/pprof-sample.cpu.pb.gz").read_bytes()
    upload = f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance=pod-1"
    assert secured.post(upload, raw=profile, headers=as_("globex-agent")).status == 404
    err = {"taskId": task_id, "serviceInstance": "pod-1", "message": "x"}
    assert secured.post("/api/v1/pprof/agent/errors", err, headers=as_("globex-agent")).status == 404

    # gRPC: globex's agent token sees none of acme's commands and cannot upload to its task
    polled = sw(swclient, secured, "globex-agent", "poll", "-service", service, "-instance", "pod-1")
    (globex_command,) = polled["commands"]
    assert globex_command["args"]["TaskId"] != task_id
    refused = sw(swclient, secured, "globex-agent", "upload", "-service", service, "-instance", "pod-1",
                 "-task", task_id, "-file", str(require_conformance() / "go/pprof-sample.cpu.pb.gz"))
    assert refused["first"] == "PPROF_EXECUTION_TASK_ERROR" and "not found" in refused["reason"]
    assert sw(swclient, secured, "nope", "poll", "-service", service, "-instance", "pod-1")["code"] == "Unauthenticated"
    assert sw(swclient, secured, "acme-user", "poll", "-service", service, "-instance", "pod-1")["code"] == \
        "PermissionDenied"

    # acme's own agent does get it, over gRPC, and its upload lands in acme's task only
    (acme_command,) = sw(swclient, secured, "acme-agent", "poll", "-service", service, "-instance", "pod-1")["commands"]
    assert acme_command["args"]["TaskId"] == task_id
    sent = sw(swclient, secured, "acme-agent", "upload", "-service", service, "-instance", "pod-1", "-task", task_id,
              "-file", str(require_conformance() / "go/pprof-sample.cpu.pb.gz"))
    assert sent["statuses"] == ["PPROF_PROFILING_SUCCESS", "PPROF_PROFILING_SUCCESS"]
    wait_until(lambda: secured.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=as_("acme-user"))
               .json()["successInstanceIds"] == ["pod-1"] or None)
    assert secured.get(f"/api/v1/pprof/tasks/{task_id}/analysis", headers=as_("acme-user")).json()["tree"]["elements"]


THREE = "a-user=acme:user,a-agent=acme:agent,b-user=beta:user,b-agent=beta:agent,c-user=gamma:user,c-agent=gamma:agent"


def _upload_and_analyse(proc, tenant_letter: str, path) -> dict:
    user, agent = as_(f"{tenant_letter}-user"), as_(f"{tenant_letter}-agent")
    r = create(proc, f"{tenant_letter}-user", "checkout")  # the same service name in every tenant
    assert r.status == 201, r
    task_id = r.json()["id"]
    r = proc.post(f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance=pod-1", raw=path.read_bytes(),
                  headers=agent)
    assert r.status == 202, r
    wait_until(lambda: proc.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=user)
               .json().get("successInstanceIds") == ["pod-1"] or None, timeout=60)
    r = proc.get(f"/api/v1/pprof/tasks/{task_id}/analysis", headers=user)
    assert r.status == 200, r
    return r.json()


def test_tenants_uploading_the_same_profile_each_get_all_of_it_also_after_a_restart(spawn, tmp_path):
    """Fleets of different tenants run the same software: the second tenant's tree is not empty
    because the first one's stacks were written already, nor the third's after a restart."""
    from tests.conformance.oracle import oracle_tree
    from tests.integration.harness import new_topic_prefix
    from tests.integration.profiles import as_oracle_shape

    path = require_conformance() / "go" / "pprof-sample.cpu.pb.gz"
    want = oracle_tree([path])
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    first = spawn("all", prefix=prefix, data_dir=data_dir, PROFTASK_TOKENS=THREE)
    for letter in ("a", "b"):
        assert as_oracle_shape(_upload_and_analyse(first, letter, path)) == want, letter
    first.stop()
    second = spawn("all", prefix=prefix, data_dir=data_dir, PROFTASK_TOKENS=THREE)
    assert as_oracle_shape(_upload_and_analyse(second, "c", path)) == want


@pytest.mark.parametrize("token,code", [(None, "UNAUTHENTICATED"), ("guess", "UNAUTHENTICATED"),
                                        ("acme-user", "PERMISSION_DENIED")])
def test_grpc_authenticates_before_it_checks_arguments(secured, token, code):
    import grpc

    from proftask.skywalking.pprof.v10 import Pprof_pb2, Pprof_pb2_grpc

    metadata = (("authentication", token),) if token else None
    with grpc.insecure_channel(secured.grpc_target) as channel:
        stub = Pprof_pb2_grpc.PprofTaskStub(channel)
        with pytest.raises(grpc.RpcError) as poll:
            stub.getPprofTaskCommands(Pprof_pb2.PprofTaskCommandQuery(), metadata=metadata, timeout=30)
        assert poll.value.code().name == code, poll.value
        # collect: a first message without metadata is an argument error, but only for a caller
        with pytest.raises(grpc.RpcError) as collect:
            list(stub.collect(iter([Pprof_pb2.PprofData()]), metadata=metadata, timeout=30))
        assert collect.value.code().name == code, collect.value


def test_one_tenants_slow_uploads_cannot_hold_the_upload_budget_that_another_tenant_needs(spawn):
    """globex's agent opens uploads that declare 1 MiB each and then send almost nothing: they
    are charged the budget (4 MiB here) while they last. At most 3/4 of it is globex's; acme's
    upload is taken meanwhile and finishes. Before, globex's four held it all: acme got 503."""
    budget = 4 * 1024 * 1024
    stack = spawn("all", PROFTASK_TOKENS=TOKENS, PROFTASK_UPLOAD_BUDGET_BYTES=str(budget))
    globex_task = create(stack, "globex-user", "slow").json()["id"]
    acme_task = create(stack, "acme-user", "checkout").json()["id"]
    path = f"/api/v1/pprof/agent/profiles?taskId={globex_task}&serviceInstance=pod-1"
    holders = [socket.create_connection(("127.0.0.1", stack.port), timeout=30) for _ in range(4)]
    try:
        for holder in holders:
            holder.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer globex-agent\r\n"
                           f"Content-Length: {budget // 4}\r\n\r\n".encode() + b"\x1f\x8b" + bytes(998))
        # one of the four (whichever the server charged last) is over globex's share: answered at once
        answered, _, _ = select.select(holders, [], [], 30)
        assert len(answered) == 1, answered
        refused = answered[0].recv(4096).decode()
        assert refused.startswith("HTTP/1.1 503") and "one tenant may hold" in refused, refused
        r = stack.request("POST", f"/api/v1/pprof/agent/profiles?taskId={acme_task}&serviceInstance=pod-1",
                          raw=(require_conformance() / "go" / "pprof-sample.cpu.pb.gz").read_bytes(),
                          headers={**as_("acme-agent"), "Content-Type": "application/octet-stream"})
        assert r.status == 202, r
    finally:
        for holder in holders:
            holder.close()
    done = wait_until(lambda: (lambda p: p if p["successInstanceIds"] else None)(
        stack.get(f"/api/v1/pprof/tasks/{acme_task}/progress", headers=as_("acme-user")).json()))
    assert done["successInstanceIds"] == ["pod-1"]


def test_two_tenants_upload_the_large_profile_at_once_and_read_pprofs_numbers_after_a_kill_and_a_replay(
        spawn, tmp_path):
    """Two fleets run the same software and profile it at the same moment: each tenant's merged
    tree, top table and pprof export of the 425k-node profile (chunked on Kafka) are pprof's, and
    stay so after a kill -9; no agent is handed a settled task again, nor any log written twice;
    a diff of one tenant's task against the other's finds no such task; and all of it again once
    ClickHouse is rebuilt by `proftask replay`."""
    import concurrent.futures
    import shutil

    from tests.conformance.oracle import oracle_tree
    from tests.integration.harness import new_topic_prefix
    from tests.integration.profiles import as_oracle_shape
    from tests.integration.test_truth_on_big_profiles import large, pprof_top

    tenants, instances = ("a", "b"), ("pod-1", "pod-2")
    # two instances of one profile: every value of pprof's merge of the two is twice the file's
    one = oracle_tree([large()])
    want_tree = {**one, "total": 2 * one["total"], "nodes": {p: [2 * t, 2 * s] for p, (t, s) in one["nodes"].items()}}
    want_top = [(name, 2 * flat, 2 * cum) for name, flat, cum in pprof_top(large(), "cpu/nanoseconds")]
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    first = spawn("all", prefix=prefix, data_dir=data_dir, PROFTASK_TOKENS=THREE)

    def poll(proc, letter, instance):
        r = proc.get(f"/api/v1/pprof/agent/commands?service=checkout&serviceInstance={instance}&lastCommandTime=0",
                     headers=as_(f"{letter}-agent"))
        assert r.status == 200, r
        return r.json()["commands"]

    tasks = {}
    for letter in tenants:
        r = create(first, f"{letter}-user", "checkout", instances)  # the same service in both tenants
        assert r.status == 201, r
        tasks[letter] = r.json()["id"]
        for instance in instances:  # the agents take the task (NOTIFIED), then upload
            (command,) = poll(first, letter, instance)
            assert {a["key"]: a["value"] for a in command["args"]}["TaskId"] == tasks[letter]
    body = large().read_bytes()

    def send(job):
        letter, instance = job
        return first.post(f"/api/v1/pprof/agent/profiles?taskId={tasks[letter]}&serviceInstance={instance}",
                          raw=body, headers=as_(f"{letter}-agent"), timeout=120).status

    with concurrent.futures.ThreadPoolExecutor(4) as agents:
        assert list(agents.map(send, [(t, i) for t in tenants for i in instances])) == [202] * 4

    def check(proc):
        for letter in tenants:
            user, task_id = as_(f"{letter}-user"), tasks[letter]
            wait_until(lambda: sorted(proc.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=user)  # noqa: B023
                                      .json().get("successInstanceIds", [])) == list(instances) or None,
                       timeout=300)
            r = proc.get(f"/api/v1/pprof/tasks/{task_id}/analysis", headers=user, timeout=300)
            assert r.status == 200, r
            assert as_oracle_shape(r.json()) == want_tree, letter
            r = proc.get(f"/api/v1/pprof/tasks/{task_id}/top", headers=user, timeout=300)
            assert r.status == 200, r
            assert [(row["name"], row["flat"], row["cum"]) for row in r.json()["rows"]] == want_top, letter
            r = proc.get(f"/api/v1/pprof/tasks/{task_id}/export?format=pprof", headers=user, timeout=300)
            assert r.status == 200, r
            exported = tmp_path / f"{letter}.pb.gz"
            exported.write_bytes(r.body)
            assert pprof_top(exported, "cpu/nanoseconds") == want_top, letter
            logs = proc.get(f"/api/v1/pprof/tasks/{task_id}/progress", headers=user).json()["logs"]
            for kind in ("NOTIFIED", "EXECUTION_FINISHED"):
                assert sorted(e["instanceId"] for e in logs if e["operationType"] == kind) == list(instances), kind
            for instance in instances:
                assert poll(proc, letter, instance) == []  # settled: not handed again
        r = proc.get(f"/api/v1/pprof/diff?baseTaskId={tasks['b']}&compareTaskId={tasks['a']}", headers=as_("b-user"))
        assert r.status == 400 and r.json()["errorReason"] == f'task "{tasks["a"]}" not found', r

    check(first)
    first.kill()  # no shutdown: nothing flushed or committed on the way out
    second = spawn("all", prefix=prefix, data_dir=data_dir, PROFTASK_TOKENS=THREE)
    check(second)
    # ClickHouse lost and rebuilt from the topics: the same for both tenants
    second.stop()
    shutil.rmtree(data_dir / "clickhouse")
    replayed = second.cli("replay")
    assert replayed.returncode == 0, replayed.stderr
    check(spawn("all", prefix=prefix, data_dir=data_dir, PROFTASK_TOKENS=THREE))
