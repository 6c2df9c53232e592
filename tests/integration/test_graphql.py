"""SkyWalking's GraphQL query protocol at /graphql: the pprof part as pprof.graphqls defines it,
SkyWalking's ids and names, the same tasks, analyses and tenants as REST."""
import json
import pathlib
import subprocess
import time
import uuid

import pytest

from proftask.core import skywalking_ids as ids
from tests.conformance.oracle import require_conformance
from tests.integration.harness import wait_until

ROOT = pathlib.Path(__file__).resolve().parents[2]

TOKENS = "acme-user=acme:user,acme-agent=acme:agent,globex-user=globex:user"

# Facts of pprof.graphqls (apache/skywalking-query-protocol): every type, its fields (or
# enum values) and their types with nullability, written out as GraphQL type references.
UPSTREAM_PPROF = {
    "PprofTaskCreationRequest": {"serviceId": "ID!", "serviceInstanceIds": "[String!]!", "duration": "Int",
                                 "events": "PprofEventType!", "dumpPeriod": "Int"},
    "PprofTaskCreationResult": {"code": "PprofTaskCreationType!", "errorReason": "String", "id": "String"},
    "PprofTaskListRequest": {"serviceId": "ID!", "queryDuration": "Duration", "limit": "Int"},
    "PprofAnalyzationRequest": {"taskId": "ID!", "instanceIds": "[String!]!"},
    "PprofTaskListResult": {"errorReason": "String", "tasks": "[PprofTask!]"},
    "PprofTask": {"id": "String!", "serviceId": "String!", "serviceInstanceIds": "[String!]!",
                  "createTime": "Long!", "events": "PprofEventType!", "duration": "Int", "dumpPeriod": "Int"},
    "PprofStackTree": {"elements": "[PprofStackElement!]"},
    "PprofStackElement": {"id": "ID!", "parentId": "ID!", "codeSignature": "String!", "total": "Long!",
                          "self": "Long!"},
    "PprofAnalyzation": {"tree": "PprofStackTree"},
    "PprofTaskProgress": {"logs": "[PprofTaskLog!]", "errorInstanceIds": "[ID]", "successInstanceIds": "[ID]"},
    "PprofTaskLog": {"id": "String!", "instanceId": "ID!", "instanceName": "String!",
                     "operationType": "PprofTaskLogOperationType!", "operationTime": "Long!"},
}
UPSTREAM_ENUMS = {
    "PprofTaskCreationType": ["SUCCESS", "ARGUMENT_ERROR", "ALREADY_PROFILING_ERROR"],
    "PprofTaskLogOperationType": ["NOTIFIED", "EXECUTION_FINISHED", "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR",
                                  "EXECUTION_TASK_ERROR"],
    "PprofEventType": ["CPU", "HEAP", "BLOCK", "MUTEX", "GOROUTINE", "THREADCREATE", "ALLOCS"],
}
UPSTREAM_ROOT = {
    "Mutation": {"createPprofTask": ("PprofTaskCreationResult!", {"pprofTaskCreationRequest": "PprofTaskCreationRequest!"})},
    "Query": {"queryPprofTaskList": ("PprofTaskListResult!", {"request": "PprofTaskListRequest!"}),
              "queryPprofTaskProgress": ("PprofTaskProgress!", {"taskId": "String!"}),
              "queryPprofAnalyze": ("PprofAnalyzation!", {"request": "PprofAnalyzationRequest!"})},
}

INTROSPECT = """{ __schema { types { name kind enumValues { name }
  fields { name type { ...T } args { name type { ...T } } } inputFields { name type { ...T } } } } }
fragment T on __Type { kind name ofType { kind name ofType { kind name ofType { kind name } } } }"""


def type_ref(t) -> str:
    if t["kind"] == "NON_NULL":
        return type_ref(t["ofType"]) + "!"
    if t["kind"] == "LIST":
        return "[" + type_ref(t["ofType"]) + "]"
    return t["name"]


@pytest.fixture(scope="module")
def secured(spawn):
    return spawn("all", PROFTASK_TOKENS=TOKENS)


def gql(stack, token, query, variables=None):
    r = stack.post("/graphql", {"query": query, "variables": variables or {}},
                   headers={"Authorization": f"Bearer {token}"})
    assert r.status == 200, r
    return r.json()


CREATE = """mutation ($r: PprofTaskCreationRequest!) { createPprofTask(pprofTaskCreationRequest: $r) {
  code errorReason id warnings } }"""
