"""A GraphQL request asks for a bounded number of fields, aliases and fragment spreads counted
as they are resolved; what real clients ask (GraphiQL's introspection, booster-ui's and swctl's
queries) stays within the bounds."""
from __future__ import annotations

import pytest
from graphql import GraphQLError, get_introspection_query, parse, validate
from graphql.validation import specified_rules

from services.graphql_svc.limits import MAX_FIELDS, MAX_TOKENS, MAX_TOP_FIELDS, BoundedSelections, parse_bounded
from services.graphql_svc.resolvers import build_schema

SCHEMA = build_schema()


def refusals(document: str) -> list[str]:
    return [e.message for e in validate(SCHEMA, parse(document), [*specified_rules, BoundedSelections])]


def test_what_clients_ask_is_within_the_bounds():
    assert refusals(get_introspection_query(descriptions=True)) == []
    assert refusals("""query { getMenuItems { title } getMetricsTTL { minute } getRecordsTTL { normal }
                        listLayers version getTimeInfo { timezone currentTimestamp } }""") == []
    tree = "elements { id parentId codeSignature total self }"
    assert refusals("query Q($r: PprofAnalyzationRequest!, $t: String!) { queryPprofAnalyze(request: $r) { tree { %s } } "
                    "queryPprofTaskProgress(taskId: $t) { logs { id instanceId instanceName operationType "
                    "operationTime } errorInstanceIds successInstanceIds } }" % tree) == []


def test_aliases_of_one_field_past_the_top_bound_are_refused():
    aliases = " ".join(f"a{i}: __schema {{ types {{ name fields {{ name type {{ name }} }} }} }}" for i in range(8000))
    (message,) = refusals("{" + aliases + "}")
    assert f"asks for more than {MAX_TOP_FIELDS} fields at its top" in message
    progress = " ".join(f"p{i}: version" for i in range(MAX_TOP_FIELDS + 1))
    assert refusals("{" + progress + "}") != []
    assert refusals("{" + " ".join(f"p{i}: version" for i in range(MAX_TOP_FIELDS)) + "}") == []


def test_fields_past_the_bound_are_refused_fragments_counted_where_they_are_spread():
    # 20 aliases at the top, each spreading a fragment of 60 fields: 1,220 fields resolved
    fields = " ".join(f"f{i}: name" for i in range(60))
    document = ("fragment T on __Type { %s } { %s }"
                % (fields, " ".join(f"t{i}: __type(name: \"Query\") {{ ...T }}" for i in range(20))))
    (message,) = refusals(document)
    assert f"more than {MAX_FIELDS} fields" in message
    # fragments spreading fragments twice, 40 levels deep: 2^40 fields, counted in a moment
    levels = ["fragment L0 on __Type { name }"] + [
        f"fragment L{i} on __Type {{ ...L{i - 1} a{i}: ofType {{ ...L{i - 1} }} }}" for i in range(1, 40)]
    (message,) = refusals(" ".join(levels) + ' { __type(name: "Query") { ...L39 } }')
    assert f"more than {MAX_FIELDS} fields" in message


def test_a_document_past_the_token_bound_is_refused_as_it_is_parsed_and_introspection_is_not():
    parse_bounded(None, {"query": get_introspection_query(descriptions=True)})
    with pytest.raises(GraphQLError, match=f"more than {MAX_TOKENS} tokens"):
        parse_bounded(None, {"query": "{" + " ".join(f"a{i}: version" for i in range(3000)) + "}"})
