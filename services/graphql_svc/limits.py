"""How much one GraphQL request may ask for: aliases repeat a field at no cost to the client, and
each repetition is resolved and answered (8,000 aliases of `__schema` in a 415 KB body held the
event loop, every tenant's requests and agents with it, for 40 s and answered 68 MB; 3,000 of
`queryPprofTaskProgress` 17.6 s). graphql-core has no such bound, and ariadne's cost validator
skips the `__schema`/`__type` fields; this rule counts every field as the request spells it
out, fragments expanded where they are spread.

The bounds are far above what a client asks: booster-ui's pages ask a few fields at the top, and
GraphiQL's introspection query is 220 fields expanded."""
from __future__ import annotations

import re

from ariadne import format_error
from graphql import GraphQLError, parse
from graphql.language import (DocumentNode, FieldNode, FragmentSpreadNode, InlineFragmentNode, OperationDefinitionNode,
                              SelectionSetNode)
from graphql.validation import ValidationContext, ValidationRule

from proftask.core.echo import MAX_ECHO_CHARS

MAX_TOP_FIELDS = 25     # an operation's fields at its top (the root query's, aliases each counted)
MAX_FIELDS = 1_000      # an operation's fields in all, each fragment counted where it is spread
# A document's tokens, counted as it is parsed: parsing and validating the 415 KB of 8,000 aliases
# took 3.6 s of the event loop before any rule refused it. 1,000 fields are ~3,000 tokens.
MAX_TOKENS = 5_000


# A document's characters: the token bound does not bound a token's length, and graphql-core
# parses ~4 MB a second on the event loop (100 documents of one 500,000-character name held
# every request, /readyz too, for up to 5 s). 5,000 tokens of usual names are ~125 KB.
MAX_DOCUMENT_CHARS = 128 * 1024
# An error message's quotes of the request (a name, a value), as the REST API's (core.echo), and
# its whole length: an unknown field of 1 MB was answered with its name, twice.
MAX_MESSAGE_CHARS = 1_000
_LONG_WORD = re.compile(r"[^\s'\"]{%d,}" % (MAX_ECHO_CHARS + 1))


def parse_bounded(_context: object, data: dict) -> DocumentNode:
    """ariadne's query_parser: the document, parsing stopped past MAX_TOKENS (a syntax error)."""
    return parse(bounded_document(data["query"]), max_tokens=MAX_TOKENS)


def bounded_document(document: str) -> str:
    if len(document) > MAX_DOCUMENT_CHARS:
        raise GraphQLError(f"the document is {len(document)} characters, more than the {MAX_DOCUMENT_CHARS} "
                           "proftask parses")
    return document


def format_bounded_error(error: GraphQLError, debug: bool = False) -> dict:
    """ariadne's error_formatter, its message cut where it quotes the request at length."""
    formatted = format_error(error, debug)
    formatted["message"] = cut_message(formatted.get("message") or "")
    return formatted


def cut_message(message: str) -> str:
    message = _LONG_WORD.sub(lambda m: f"{m.group()[:MAX_ECHO_CHARS]}… ({len(m.group())} characters)", message)
    if len(message) > MAX_MESSAGE_CHARS:
        message = f"{message[:MAX_MESSAGE_CHARS]}… ({len(message)} characters)"
    return message


class BoundedSelections(ValidationRule):
    """Refuses an operation selecting more than MAX_TOP_FIELDS fields at its top, or more than
    MAX_FIELDS in all."""

    def __init__(self, context: ValidationContext) -> None:
        super().__init__(context)
        self._fragment_fields: dict[tuple[str, bool], int] = {}  # (name, top_only): its count

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args) -> None:
        top = self._count(node.selection_set, set(), top_only=True)
        if top > MAX_TOP_FIELDS:
            self.report_error(GraphQLError(
                f"the operation asks for more than {MAX_TOP_FIELDS} fields at its top; "
                f"at most {MAX_TOP_FIELDS} a request (each alias is resolved again): send the rest as another request",
                node))
            return
        fields = self._count(node.selection_set, set(), top_only=False)
        if fields > MAX_FIELDS:
            self.report_error(GraphQLError(
                f"the operation asks for more than {MAX_FIELDS} fields (fragments counted where they are "
                f"spread); at most {MAX_FIELDS} a request: send the rest as another request", node))

    def _count(self, selections: SelectionSetNode | None, spreading: set[str], top_only: bool) -> int:
        """Fields of a selection set, stopping a little past MAX_FIELDS (a fragment spread in
        each of many fields is counted once and remembered). A fragment cycle counts nothing
        more: NoFragmentCyclesRule refuses it."""
        total = 0
        for selection in selections.selections if selections else ():
            if isinstance(selection, FieldNode):
                total += 1 if top_only else 1 + self._count(selection.selection_set, spreading, top_only)
            elif isinstance(selection, InlineFragmentNode):
                total += self._count(selection.selection_set, spreading, top_only)
            elif isinstance(selection, FragmentSpreadNode):
                total += self._spread(selection.name.value, spreading, top_only)
            if total > MAX_FIELDS:
                break
        return total

    def _spread(self, name: str, spreading: set[str], top_only: bool) -> int:
        if (name, top_only) in self._fragment_fields:  # spreads of spreads double at each level otherwise
            return self._fragment_fields[name, top_only]
        fragment = self.context.get_fragment(name)
        if fragment is None or name in spreading:
            return 0
        count = self._count(fragment.selection_set, spreading | {name}, top_only)
        self._fragment_fields[name, top_only] = count
        return count