LIST = """query ($r: PprofTaskListRequest!) { queryPprofTaskList(request: $r) { errorReason
  tasks { id serviceId serviceInstanceIds createTime events duration dumpPeriod } } }"""
PROGRESS = """query ($id: String!) { queryPprofTaskProgress(taskId: $id) {
  logs { id instanceId instanceName operationType operationTime } errorInstanceIds successInstanceIds } }"""
ANALYZE = """query ($r: PprofAnalyzationRequest!) { queryPprofAnalyze(request: $r) {
  tree { elements { id parentId codeSignature total self } } } }"""


def test_the_served_schema_has_every_type_and_field_of_skywalkings_pprof_graphqls(secured):
    types = {t["name"]: t for t in gql(secured, "acme-user", INTROSPECT)["data"]["__schema"]["types"]}
    for name, fields in UPSTREAM_PPROF.items():
        served = {f["name"]: type_ref(f["type"]) for f in (types[name]["fields"] or types[name]["inputFields"])}
        for field, ref in fields.items():
            assert served.get(field) == ref, (name, field, served.get(field), ref)
    for name, values in UPSTREAM_ENUMS.items():
        assert [v["name"] for v in types[name]["enumValues"]] == values
    for root, fields in UPSTREAM_ROOT.items():
        served = {f["name"]: f for f in types[root]["fields"]}
        for field, (ref, args) in fields.items():
            assert type_ref(served[field]["type"]) == ref
            assert {a["name"]: type_ref(a["type"]) for a in served[field]["args"]} == args
    assert types["Long"]["kind"] == "SCALAR"


def test_swctl_preflight_version_time_layers_and_find_service(secured):
    data = gql(secured, "acme-user", "{ version getTimeInfo { timezone currentTimestamp } listLayers "
                                      "findService(serviceName: \"checkout\") { id name } }")["data"]
    assert int(data["version"].split(".")[0]) >= 9
    assert len(data["getTimeInfo"]["timezone"]) == 5 and isinstance(data["getTimeInfo"]["currentTimestamp"], int)
    assert data["listLayers"] == ["GENERAL"]
    assert data["findService"] == {"id": "Y2hlY2tvdXQ=.1", "name": "checkout"}


def test_a_task_created_by_ids_is_the_rest_task_and_its_analysis_equals_rest(secured, swclient):
    service = f"shop-{uuid.uuid4().hex[:6]}"
    sid = ids.service_id(service)
    r = gql(secured, "acme-user", CREATE, {"r": {"serviceId": sid, "serviceInstanceIds": [ids.instance_id(service, "pod-1"), "pod-2"],
                                                 "events": "CPU", "duration": 1}})
    created = r["data"]["createPprofTask"]
    assert created["code"] == "SUCCESS" and created["errorReason"] is None, r
    task_id = created["id"]
    auth = {"headers": {"Authorization": "Bearer acme-user"}}
    rest = secured.get(f"/api/v1/pprof/tasks/{task_id}", **auth).json()
    assert rest["serviceId"] == service and rest["serviceInstanceIds"] == ["pod-1", "pod-2"]

    for by in (sid, service):  # an id or a name
        (task,) = gql(secured, "acme-user", LIST, {"r": {"serviceId": by}})["data"]["queryPprofTaskList"]["tasks"]
        assert task == {"id": task_id, "serviceId": sid, "createTime": rest["createTime"], "events": "CPU",
                        "serviceInstanceIds": [ids.instance_id(service, "pod-1"), ids.instance_id(service, "pod-2")],
                        "duration": 1, "dumpPeriod": 0}
    # delivered to a SkyWalking agent polling by its names (SW_AGENT_NAME, SW_AGENT_INSTANCE_NAME)
    polled = subprocess.run([str(swclient), "-target", secured.grpc_target, "-auth", "acme-agent", "poll",
                             "-service", service, "-instance", "pod-2"], capture_output=True, text=True, timeout=60)
    assert json.loads(polled.stdout)["commands"][0]["args"]["TaskId"] == task_id, polled
    # a second CPU task while this one runs: SkyWalking's code, not an error
    again = gql(secured, "acme-user", CREATE, {"r": {"serviceId": service, "serviceInstanceIds": ["pod-1"],
                                                      "events": "CPU", "duration": 1}})
    assert again["data"]["createPprofTask"]["code"] == "ALREADY_PROFILING_ERROR"

    profile = (require_conformance() / "go/pprof-sample.cpu.pb.gz").read_bytes()
    up = secured.post(f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance=pod-1", raw=profile,
                      headers={"Authorization": "Bearer acme-agent"})
    assert up.status == 202, up

    def finished():
        p = gql(secured, "acme-user", PROGRESS, {"id": task_id})["data"]["queryPprofTaskProgress"]
        return p if p["successInstanceIds"] else None
    progress = wait_until(finished)
    assert progress["successInstanceIds"] == [ids.instance_id(service, "pod-1")] and progress["errorInstanceIds"] == []
    assert {(entry["instanceName"], entry["operationType"]) for entry in progress["logs"]} >= {("pod-1", "EXECUTION_FINISHED")}

    tree = gql(secured, "acme-user", ANALYZE, {"r": {"taskId": task_id, "instanceIds": [ids.instance_id(service, "pod-1")]}})
    elements = tree["data"]["queryPprofAnalyze"]["tree"]["elements"]
    expected = secured.get(f"/api/v1/pprof/tasks/{task_id}/analysis?instanceIds=pod-1", **auth).json()["tree"]["elements"]
    assert elements == expected and elements[0]["parentId"] == "-1" and len(elements) > 10


