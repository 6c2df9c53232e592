"""The response shapes of views.py (what a client reads, pinned) and pprof's sample-type rule,
for one profile and for a merge of several (proftask.analysis.selection)."""
from __future__ import annotations

import json

import pytest

from proftask.core.commands import COMMAND_NAME
from proftask.core.progress import NOTIFIED, TaskLog, derive_progress
from proftask.core.tasks import EventType, Task, TaskSpec
from proftask.core.top import FunctionRow
from proftask.http.errors import error_answer
from proftask.pprof.fold import UnknownSampleType, select_sample_type
from services.query_svc import views as query_views
from proftask.analysis.analysis_queries import StoredProfile
from proftask.analysis.selection import Selection, resolve_sample_type
from services.task_svc import views as task_views

CPU = ["samples/count", "cpu/nanoseconds"]


def stored(instance: str, types: list[str], default: int) -> StoredProfile:
    return StoredProfile(instance, f"p-{instance}", types, default, "cpu/nanoseconds", 10_000_000)


def test_a_type_matches_whole_or_by_its_name_and_none_is_the_default():
    assert select_sample_type(CPU, 1, None) == 1
    assert select_sample_type(CPU, 1, "") == 1
    assert select_sample_type(CPU, 1, "samples") == 0
    assert select_sample_type(CPU, 0, "cpu/nanoseconds") == 1


def test_an_unknown_type_is_a_400_listing_the_choices():
    with pytest.raises(UnknownSampleType) as refused:
        select_sample_type(CPU, 1, "wall")
    answer = error_answer(refused.value)
    assert answer.status == 400
    assert json.loads(answer.body) == {"code": "ARGUMENT_ERROR", "sampleTypes": CPU,
                                       "errorReason": 'unknown sample type "wall"; available: '
                                                      "samples/count, cpu/nanoseconds"}


def test_a_merge_defaults_to_the_first_profiles_default_and_finds_any_profiles_type():
    heap = ["alloc_objects/count", "alloc_space/bytes", "inuse_objects/count", "inuse_space/bytes"]
    profiles = [stored("a", CPU, 1), stored("b", heap, 3)]
    union = CPU + heap
    assert resolve_sample_type(profiles, union, None) == "cpu/nanoseconds"
    assert resolve_sample_type(profiles, union, "inuse_space") == "inuse_space/bytes"
    assert resolve_sample_type([], [], "anything") == "anything"  # nothing uploaded yet
    with pytest.raises(UnknownSampleType):
        resolve_sample_type(profiles, union, "wall")


def _selection() -> Selection:
    return Selection("acme", "t-1", [stored("b", CPU, 1), stored("a", CPU, 1)], CPU, "cpu/nanoseconds", "function")


def test_the_analysis_answer_puts_the_tree_last_and_focus_and_instance_count_only_when_asked():
    body = json.loads(query_views.analysis_body(_selection(), 3, None, None, '[{"id":"0"}]'))
    assert body == {"taskId": "t-1", "sampleType": "cpu/nanoseconds", "sampleTypes": CPU, "instanceIds": ["a", "b"],
                    "truncated": 3, "tree": {"elements": [{"id": "0"}]}}
    body = json.loads(query_views.analysis_body(_selection(), 0, ("main",), 2, "[]"))
    assert list(body) == ["taskId", "sampleType", "sampleTypes", "instanceIds", "truncated", "focus",
                          "instanceCount", "tree"]
    assert body["focus"] == ["main"] and body["instanceCount"] == 2


def test_top_cuts_its_rows_at_the_limit():
    rows = [FunctionRow("f", 5, 7), FunctionRow("g", 2, 2)]
    body = json.loads(query_views.top_body(_selection(), 7, rows, 1))
    assert body["rows"] == [{"name": "f", "flat": 5, "cum": 7}] and body["total"] == 7
    assert body["granularity"] == "function"


def test_progress_json_shape_is_skywalkings():
    body = query_views.progress_json(derive_progress([TaskLog("task", "a", NOTIFIED, 1, "")]))
    assert body == {"logs": [{"id": "task", "instanceId": "a", "instanceName": "a",
                              "operationType": "NOTIFIED", "operationTime": 1, "message": ""}],
                    "successInstanceIds": [], "errorInstanceIds": []}


def test_a_command_is_skywalkings_pprof_task_query_and_no_task_is_no_command():
    task = Task("t-1", TaskSpec("svc", ("a",), EventType.CPU, 5, 0), 1716000000000)
    assert task_views.command_json(task, "serial") == {
        "command": COMMAND_NAME, "args": [
            {"key": "SerialNumber", "value": "serial"}, {"key": "TaskId", "value": "t-1"},
            {"key": "Events", "value": "cpu"}, {"key": "Duration", "value": "5"},
            {"key": "CreateTime", "value": "1716000000000"}, {"key": "DumpPeriod", "value": "0"}]}
    assert json.loads(task_views.commands(None, "serial").body) == {"commands": []}


@pytest.mark.parametrize("size", [10, query_views.BODY_PIECE, 3 * query_views.BODY_PIECE + 17])
def test_a_json_body_reaches_a_client_whole_with_its_length_however_it_is_written(size):
    """A large answer (a whole merged tree, ~40 MB) is written in pieces: the client reads the
    same bytes and headers as for a body written at once."""
    import asyncio

    from aiohttp import ClientSession, web
    from aiohttp.test_utils import TestServer

    body = bytes(range(256)) * (size // 256) + b"x" * (size % 256)

    async def handler(request: web.Request) -> web.StreamResponse:
        return query_views.json_body(body)

    async def fetch() -> tuple[int, dict, bytes, int]:
        app = web.Application()
        app.router.add_get("/", handler)
        async with TestServer(app) as server, ClientSession() as session:
            async with session.get(server.make_url("/")) as r:
                got = await r.read()
                headers = {k: r.headers.get(k) for k in ("Content-Type", "Content-Length", "Transfer-Encoding")}
            async with session.head(server.make_url("/")) as r:
                head_length = r.headers.get("Content-Length")
            return r.status, headers, got, head_length

    status, headers, got, head_length = asyncio.run(fetch())
    assert status == 200 and got == body
    assert headers == {"Content-Type": "application/json", "Content-Length": str(size), "Transfer-Encoding": None}
    assert head_length == str(size)
