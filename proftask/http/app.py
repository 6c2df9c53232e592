"""The aiohttp application every service process serves: its components' routes plus
/healthz, /readyz and /metrics."""
from __future__ import annotations

import functools
import pathlib
import time
from typing import Protocol
from collections.abc import Callable, Iterable

import yaml
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from proftask import metrics
from proftask.auth import AGENT, USER, TokenTable, bearer_token
from proftask.http.errors import json_errors


class Component(Protocol):
    """A service part run by `proftask serve`: task_svc, ingest_svc, query_svc, processor."""
    name: str

    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    def readiness(self) -> dict[str, bool]: ...
    def add_routes(self, app: web.Application) -> None: ...


class RoutesComponent:
    """A component that is only routes over resources the runtime owns (nothing to start)."""
    name = "routes"

    async def start(self) -> None:
        pass

    async def stop(self) -> None:
        pass

    def readiness(self) -> dict[str, bool]:
        return {}


AGENT_ROUTES = "/api/v1/pprof/agent/"
OPENAPI = pathlib.Path(__file__).resolve().parent / "openapi.yaml"


@functools.cache
def openapi_document() -> dict:
    return yaml.safe_load(OPENAPI.read_text())


def tenant_of(request: web.Request) -> str:
    """The tenant of an API request: its token's (see `authenticate`)."""
    return request["principal"].tenant


def authenticate(tokens: TokenTable):
    """Every /api/ request carries `Authorization: Bearer <token>` (when tokens are configured);
    agent routes need an agent token, the others a user token; admin may do both."""
    @web.middleware
    async def middleware(request: web.Request, handler):
        if request.path.startswith("/api/"):
            principal = tokens.authenticate(bearer_token(request.headers.get("Authorization")))
            principal.require(AGENT if request.path.startswith(AGENT_ROUTES) else USER)
            request["principal"] = principal
        return await handler(request)
    return middleware


@web.middleware
async def count_requests(request: web.Request, handler):
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as e:
        status = e.status
        raise
    finally:
        route = request.match_info.route.resource
        name = route.canonical if route is not None else "unmatched"
        metrics.HTTP_REQUESTS.labels(name, str(status)).inc()
        metrics.HTTP_SECONDS.labels(name).observe(time.perf_counter() - started)


def build_app(components: Iterable[Component], readiness: Callable[[], dict[str, bool]],
              client_max_size: int, tokens: TokenTable, connection_phase=None) -> web.Application:
    # count_requests is outermost so it sees the status json_errors turned errors into;
    # connection_phase (proftask.http.connections) marks when a request's headers are complete.
    outer = [connection_phase] if connection_phase is not None else []
    app = web.Application(middlewares=[*outer, count_requests, json_errors, authenticate(tokens)],
                          client_max_size=client_max_size)

    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "alive"})

    async def readyz(_: web.Request) -> web.Response:
        checks = readiness()
        not_ready = sorted(name for name, ok in checks.items() if not ok)
        body = {"ready": not not_ready, "checks": checks}
        if not_ready:
            body["notReady"] = not_ready
        return web.json_response(body, status=200 if not not_ready else 503)

    async def metrics_page(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(openapi_document())

    app.router.add_get("/openapi.json", openapi)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics_page)
    for component in components:
        component.add_routes(app)
    return app
