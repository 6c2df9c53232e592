"""Resolvers of SkyWalking's query protocol: translate ids and shapes, call the use cases the
REST routes call (proftask.task_usecases, proftask.analysis: the selection and the queries), nothing more."""
from __future__ import annotations

import datetime
import pathlib

from ariadne import MutationType, QueryType, ScalarType, load_schema_from_path, make_executable_schema
from graphql import GraphQLError

from proftask.agents_view import SEEN_INTERVAL_S, AgentsView
from proftask.core import skywalking_ids as ids
from proftask.core.flamegraph import NodeColumns, preorder, render_element_fields
from proftask.core.progress import derive_progress
from proftask.core.echo import echo
from proftask.errors import ProftaskError
from proftask.http.errors import http_status
from proftask.analysis import analysis_queries, progress_queries
from proftask.analysis.selection import require_task, select
from proftask import task_usecases as usecases
from proftask.task_view import TaskView
from proftask.analysis.answer_threads import off_loop
from services.graphql_svc.big_answers import elements_selections

SCHEMA_FILE = pathlib.Path(__file__).resolve().parents[2] / "schemas" / "skywalking" / "query-protocol.graphqls"
VERSION = "10.3"  # swctl picks its query documents by the major version (9+: the current ones)
LAYER = "GENERAL"  # agent-installed services
DEFAULT_LIST_LIMIT, MAX_LIST_LIMIT = 200, 10_000
DURATION_FORMATS = {"SECOND": "%Y-%m-%d %H%M%S", "MINUTE": "%Y-%m-%d %H%M", "HOUR": "%Y-%m-%d %H",
                    "DAY": "%Y-%m-%d"}

query = QueryType()
mutation = MutationType()
long_scalar = ScalarType("Long")


@long_scalar.serializer
def _serialize_long(value) -> int:
    return int(value)


@long_scalar.value_parser
def _parse_long(value) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise GraphQLError(f"Long must be an integer, got {echo(value)}")
    return value


def graphql_error(e: ProftaskError) -> GraphQLError:
    # the ProftaskError kept as the cause: the error log tells the client's errors from the server's
    return GraphQLError(e.reason, extensions={"code": e.code}, original_error=e)


def _ctx(info):
    return info.context["svc"], info.context["tenant"]


def _service(name: str) -> dict:
    return {"id": ids.service_id(name), "name": name, "group": "", "shortName": name,
            "layers": [LAYER], "normal": True}


def _instance(service: str, name: str) -> dict:
    iid = ids.instance_id(service, name)
    return {"id": iid, "name": name, "attributes": [], "language": "GO", "instanceUUID": iid, "layer": LAYER}


def _ready_view(svc) -> TaskView:
    """The task view once it holds the whole history: a list read from it before would leave
    out services and instances that have tasks."""
    try:
        return usecases.ready_view(svc.tasks)
    except ProftaskError as e:
        raise graphql_error(e) from None


def _ready_agents(svc) -> AgentsView:
    """The live agents once loaded, as REST's /services answers them (503 before)."""
    try:
        return svc.agents.require_ready()
    except ProftaskError as e:
        raise graphql_error(e) from None


def _service_names(svc, tenant: str) -> list[str]:
    """Services with a live agent, and services that have tasks."""
    names = {t.spec.service_id for t in _ready_view(svc).all_tasks(tenant)}
    if svc.agents is not None:
        names |= set(_ready_agents(svc).services(tenant))
    return sorted(names)


def _instance_names(svc, tenant: str, service: str) -> list[str]:
    names = {i for t in _ready_view(svc).tasks_of_service(tenant, service) for i in t.spec.service_instance_ids}
    if svc.agents is not None:
        names |= {a.instance for a in _ready_agents(svc).instances(tenant, service)}
    return sorted(names)


@query.field("version")
def resolve_version(*_):
    return VERSION


@query.field("getTimeInfo")
def resolve_time_info(*_):
    now = datetime.datetime.now().astimezone()
    ms = int(now.timestamp() * 1000)
    return {"timezone": now.strftime("%z"), "currentTimestamp": ms, "timestamp": ms}


@query.field("listLayers")
def resolve_layers(*_):
    return [LAYER]


@query.field("listServices")
@query.field("getAllServices")
def resolve_services(_, info, layer=None, duration=None):
    svc, tenant = _ctx(info)
    if layer is not None and layer.upper() != LAYER:
        return []
    return [_service(n) for n in _service_names(svc, tenant)]


@query.field("findService")
def resolve_find_service(_, info, serviceId=None, serviceName=None):
    name = ids.service_name(serviceId or serviceName or "")
    # Any name is a service here: a task may wait for agents that have not polled yet.
    return _service(name) if name else None


@query.field("searchService")
def resolve_search_service(_, info, serviceCode):
    return _service(serviceCode) if serviceCode else None


@query.field("getServiceInstances")
def resolve_instances(_, info, serviceId, duration=None):
    svc, tenant = _ctx(info)
    service = ids.service_name(serviceId)
    return [_instance(service, n) for n in _instance_names(svc, tenant, service)]


@query.field("listInstances")
def resolve_instances_in_window(_, info, serviceId, duration=None):
    """booster-ui's instance picker: with a duration, the instances whose agent was seen in it
    (an agent reports being seen at most once a SEEN_INTERVAL_S, hence the slack)."""
    if not duration:
        return resolve_instances(_, info, serviceId)
    svc, tenant = _ctx(info)
    service = ids.service_name(serviceId)
    start, end = _duration_ms(duration)
    slack = int(SEEN_INTERVAL_S * 1000)
    live = svc.agents.instances(tenant, service) if svc.agents is not None else []
    return [_instance(service, a.instance) for a in live if a.first_seen <= end and a.last_seen + slack >= start]


