"""GraphQL errors in the log: a client's mistake is one INFO line (ariadne would log each at
ERROR with its traceback and up to 1 MiB of document); a resolver's bug keeps its traceback."""
import logging

from graphql import GraphQLError

from services.graphql_svc.service import ERROR_LOG


def test_a_client_error_is_one_short_info_line_and_a_resolver_bug_an_error_with_its_traceback(caplog):
    caplog.set_level(logging.INFO, logger=ERROR_LOG.logger.name)
    syntax = GraphQLError("Syntax Error: Unexpected Name 'x" + "y" * 5000 + "'.\nline two")
    not_found = GraphQLError("task t not found", original_error=GraphQLError("task t not found"))
    bug = GraphQLError("boom", original_error=KeyError("boom"))
    for error in (syntax, not_found, bug):
        ERROR_LOG.error(error, exc_info=error)
    quiet, loud = caplog.records[:2], caplog.records[2]
    assert [r.levelno for r in quiet] == [logging.INFO, logging.INFO]
    assert all(r.exc_info is None and len(r.getMessage()) < 400 and "\n" not in r.getMessage() for r in quiet)
    assert loud.levelno == logging.ERROR and loud.exc_info is not None