def test_another_tenants_task_is_not_found_and_bad_input_is_a_graphql_error(secured):
    service = f"shop-{uuid.uuid4().hex[:6]}"
    created = gql(secured, "acme-user", CREATE, {"r": {"serviceId": service, "serviceInstanceIds": ["pod-1"],
                                                        "events": "HEAP"}})["data"]["createPprofTask"]
    task_id = created["id"]
    assert gql(secured, "globex-user", LIST, {"r": {"serviceId": service}})["data"]["queryPprofTaskList"]["tasks"] == []
    for query, variables in ((PROGRESS, {"id": task_id}), (ANALYZE, {"r": {"taskId": task_id, "instanceIds": []}})):
        r = gql(secured, "globex-user", query, variables)
        assert r["data"] is None and "not found" in r["errors"][0]["message"], r
    # GraphQL's instanceIds is a list of names: one is never split at commas (REST's choices are),
    # nor is a name that is only commas every instance
    for names in ([","], ["pod-1,pod-1"], [""]):
        r = gql(secured, "acme-user", ANALYZE, {"r": {"taskId": task_id, "instanceIds": names}})
        assert r["data"] is None and "are not instances of task" in r["errors"][0]["message"], (names, r)
    assert secured.post("/graphql", {"query": "{ version }"}).status == 401
    assert secured.post("/graphql", {"query": "{ version }"}, headers={"Authorization": "Bearer acme-agent"}).status == 403

    bad = gql(secured, "acme-user", CREATE, {"r": {"serviceId": service, "serviceInstanceIds": [], "events": "CPU",
                                                    "duration": 99}})
    assert bad["data"]["createPprofTask"]["code"] == "ARGUMENT_ERROR"
    assert "duration" in bad["data"]["createPprofTask"]["errorReason"]
    wrong = gql(secured, "acme-user", CREATE, {"r": {"serviceId": service, "serviceInstanceIds": ["a"], "events": "DISK"}})
    assert wrong["errors"] and "DISK" in wrong["errors"][0]["message"]
    assert "errors" in gql(secured, "acme-user", "{ nope }")
    r = secured.post("/graphql", raw=b"{not json", headers={"Authorization": "Bearer acme-user"})
    assert r.status == 400
    r = secured.get("/graphql?query=" + "mutation%20%7B%20version%20%7D", headers={"Authorization": "Bearer acme-user"})
    assert r.status == 400
    r = secured.get("/graphql?query=%7B%20version%20%7D", headers={"Authorization": "Bearer acme-user"})
    assert r.status == 200 and r.json() == {"data": {"version": "10.3"}}


