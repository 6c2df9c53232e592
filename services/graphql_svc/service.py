"""graphql_svc as a component of `proftask serve`: POST /graphql (and GET for queries), with
the REST API's tokens and tenants (`Authorization: Bearer`, a user token)."""
from __future__ import annotations

import json
import logging

from aiohttp import web
from ariadne import graphql
from ariadne.utils import unwrap_graphql_error
from graphql import GraphQLError, OperationDefinitionNode, OperationType, parse

from proftask.auth import USER, TokenTable, bearer_token
from proftask.errors import ProftaskError
from proftask.http.app import RoutesComponent
from proftask.http.errors import http_status, read_json
from proftask.analysis.answer_threads import off_loop
from services.graphql_svc.big_answers import Splices
from services.graphql_svc.limits import (MAX_TOKENS, BoundedSelections, bounded_document, format_bounded_error,
                                         parse_bounded)
from services.graphql_svc.resolvers import build_schema

log = logging.getLogger(__name__)
LOGGED_QUERY_CHARS = 300


class _ErrorLog(logging.LoggerAdapter):
    """Where ariadne logs the errors of a result (at ERROR, with a traceback and the document):
    an error of the request (bad syntax, an unknown field, a task not found: a GraphQLError of its
    own, or a ProftaskError of a 4xx kind) is the client's and is logged at INFO in one line; a
    server's (Unavailable: ClickHouse or the task view away) at WARNING in one line; any other
    exception a resolver raised, a bug, keeps ERROR and its traceback."""

    def error(self, msg, *args, exc_info=None, **kwargs):
        cause = unwrap_graphql_error(exc_info) if isinstance(exc_info, GraphQLError) else exc_info
        if isinstance(exc_info, GraphQLError) and (cause is None or isinstance(cause, ProftaskError)):
            server = cause is not None and http_status(cause) >= 500
            self.logger.log(logging.WARNING if server else logging.INFO, "GraphQL request %s: %s",
                            "not served" if server else "refused",
                            str(msg)[:LOGGED_QUERY_CHARS].replace("\n", " "))
            return
        self.logger.error(msg, *args, exc_info=exc_info, **kwargs)


ERROR_LOG = _ErrorLog(log, {})


class GraphqlService(RoutesComponent):
    name = "graphql_svc"

    def __init__(self, tasks, clickhouse, tokens: TokenTable, agents=None, max_body: int = 1 << 20):
        self.tasks, self.clickhouse, self.tokens, self.agents = tasks, clickhouse, tokens, agents
        self.max_body = max_body
        self.schema = build_schema()

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/graphql", self.handle)
        app.router.add_get("/graphql", self.handle)

    def _tenant(self, request: web.Request) -> str:
        principal = self.tokens.authenticate(bearer_token(request.headers.get("Authorization")))
        principal.require(USER)  # an error of either answers 401 or 403 (proftask.http.errors)
        return principal.tenant

    async def handle(self, request: web.Request) -> web.Response:
        tenant = self._tenant(request)
        if request.method == "GET":
            data = {"query": request.query.get("query"), "operationName": request.query.get("operationName")}
            try:
                data["variables"] = json.loads(request.query["variables"]) if "variables" in request.query else None
            except ValueError:
                return _bad_request("variables is not JSON")
            if _has_mutation(data["query"]):
                return _bad_request("GET serves queries only; send mutations with POST")
        else:
            data = await read_json(request, self.max_body)
        if not isinstance(data, dict) or not isinstance(data.get("query"), str):
            return _bad_request("the body must be a JSON object with the GraphQL document in `query`")
        splices = Splices()
        _, result = await graphql(self.schema, data, context_value={"svc": self, "tenant": tenant, "splices": splices},
                                  debug=False, logger=ERROR_LOG, validation_rules=[BoundedSelections],
                                  query_parser=parse_bounded, error_formatter=format_bounded_error)
        if splices:  # a whole tree: its text is large, joined off the event loop
            return web.Response(body=await off_loop(splices.body, result), content_type="application/json")
        return web.json_response(result, status=200)


def _has_mutation(document) -> bool:
    if not isinstance(document, str):
        return False
    try:
        doc = parse(bounded_document(document), max_tokens=MAX_TOKENS)
    except GraphQLError:
        return False  # a syntax error, or too long: execution reports it
    return any(isinstance(d, OperationDefinitionNode) and d.operation == OperationType.MUTATION
               for d in doc.definitions)


def _bad_request(message: str) -> web.Response:
    # Both shapes: proftask's error and GraphQL's, for whichever the client reads.
    return web.json_response({"code": "ARGUMENT_ERROR", "errorReason": message, "errors": [{"message": message}]},
                             status=400)
