"""query_svc's answers as HTTP sees them: every JSON shape (and every download's headers) of
its routes, in one place. The routes and the analysis use case compute; these spell.

A tree's elements arrive as JSON text already (proftask.core.flamegraph.render_elements): a
merged tree is too large to go through json.dumps as objects.
"""
from __future__ import annotations

import json
import pathlib
from collections.abc import Sequence

import numpy as np

from aiohttp import payload, web
from aiohttp.abc import AbstractStreamWriter

from proftask.core.diff import DiffColumns
from proftask.core.exports import to_folded, to_speedscope
from proftask.core.progress import Progress
from proftask.core.top import FunctionRow
from proftask.analysis.selection import Selection

# Nothing from the server is ever parsed as HTML by the UI; the policy makes sure.
UI_HEADERS = {"Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'",
              "Cache-Control": "no-cache"}


# A body written to the socket this much at a time: asyncio's transport takes one large write
# into its buffer and shrinks that buffer (copying what is left) as the socket drains, so a 42 MB
# tree written whole reached a client in 0.12-0.35 s on this machine, and in 0.04-0.06 s written
# in these pieces (each waits for the transport to drain).
BODY_PIECE = 1 << 20


class _BodyInPieces(payload.Payload):
    """Bytes written BODY_PIECE at a time; the same bytes and headers as a bytes body (not a
    BytesPayload: that warns about any body past 1 MB)."""

    _autoclose = True

    def __init__(self, value: bytes, content_type: str):
        super().__init__(value, content_type=content_type)
        self._size = len(value)

    def decode(self, encoding: str = "utf-8", errors: str = "strict") -> str:
        return self._value.decode(encoding, errors)

    async def write(self, writer: AbstractStreamWriter) -> None:
        await self.write_with_length(writer, None)

    async def write_with_length(self, writer: AbstractStreamWriter, content_length: int | None) -> None:
        view = memoryview(self._value)[:content_length]
        for start in range(0, len(view), BODY_PIECE):
            await writer.write(view[start:start + BODY_PIECE])


def _bytes_response(body: bytes, content_type: str, charset: str | None = None,
                    headers: dict[str, str] | None = None) -> web.Response:
    """Bytes already made, a large body written in pieces (_BodyInPieces)."""
    if len(body) > BODY_PIECE:
        full_type = f"{content_type}; charset={charset}" if charset else content_type
        return web.Response(body=_BodyInPieces(body, content_type=full_type), headers=headers)
    return web.Response(body=body, content_type=content_type, charset=charset, headers=headers)


def json_body(body: bytes) -> web.Response:
    """An answer already rendered to JSON bytes (a cached analysis, a tree)."""
    return _bytes_response(body, "application/json")


def ui_index(path: pathlib.Path) -> web.FileResponse:
    return web.FileResponse(path, headers=UI_HEADERS)


def with_tree(head: dict, elements_json: str | bytes | np.ndarray | list[memoryview]) -> bytes:
    """`head` with "tree": {"elements": …} added, the elements being JSON text already (as str,
    or as UTF-8 bytes: a whole tree's 40 MB need not go through str and back, or as pieces of
    UTF-8 bytes back to back)."""
    pieces: list[bytes | memoryview] = (
        list(elements_json) if isinstance(elements_json, list)
        else [elements_json.encode()] if isinstance(elements_json, str)
        else [elements_json.data] if isinstance(elements_json, np.ndarray) else [elements_json])
    return b"".join((json.dumps(head)[:-1].encode(), b', "tree": {"elements": ', *pieces, b"}}"))


def progress_json(progress: Progress) -> dict:
    """A task's progress in SkyWalking's shape (PprofTaskProgress)."""
    return {
        "logs": [
            {
                "id": log.task_id,
                "instanceId": log.instance_id,
                "instanceName": log.instance_id,  # instances are named by their ids here
                "operationType": log.operation_type,
                "operationTime": log.operation_time,
                "message": log.message,
            }
            for log in progress.logs
        ],
        "successInstanceIds": progress.success_instance_ids,
        "errorInstanceIds": progress.error_instance_ids,
    }


def progress(p: Progress) -> web.Response:
    return web.json_response(progress_json(p))


def analysis_body(sel: Selection, truncated: int, focus: tuple[str, ...] | None, instance_count: int | None,
                  elements_json: str | bytes | np.ndarray | list[memoryview]) -> bytes:
    """The flame-graph analysis: the selection, how many nodes maxNodes dropped, the focus and
    (with instanceStats) the instance count, then the tree."""
    head: dict = {"taskId": sel.task_id, "sampleType": sel.sample_type, "sampleTypes": sel.sample_types,
                  "instanceIds": sel.instance_ids, "truncated": truncated}
    if focus is not None:
        head["focus"] = list(focus)
    if instance_count is not None:
        head["instanceCount"] = instance_count
    return with_tree(head, elements_json)


def top_json(rows: Sequence[FunctionRow], limit: int = 0) -> list[dict]:
    return [{"name": r.name, "flat": r.flat, "cum": r.cum} for r in (rows[:limit] if limit else rows)]


def top_body(sel: Selection, total: int, rows: Sequence[FunctionRow], limit: int) -> bytes:
    """pprof's -top: the selection, the total and the first `limit` rows (all with 0)."""
    return json.dumps({"taskId": sel.task_id, "sampleType": sel.sample_type, "sampleTypes": sel.sample_types,
                       "instanceIds": sel.instance_ids, "granularity": sel.granularity,
                       "total": total,
                       "rows": top_json(rows, limit)}).encode()


def diff_body(base: Selection, compare: Selection, columns: DiffColumns, truncated: int,
              elements_json: str) -> bytes:
    head = {"sampleType": base.sample_type, "truncated": truncated,
            "base": {"taskId": base.task_id, "instanceIds": base.instance_ids, "total": columns.base_root},
            "compare": {"taskId": compare.task_id, "instanceIds": compare.instance_ids,
                        "total": columns.compare_root}}
    return with_tree(head, elements_json)


def _attachment(filename: str) -> dict[str, str]:
    return {"Content-Disposition": f'attachment; filename="{filename}"'}


def export_filename(task_id: str) -> str:
    return f"proftask-{task_id}"


def pprof_download(task_id: str, body: bytes) -> web.Response:
    return _bytes_response(body, "application/octet-stream", headers=_attachment(f"{export_filename(task_id)}.pb.gz"))


def folded_body(stacks) -> bytes:
    """The folded export's bytes (made in an answer thread: tens of MB for a large task)."""
    return to_folded(stacks).encode()


def folded_download(task_id: str, body: bytes) -> web.Response:
    return _bytes_response(body, "text/plain", "utf-8", _attachment(f"{export_filename(task_id)}.folded"))


def speedscope_body(task_id: str, sample_type: str | None, stacks) -> bytes:
    return json.dumps(to_speedscope(f"proftask task {task_id}", sample_type or "", stacks)).encode()


def speedscope_download(task_id: str, body: bytes) -> web.Response:
    return _bytes_response(body, "application/json", "utf-8",
                           _attachment(f"{export_filename(task_id)}.speedscope.json"))
