"""What SkyWalking's booster-ui asks beyond the pprof operations and the metadata queries: its
dashboard templates (one GENERAL Service dashboard whose second tab holds the Pprof widget; no OAP
ships one), its menu, the TTLs and the trace capabilities. Read-only: proftask stores no
dashboards, so the template mutations answer status false with a reason."""
from __future__ import annotations

import functools
import json
import pathlib

from ariadne import MutationType, QueryType

TEMPLATES_DIR = pathlib.Path(__file__).resolve().parent / "templates"
# The menu booster-ui shows: one group, whose one item opens the GENERAL layer's dashboards.
MENU = [{"title": "General Service", "icon": "general_service", "layer": "", "activate": True,
         "description": "Go services whose agents poll proftask for pprof tasks.",
         "documentLink": None, "i18nKey": "general_service",
         "subItems": [{"title": "Services", "icon": None, "layer": "GENERAL", "activate": True, "subItems": [],
                       "description": "Services with a pprof agent, and their PProf tasks.",
                       "documentLink": None, "i18nKey": "general_service_services"}]}]
# Days, as the OAP answers; -1: no cold stage. proftask keeps no traces, logs or metrics: these
# only keep booster-ui's date pickers within a sane range.
RECORDS_TTL = {"normal": 3, "trace": 3, "zipkinTrace": 3, "log": 3, "browserErrorLog": 3, "coldNormal": -1,
               "coldTrace": -1, "coldZipkinTrace": -1, "coldLog": -1, "coldBrowserErrorLog": -1}
METRICS_TTL = {"metadata": 7, "minute": 7, "hour": 15, "day": 30, "coldMinute": -1, "coldHour": -1, "coldDay": -1}

query = QueryType()
mutation = MutationType()


@functools.cache
def templates() -> tuple[dict, ...]:
    """Each template as the API serves it: `configuration` is the JSON text of the dashboard."""
    out = []
    for path in sorted(TEMPLATES_DIR.glob("*.json")):
        t = json.loads(path.read_text())
        out.append({"id": t["id"], "configuration": json.dumps(t["configuration"], separators=(",", ":"))})
    return tuple(out)


@query.field("getAllTemplates")
def resolve_all_templates(*_):
    return list(templates())


@query.field("getTemplate")
def resolve_template(_, info, id):
    return next((t for t in templates() if t["id"] == id), None)


@query.field("getMenuItems")
def resolve_menu(*_):
    return MENU


@query.field("getRecordsTTL")
def resolve_records_ttl(*_):
    return RECORDS_TTL


@query.field("getMetricsTTL")
def resolve_metrics_ttl(*_):
    return METRICS_TTL


@query.field("hasQueryTracesV2Support")
def resolve_traces_v2(*_):
    return False


def _read_only(setting_id: str) -> dict:
    return {"id": setting_id, "status": False,
            "message": "proftask serves its dashboard templates read-only: export the dashboard from the UI instead"}


@mutation.field("addTemplate")
def resolve_add_template(_, info, setting):
    return _read_only("")


@mutation.field("changeTemplate")
def resolve_change_template(_, info, setting):
    return _read_only(setting["id"])


@mutation.field("disableTemplate")
def resolve_disable_template(_, info, id):
    return _read_only(id)
