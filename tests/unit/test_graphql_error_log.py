"""GraphQL errors in the log: a client's mistake is one INFO line (ariadne would log each at
ERROR with its traceback and up to 1 MiB of document); a resolver's bug keeps its traceback."""
import logging

from graphql import GraphQLError

from proftask.errors import NotFound, Unavailable
from services.graphql_svc.resolvers import graphql_error
from services.graphql_svc.service import ERROR_LOG


def located(error: Exception) -> GraphQLError:
    """As graphql-core hands a resolver's exception to ariadne: wrapped, at its field."""
    return GraphQLError(str(error), path=["queryPprofAnalyze"], original_error=error)


def test_a_client_error_is_one_short_info_line_and_a_resolver_bug_an_error_with_its_traceback(caplog):
    caplog.set_level(logging.INFO, logger=ERROR_LOG.logger.name)
    syntax = GraphQLError("Syntax Error: Unexpected Name 'x" + "y" * 5000 + "'.\nline two")
    not_found = located(graphql_error(NotFound("task t not found")))
    away = located(graphql_error(Unavailable("ClickHouse is unreachable")))
    bug = located(KeyError("boom"))
    for error in (syntax, not_found, away, bug):
        ERROR_LOG.error(error, exc_info=error)
    quiet, loud = caplog.records[:3], caplog.records[3]
    assert [r.levelno for r in quiet] == [logging.INFO, logging.INFO, logging.WARNING]
    assert all(r.exc_info is None and len(r.getMessage()) < 400 and "\n" not in r.getMessage() for r in quiet)
    assert loud.levelno == logging.ERROR and loud.exc_info is not None
