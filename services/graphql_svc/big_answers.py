"""A merged tree over GraphQL without a GraphQL executor walking it: queryPprofAnalyze returns
every node (SkyWalking's UI draws them all), and graphql-core completes ~10 µs a field, on the
event loop: 6.7 s for a 425k-node tree, every request of every tenant waiting. So the resolver
reads which fields the query selects of the elements, the elements are rendered as JSON text in
a thread (proftask.core.flamegraph.render_element_fields), GraphQL completes an empty list in
their place, and the text is spliced into the response where that list is.

Aliases, fragments and @skip/@include are honoured as GraphQL would. A request gets one tree:
`queryPprofAnalyze` and its `elements` are answered once (aliases, or a fragment spread under
several aliases, would multiply a whole tree's work and answer, eight gave a 367 MB response, for
no client's use); a second is an error of the request."""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterable

from graphql import (FieldNode, FragmentSpreadNode, GraphQLError, GraphQLIncludeDirective, GraphQLResolveInfo,
                     GraphQLSkipDirective, InlineFragmentNode, SelectionSetNode)
from graphql.execution.values import get_directive_values

ONE_TREE = "a request gets one tree: select queryPprofAnalyze, and its elements, once; send another request for another"


# The fields an element may select (PprofStackElement has five, and __typename): 990 aliases of
# codeSignature passed the request's field bound and made ~25 GB for a 425k-node tree.
MAX_ELEMENT_FIELDS = 12


def elements_selections(info: GraphQLResolveInfo) -> list[tuple[tuple[str, ...], list[tuple[str, str]]]]:
    """Where queryPprofAnalyze's elements go in the response (their path) and the fields each
    selects, as (response key, field) pairs: at most one (raises GraphQLError beyond, and for a
    second queryPprofAnalyze of the request)."""
    answered = info.context.setdefault("trees_answered", [])
    answered.append(info.path.key)
    if len(answered) > 1:
        raise GraphQLError(ONE_TREE)
    out: list[tuple[tuple[str, ...], list[tuple[str, str]]]] = []
    for tree_key, trees in selected(info, info.field_nodes, "PprofAnalyzation").items():
        if trees[0].name.value != "tree":
            continue
        for elements_key, lists in selected(info, trees, "PprofStackTree").items():
            if lists[0].name.value == "elements":
                fields = selected(info, lists, "PprofStackElement")
                if len(fields) > MAX_ELEMENT_FIELDS:  # each is written for every node of the tree
                    raise GraphQLError(f"elements selects {len(fields)} fields; at most {MAX_ELEMENT_FIELDS} "
                                       f"(each is answered for every node: aliases multiply the answer)")
                out.append(((str(info.path.key), tree_key, elements_key),
                            [(key, nodes[0].name.value) for key, nodes in fields.items()]))
    if len(out) > 1:
        raise GraphQLError(ONE_TREE)
    return out


def selected(info: GraphQLResolveInfo, field_nodes: Iterable[FieldNode], type_name: str) -> dict[str, list[FieldNode]]:
    """The fields the nodes select of their object (of type `type_name`), by response key, in the
    order GraphQL answers them: aliases kept, fragments spread, @skip and @include applied."""
    out: dict[str, list[FieldNode]] = {}
    for node in field_nodes:
        if node.selection_set is not None:
            _collect(info, node.selection_set, type_name, out, set())
    return out


def _collect(info: GraphQLResolveInfo, selection_set: SelectionSetNode, type_name: str,
             out: dict[str, list[FieldNode]], spread: set[str]) -> None:
    for selection in selection_set.selections:
        if not _included(info, selection):
            continue
        if isinstance(selection, FieldNode):
            out.setdefault(selection.alias.value if selection.alias else selection.name.value, []).append(selection)
        elif isinstance(selection, InlineFragmentNode):
            if selection.type_condition is None or selection.type_condition.name.value == type_name:
                _collect(info, selection.selection_set, type_name, out, spread)
        elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
            spread.add(selection.name.value)
            fragment = info.fragments.get(selection.name.value)
            if fragment is not None and fragment.type_condition.name.value == type_name:
                _collect(info, fragment.selection_set, type_name, out, spread)


def _included(info: GraphQLResolveInfo, node) -> bool:
    skip = get_directive_values(GraphQLSkipDirective, node, info.variable_values)
    if skip is not None and skip["if"]:
        return False
    include = get_directive_values(GraphQLIncludeDirective, node, info.variable_values)
    return include is None or bool(include["if"])


class Splices:
    """JSON text to put in a response in place of the values at some paths (a request's)."""

    def __init__(self):
        self._token = f"proftask-splice-{uuid.uuid4().hex}-"
        self._texts: list[tuple[tuple[str, ...], bytes]] = []

    def add(self, path: tuple[str, ...], text: bytes) -> None:
        self._texts.append((path, text))

    def __bool__(self) -> bool:
        return bool(self._texts)

    def body(self, result: dict) -> bytes:
        """The result as a JSON body, each spliced text where its path is (a path that an error
        cut from the result, nulled above it, takes nothing)."""
        placed: list[tuple[bytes, bytes]] = []
        for i, (path, text) in enumerate(self._texts):
            parent = result.get("data")
            for key in path[:-1]:
                parent = parent.get(key) if isinstance(parent, dict) else None
            if isinstance(parent, dict) and path[-1] in parent:
                parent[path[-1]] = f"{self._token}{i}"
                placed.append((json.dumps(f"{self._token}{i}").encode(), text))
        body = json.dumps(result).encode()
        for quoted, text in placed:  # a marker is a unique string: no other value contains it
            before, _, after = body.partition(quoted)
            body = b"".join((before, text, after))
        return body
