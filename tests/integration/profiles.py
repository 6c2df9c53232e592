"""Helpers for tests that upload profiles and read analyses."""
from __future__ import annotations

import pathlib
import tempfile
import time
import uuid

from tests.integration.harness import Proftask, wait_until


def cached_profile(size_mb: float) -> pathlib.Path:
    """A valid synthetic profile of about size_mb MiB gzipped (bench/big_profile.py), made once
    per machine: it takes seconds."""
    from bench.big_profile import big_profile

    path = pathlib.Path(tempfile.gettempdir()) / f"proftask-big-profile-{size_mb:g}mb.pb.gz"
    if not path.exists():
        tmp = path.with_suffix(f".{time.monotonic_ns()}.tmp")
        tmp.write_bytes(big_profile(int(size_mb * 1024 * 1024)))
        tmp.rename(path)
    return path


def create_task(p: Proftask, instances, events="HEAP", service: str | None = None, **kw) -> str:
    service = service or f"svc-{uuid.uuid4().hex[:8]}"
    r = p.post("/api/v1/pprof/tasks", {"serviceId": service, "serviceInstanceIds": list(instances),
                                       "events": events, **kw})
    assert r.status == 201, r
    return r.json()["id"]


def events_for(profile: pathlib.Path) -> dict:
    """create_task's arguments for a task whose event takes this profile (a task refuses a
    profile of another event): the first event the profile fits, with the fields it needs."""
    from proftask.core.profile_fit import misfit
    from proftask.core.tasks import EventType
    from proftask.ingest.upload import check_profile

    types = check_profile(profile.read_bytes(), 1 << 30)
    event = next(e for e in EventType if misfit(e, types) is None)
    return {"events": event.name, "duration": 1 if event.needs_duration else None,
            "dumpPeriod": 10 if event.needs_dump_period else None}


def upload(p: Proftask, task_id: str, instance: str, data: bytes | pathlib.Path, key: str | None = None,
           timeout: float = 60):
    body = data.read_bytes() if isinstance(data, pathlib.Path) else data
    headers = {"Content-Type": "application/octet-stream"}
    if key:
        headers["Idempotency-Key"] = key
    return p.request("POST", f"/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance={instance}",
                     raw=body, headers=headers, timeout=timeout)


def progress(p: Proftask, task_id: str) -> dict:
    r = p.get(f"/api/v1/pprof/tasks/{task_id}/progress")
    return r.json() if r.status == 200 else {"logs": [], "successInstanceIds": [], "errorInstanceIds": []}


def wait_finished(p: Proftask, task_id: str, instances, timeout: float = 120) -> dict:
    want = sorted(set(instances))
    return wait_until(lambda: (lambda pr: pr if sorted(pr["successInstanceIds"]) == want else None)(
        progress(p, task_id)), timeout=timeout, interval=0.1, message=f"{want} finished")


def logs_of(p: Proftask, task_id: str, operation_type: str) -> list[dict]:
    return [entry for entry in progress(p, task_id)["logs"] if entry["operationType"] == operation_type]


def analysis(p: Proftask, task_id: str, **params) -> dict:
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    r = p.get(f"/api/v1/pprof/tasks/{task_id}/analysis?{query}", timeout=300)
    assert r.status == 200, r
    return r.json()


def as_oracle_shape(result: dict) -> dict:
    """The analysis in the oracle's shape: {sampleType, total, nodes: {path: [total, self]}}."""
    elements = result["tree"]["elements"]
    paths = {"0": ""}
    nodes = {}
    for e in elements[1:]:
        parent = paths[e["parentId"]]
        path = e["codeSignature"] if e["parentId"] == "0" else parent + "\x1f" + e["codeSignature"]
        paths[e["id"]] = path
        assert path not in nodes, f"duplicate node {path!r}"
        nodes[path] = [e["total"], e["self"]]
    return {"sampleType": result["sampleType"], "total": elements[0]["total"], "nodes": nodes}