def test_a_request_of_thousands_of_aliases_is_refused_before_it_is_resolved(secured):
    """8,000 aliases of `__schema` (a 415 KB body) held the event loop 40 s, every tenant's requests
    and agents with it, and answered 68 MB: now an error of the request, at once."""
    aliases = " ".join(f"a{i}: __schema {{ types {{ name fields {{ name type {{ name }} }} }} }}" for i in range(8000))
    started = time.monotonic()
    r = gql(secured, "acme-user", "{" + aliases + "}")
    assert r.get("data") is None and "more than the 131072 proftask parses" in r["errors"][0]["message"], r
    r = gql(secured, "acme-user", "{" + aliases[:100_000].rpartition(" a")[0] + "}")
    assert r.get("data") is None and "more than 5000 tokens" in r["errors"][0]["message"], r
    assert time.monotonic() - started < 2  # refused as it is parsed: parsing it whole took 1.2 s, validating 2.4 s
    r = gql(secured, "acme-user", "{" + " ".join(f"v{i}: version" for i in range(26)) + "}")  # few tokens, many fields
    assert r.get("data") is None and "fields at its top; at most 25 a request" in r["errors"][0]["message"], r
    # an element's fields are answered for every node of the tree: aliases of them are bounded too
    many = " ".join(f"c{i}: codeSignature" for i in range(13))
    r = gql(secured, "acme-user", '{ queryPprofAnalyze(request: {taskId: "x", instanceIds: []}) '
                                  '{ tree { elements { %s } } } }' % many)
    assert r.get("data") is None and "elements selects 13 fields; at most 12" in r["errors"][0]["message"], r
    assert gql(secured, "acme-user", INTROSPECT)["data"]["__schema"]["types"]  # what clients ask still served


@pytest.fixture(scope="module")
def swquery(tmp_path_factory):
    """tests/integration/swclient/swquery: asks what swctl asks, decoding with goapi's `query` types."""
    binary = tmp_path_factory.mktemp("swquery") / "swquery"
    subprocess.run(["go", "build", "-o", str(binary), "./swquery"], cwd=ROOT / "tests/integration/swclient",
                   check=True, timeout=600)
    return binary


