"""Live agents: every poll (HTTP, gRPC, SkyWalking keepAlive) marks its instance live, kept as
events, so replicas and restarts list the same services with first and last seen; a task for
a service or instance no agent polls for is created with a warning."""
import json
import subprocess
import uuid


from proftask.core import skywalking_ids as ids
from tests.integration.harness import new_topic_prefix, wait_until



def sw(binary, stack, *args):
    out = subprocess.run([str(binary), "-target", stack.grpc_target, *args], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def instances_of(stack, service):
    r = stack.get(f"/api/v1/pprof/services/{service}/instances")
    return {i["instance"]: i for i in r.json()["instances"]} if r.status == 200 else {}


def test_polls_over_http_grpc_and_keepalive_are_live_agents_on_every_replica_and_after_restart(spawn, swclient, tmp_path):
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    main = spawn("all", prefix=prefix, data_dir=data_dir)
    replica = spawn("task", prefix=prefix)
    service = f"live-{uuid.uuid4().hex[:6]}"
    assert main.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance=http-1").status == 200
    assert not sw(swclient, main, "poll", "-service", service, "-instance", "grpc-1").get("commands")
    assert sw(swclient, main, "keepalive", "-service", service, "-instance", "sw-1")["code"] == "OK"

    expected = {"http-1": "http", "grpc-1": "grpc", "sw-1": "keepAlive"}
    for stack in (main, replica):
        seen = wait_until(lambda: (lambda i: i if set(i) == set(expected) else None)(instances_of(stack, service)))  # noqa: B023 - awaited within the iteration
        assert {name: a["via"] for name, a in seen.items()} == expected
        assert all(0 < a["firstSeen"] <= a["lastSeen"] for a in seen.values())
    (summary,) = [s for s in main.get("/api/v1/pprof/services").json()["services"] if s["service"] == service]
    assert summary["instances"] == 3 and summary["firstSeen"] <= summary["lastSeen"]
    before = instances_of(main, service)

    # the SkyWalking pickers (GraphQL) list the same
    r = main.post("/graphql", {"query": "query ($s: ID!) { listServices(layer: \"GENERAL\") { id name layers } "
                                         "listInstances(serviceId: $s) { id name language } }",
                               "variables": {"s": ids.service_id(service)}}).json()["data"]
    assert {"id": ids.service_id(service), "name": service, "layers": ["GENERAL"]} in r["listServices"]
    assert r["listInstances"] == [{"id": ids.instance_id(service, n), "name": n, "language": "GO"}
                                  for n in sorted(expected)]

    main.stop()
    main.start()
    assert instances_of(main, service) == before


def test_a_task_for_a_service_or_instance_without_live_agent_carries_a_warning(stack):
    service = f"live-{uuid.uuid4().hex[:6]}"
    assert stack.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance=pod-1").status == 200
    wait_until(lambda: instances_of(stack, service))

    def create(svc, instances, events="HEAP"):
        r = stack.post("/api/v1/pprof/tasks", {"serviceId": svc, "serviceInstanceIds": instances, "events": events})
        assert r.status == 201, r
        return r.json()["warnings"]

    assert create(service, ["pod-1"]) == []
    (warning,) = create(service, ["pod-1", "pod-9"], "GOROUTINE")
    assert "pod-9" in warning and "pod-1" not in warning
    (warning,) = create(f"dmeo-{service}", ["pod-1"])
    assert f"dmeo-{service}" in warning and "no live agent" in warning

    r = stack.post("/graphql", {"query": "mutation { createPprofTask(pprofTaskCreationRequest: {serviceId: \"%s\", "
                                         "serviceInstanceIds: [\"pod-1\"], events: ALLOCS}) { code warnings } }"
                                         % ids.service_id("dmeo-" + service)}).json()["data"]["createPprofTask"]
    assert r["code"] == "SUCCESS" and f"dmeo-{service}" in r["warnings"][0]


def test_the_ui_shows_the_warning_after_a_create(stack, page):
    service = f"dmeo-{uuid.uuid4().hex[:6]}"
    page.goto(stack.base + "/#/tasks")
    page.fill("input[name=serviceId]", service)
    page.fill("input[name=instances]", "pod-1")
    page.select_option("select[name=events]", "HEAP")
    page.click("#create-button")
    page.wait_for_selector(f"#create-warning:has-text('{service}')")
    assert "no live agent" in page.inner_text("#create-warning")


def test_each_tenant_lists_only_its_own_agents_over_rest_and_graphql_also_after_a_kill(spawn, tmp_path):
    """Two tenants run a service of the same name: each tenant's pickers list its own pods,
    never the other's, and the same after a kill -9."""
    tokens = "a-user=acme:user,a-agent=acme:agent,b-user=beta:user,b-agent=beta:agent"
    prefix, data_dir = new_topic_prefix(), tmp_path / "data"
    first = spawn("all", prefix=prefix, data_dir=data_dir, PROFTASK_TOKENS=tokens)
    service = f"live-{uuid.uuid4().hex[:6]}"
    pods = {"a": ["acme-1", "acme-2"], "b": ["beta-1"]}
    for letter, names in pods.items():
        for name in names:
            r = first.get(f"/api/v1/pprof/agent/commands?service={service}&serviceInstance={name}",
                          headers={"Authorization": f"Bearer {letter}-agent"})
            assert r.status == 200, r

    def listed(proc, letter):
        user = {"Authorization": f"Bearer {letter}-user"}
        r = proc.get(f"/api/v1/pprof/services/{service}/instances", headers=user)
        rest = sorted(i["instance"] for i in r.json()["instances"]) if r.status == 200 else None
        services = proc.get("/api/v1/pprof/services", headers=user).json().get("services", [])
        r = proc.post("/graphql", {"query": "query ($s: ID!) { listServices(layer: \"GENERAL\") { name } "
                                            "listInstances(serviceId: $s) { name } }",
                                   "variables": {"s": ids.service_id(service)}}, headers=user).json()
        graphql = sorted(i["name"] for i in (r.get("data") or {}).get("listInstances") or [])
        counted = [s["instances"] for s in services if s["service"] == service]
        return rest, graphql, counted

    def check(proc):
        for letter, names in pods.items():
            # awaited until the tenant's own pods are all there; then nothing else may be
            rest, graphql, counted = wait_until(lambda: (lambda got: got if got[0] == names else None)(  # noqa: B023 - awaited within the iteration
                listed(proc, letter)))  # noqa: B023
            assert graphql == names and counted == [len(names)], letter

    check(first)
    first.kill()
    check(spawn("all", prefix=prefix, data_dir=data_dir, PROFTASK_TOKENS=tokens))
