"""What booster-ui asks of proftask's GraphQL beyond pprof: its dashboard template (a GENERAL
Service dashboard whose second tab holds the Pprof widget), menu, TTLs and trace capabilities,
as booster-ui sends them (operation names, variables, aliases on root and leaf fields)."""
import json

from graphql import graphql_sync

from services.graphql_svc.resolvers import build_schema

SCHEMA = build_schema()


def run(query: str, **variables) -> dict:
    result = graphql_sync(SCHEMA, query, variable_values=variables or None, context_value={})
    assert result.errors is None, result.errors
    return result.data


def test_the_template_is_a_general_service_dashboard_with_pprof_on_its_second_tab():
    data = run("query queryTemplates { templates: getAllTemplates { id, configuration, } }")
    [template] = data["templates"]
    c = json.loads(template["configuration"])
    assert (c["layer"], c["entity"], c["isDefault"]) == ("GENERAL", "Service", True)
    [tabs] = c["children"]
    assert tabs["type"] == "Tab"
    assert [w["type"] for w in tabs["children"][1]["children"]] == ["Pprof"]
    one = run("query($id: String!) { getTemplate(id: $id) { id } }", id=template["id"])
    assert one["getTemplate"]["id"] == template["id"]
    assert run('query { getTemplate(id: "nope") { id } }')["getTemplate"] is None


def test_menu_ttls_and_trace_support_answer_as_booster_ui_reads_them():
    data = run("""query menuItems { items: getMenuItems { title layer activate
                    subItems { title layer activate name: title } } }""")
    [group] = data["items"]
    assert [(s["layer"], s["activate"], s["name"]) for s in group["subItems"]] == [("GENERAL", True, "Services")]
    ttl = run("query RecordsTTL { getRecordsTTL { normal coldNormal } } ")["getRecordsTTL"]
    assert ttl == {"normal": 3, "coldNormal": -1}
    assert run("query MetricsTTL { getMetricsTTL { minute day } }")["getMetricsTTL"]["day"] == 30
    assert run("query queryHasQueryTracesV2Support { hasQueryTracesV2Support }") == {
        "hasQueryTracesV2Support": False}


def test_template_changes_are_refused_with_a_reason():
    data = run('mutation { changeTemplate(setting: {id: "x", configuration: "{}"}) { id status message } }')
    assert data["changeTemplate"]["status"] is False
    assert "read-only" in data["changeTemplate"]["message"]