def swq(binary, stack, *args):
    out = subprocess.run([str(binary), "-base-url", stack.base + "/graphql", "-token", "acme-user", *args],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_a_swctl_like_client_on_goapi_creates_lists_follows_and_analyses_by_names(secured, swquery):
    service = f"shop-{uuid.uuid4().hex[:6]}"
    names = ["--service-name", service]
    created = swq(swquery, secured, "create", *names, "--instance-name-list", "pod-1,pod-2", "--events", "cpu")
    assert created["code"] == "SUCCESS", created
    task_id = created["id"]
    (task,) = swq(swquery, secured, "list", *names)["tasks"]
    assert task["id"] == task_id and task["serviceInstanceIds"] == [ids.instance_id(service, "pod-1"),
                                                                    ids.instance_id(service, "pod-2")]
    profile = (require_conformance() / "go/pprof-sample.cpu.pb.gz").read_bytes()
    for instance in ("pod-1", "pod-2"):
        up = secured.post(f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance={instance}", raw=profile,
                          headers={"Authorization": "Bearer acme-agent"})
        assert up.status == 202, up
    progress = wait_until(lambda: (lambda p: p if len(p.get("successInstanceIds") or []) == 2 else None)(
        swq(swquery, secured, "progress", "--task-id", task_id)))
    assert sorted(progress["successInstanceIds"]) == sorted(task["serviceInstanceIds"])
    tree = swq(swquery, secured, "analyze", *names, "--task-id", task_id, "--instance-name-list", "pod-1,pod-2")
    rest = secured.get(f"/api/v1/pprof/tasks/{task_id}/analysis",
                       headers={"Authorization": "Bearer acme-user"}).json()["tree"]["elements"]
    assert tree["tree"]["elements"] == rest


def test_the_large_tree_over_graphql_is_the_rest_tree_in_every_shape_it_is_asked(secured):
    """The 425k-node tree is rendered as text, not walked by GraphQL's executor (which took
    6.7 s on the event loop, every other request waiting): the same elements as REST, and the
    shape a query asks, aliases, fragments, __typename and @skip as GraphQL answers them; one
    tree a request."""
    auth = {"headers": {"Authorization": "Bearer acme-user"}}
    service = f"big-{uuid.uuid4().hex[:6]}"
    task_id = gql(secured, "acme-user", CREATE, {"r": {"serviceId": service, "serviceInstanceIds": ["pod-1"],
                                                        "events": "CPU", "duration": 1}})["data"]["createPprofTask"]["id"]
    large = (require_conformance() / "large/pprof-large.cpu.pb.gz").read_bytes()
    up = secured.post(f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance=pod-1", raw=large,
                      headers={"Authorization": "Bearer acme-agent"})
    assert up.status == 202, up
    wait_until(lambda: secured.get(f"/api/v1/pprof/tasks/{task_id}/progress", **auth).json()["successInstanceIds"],
               timeout=120)
    rest = secured.get(f"/api/v1/pprof/tasks/{task_id}/analysis", **auth).json()["tree"]["elements"]
    assert len(rest) > 400_000

    plain = gql(secured, "acme-user", ANALYZE, {"r": {"taskId": task_id, "instanceIds": []}})
    assert plain == {"data": {"queryPprofAnalyze": {"tree": {"elements": rest}}}}

    shaped = gql(secured, "acme-user", """query ($r: PprofAnalyzationRequest!, $no: Boolean!) {
        version a: queryPprofAnalyze(request: $r) { __typename t: tree { ... on PprofStackTree {
          e: elements { ...F n: id parentId @skip(if: $no) } } } } }
        fragment F on PprofStackElement { self total __typename }""",
                 {"r": {"taskId": task_id, "instanceIds": [ids.instance_id(service, "pod-1")]}, "no": True})
    assert shaped["data"]["version"] == "10.3"
    answer = shaped["data"]["a"]
    assert list(answer) == ["__typename", "t"] and answer["__typename"] == "PprofAnalyzation"
    elements = answer["t"]["e"]
    assert list(elements[0]) == ["self", "total", "__typename", "n"]
    assert elements == [{"self": e["self"], "total": e["total"], "__typename": "PprofStackElement", "n": e["id"]}
                        for e in rest]

    twice = gql(secured, "acme-user", """query ($r: PprofAnalyzationRequest!) {
        a: queryPprofAnalyze(request: $r) { tree { elements { id } } }
        b: queryPprofAnalyze(request: $r) { tree { elements { id } } } }""",
                {"r": {"taskId": task_id, "instanceIds": []}})
    one_tree = ("a request gets one tree: select queryPprofAnalyze, and its elements, once; send another request "
                "for another")
    assert twice["data"] is None and [e["message"] for e in twice["errors"]] == [one_tree]
    # nor by a fragment spread under several aliases
    spread = gql(secured, "acme-user", """query ($r: PprofAnalyzationRequest!) {
        queryPprofAnalyze(request: $r) { a: tree { ...E } b: tree { ...E } } }
        fragment E on PprofStackTree { elements { id } }""", {"r": {"taskId": task_id, "instanceIds": []}})
    assert spread["data"] is None and [e["message"] for e in spread["errors"]] == [one_tree]
    # two operations in a document, one of them run: its tree
    two = """query A ($r: PprofAnalyzationRequest!) { queryPprofAnalyze(request: $r) { tree { elements { id } } } }
        query B ($r: PprofAnalyzationRequest!) { queryPprofAnalyze(request: $r) { tree { elements { id } } } }"""
    chosen = secured.post("/graphql", {"query": two, "operationName": "A",
                                       "variables": {"r": {"taskId": task_id, "instanceIds": []}}},
                          headers={"Authorization": "Bearer acme-user"}).json()
    assert chosen == {"data": {"queryPprofAnalyze": {"tree": {"elements": [{"id": e["id"]} for e in rest]}}}}


def test_a_long_name_or_value_in_a_request_is_quoted_cut_and_a_long_document_refused_at_once(secured):
    """Errors quoted the request whole (an unknown field of 900 KB answered 900 KB; one unknown
    input field of 1 MB, 2 MB), and a document of one long name was parsed whole on the event
    loop, every other request waiting (~0.25 s a MB)."""
    name = "a" * 100_000
    for query, variables in (("{" + name + "}", None),
                             ("query($r: PprofTaskListRequest!) { queryPprofTaskList(request: $r) { tasks { id } } }",
                              {"r": {"serviceId": "s", name: 1}}),
                             ("query($r: PprofTaskListRequest!) { queryPprofTaskList(request: $r) { tasks { id } } }",
                              {"r": {"serviceId": ["x" * 100_000]}})):
        r = gql(secured, "acme-user", query, variables)
        message = r["errors"][0]["message"]
        assert len(message) < 1_200 and "characters)" in message, message[:2000]
    started = time.monotonic()
    r = gql(secured, "acme-user", "{" + "a" * 1_000_000 + "}")
    assert "more than the 131072 proftask parses" in r["errors"][0]["message"] and time.monotonic() - started < 2
    # limit 0 is out of range, as -1 is and REST's limit=0 (it was taken as no limit)
    r = gql(secured, "acme-user", "{ queryPprofTaskList(request: {serviceId: \"s\", limit: 0}) { tasks { id } } }")
    assert r["data"] is None and "limit must be from 1 to 10000, got 0" in r["errors"][0]["message"], r