@query.field("findInstance")
def resolve_find_instance(_, info, instanceId):
    head, sep, _tail = instanceId.partition("_")
    if not sep:
        return None
    service = ids.service_name(head)
    name = ids.instance_name(instanceId, head)
    return None if name == instanceId else _instance(service, name)


@mutation.field("createPprofTask")
async def resolve_create(_, info, pprofTaskCreationRequest):
    svc, tenant = _ctx(info)
    req = pprofTaskCreationRequest
    service = ids.service_name(req["serviceId"])
    body = {"serviceId": service,
            "serviceInstanceIds": [ids.instance_name(i, service) for i in req["serviceInstanceIds"]],
            "events": req["events"], "duration": req.get("duration"), "dumpPeriod": req.get("dumpPeriod")}
    try:
        _status, answer = await usecases.create_task(svc.tasks, tenant, body)
    except ProftaskError as e:
        raise graphql_error(e) from None
    return {"code": answer["code"], "errorReason": answer["errorReason"], "id": answer["id"],
            "warnings": answer.get("warnings")}


def _duration_ms(duration: dict | None) -> tuple[int | None, int | None]:
    if not duration:
        return None, None
    fmt = DURATION_FORMATS.get(duration["step"])
    try:
        if fmt is None:
            raise ValueError(f"unknown step {duration['step']}")
        start = datetime.datetime.strptime(duration["start"], fmt).astimezone()
        end = datetime.datetime.strptime(duration["end"], fmt).astimezone()
    except (TypeError, ValueError):
        raise GraphQLError(f"queryDuration start and end must be written as {fmt} for step "
                           f"{duration['step']}, got {echo(duration['start'])} and {echo(duration['end'])}") from None
    step = {"SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400}[duration["step"]]
    return int(start.timestamp() * 1000), int((end.timestamp() + step) * 1000) - 1


def task_answer(task) -> dict:
    service = task.spec.service_id
    return {"id": task.task_id, "serviceId": ids.service_id(service),
            "serviceInstanceIds": [ids.instance_id(service, i) for i in task.spec.service_instance_ids],
            "createTime": task.create_time, "events": task.spec.events.name,
            "duration": task.spec.duration, "dumpPeriod": task.spec.dump_period}


@query.field("queryPprofTaskList")
def resolve_task_list(_, info, request):
    svc, tenant = _ctx(info)
    limit = request.get("limit")
    limit = DEFAULT_LIST_LIMIT if limit is None else limit
    if not 1 <= limit <= MAX_LIST_LIMIT:
        raise GraphQLError(f"limit must be from 1 to {MAX_LIST_LIMIT}, got {limit}")
    start, end = _duration_ms(request.get("queryDuration"))
    tasks = usecases.list_tasks(_ready_view(svc), tenant, ids.service_name(request["serviceId"]), start, end, limit)
    return {"errorReason": None, "tasks": [task_answer(t) for t in tasks]}


async def _task(svc, tenant: str, task_id: str):
    task = await _ready_view(svc).find(tenant, task_id)
    if task is None:
        raise GraphQLError(f"task {echo(task_id)} not found", extensions={"code": "NOT_FOUND"})
    return task


@query.field("queryPprofTaskProgress")
async def resolve_progress(_, info, taskId):
    svc, tenant = _ctx(info)
    task = await _task(svc, tenant, taskId)
    service = task.spec.service_id
    try:
        await require_task(svc.clickhouse, svc.tasks.view, tenant, taskId)
        logs = await progress_queries.task_logs(svc.clickhouse, tenant, taskId)
    except ProftaskError as e:
        if http_status(e) == 404:  # created, but the processor has not written it yet: nothing happened
            logs = []
        else:
            raise graphql_error(e) from None
    progress = derive_progress(logs)
    return {"logs": [{"id": log.task_id, "instanceId": ids.instance_id(service, log.instance_id),
                      "instanceName": log.instance_id, "operationType": log.operation_type,
                      "operationTime": log.operation_time} for log in progress.logs],
            "successInstanceIds": [ids.instance_id(service, i) for i in progress.success_instance_ids],
            "errorInstanceIds": [ids.instance_id(service, i) for i in progress.error_instance_ids]}


@query.field("queryPprofAnalyze")
async def resolve_analyze(_, info, request):
    svc, tenant = _ctx(info)
    # the elements as JSON text, spliced into the response for the list GraphQL answers here
    # (services/graphql_svc/big_answers.py): each selection of them as it asks, one a request
    wanted_elements = elements_selections(info)
    task = await _task(svc, tenant, request["taskId"])
    service = task.spec.service_id
    wanted = {ids.instance_name(i, service) for i in request["instanceIds"]}
    try:
        sel = await select(svc.clickhouse, svc.tasks.view, tenant, task.task_id, wanted, None, "function",
                           names=True)
        if not wanted_elements:  # the query selects no elements: nothing to sum
            return {"tree": {"elements": []}}
        columns = (await analysis_queries.node_columns(svc.clickhouse, tenant, task.task_id, sel.value_index,
                                                       sel.granularity, sel.sample_type)
                   if sel.value_index else NodeColumns.empty())
    except ProftaskError as e:
        raise graphql_error(e) from None
    ordered, parent_pos, _ = await off_loop(preorder, columns, 0)
    for path, fields in wanted_elements:
        info.context["splices"].add(path, await off_loop(
            render_element_fields, columns, ordered, parent_pos, fields, "PprofStackElement"))
    return {"tree": {"elements": []}}


def build_schema():
    from services.graphql_svc import booster
    return make_executable_schema(load_schema_from_path(str(SCHEMA_FILE)), query, mutation, long_scalar,
                                  booster.query, booster.mutation)
