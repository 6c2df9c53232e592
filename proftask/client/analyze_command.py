"""`proftask analyze`: a task's merged profile as a top table in the terminal, or exported."""
from __future__ import annotations

import pathlib
import sys

from proftask.client.http import ApiClient
from proftask.core.top import FunctionRow, sort_rows

FORMATS = ("table", "folded", "pprof", "speedscope", "json")
SUFFIX = {"folded": "folded", "pprof": "pb.gz", "speedscope": "speedscope.json", "json": "analysis.json"}


def format_value(value: int, unit: str) -> str:
    steps = {"nanoseconds": [(1e9, "s"), (1e6, "ms"), (1e3, "µs")], "bytes": [(2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")]}
    for div, suffix in steps.get(unit, []):
        if abs(value) >= div:
            return f"{value / div:.2f} {suffix}"
    return f"{value:,}"


def top_table(top: dict, limit: int, sort: str, raw: bool = False, granularity: str = "function") -> str:
    """The /top answer (the whole profile, pprof's flat and cum) as a table, in pprof's order:
    `self` as `go tool pprof -top` (flat, then name), `total` as `-top -cum` (cum, then name)."""
    root = top["total"]
    unit = (top.get("sampleType") or "/count").split("/")[-1]
    value = (lambda v: str(v)) if raw else (lambda v: format_value(v, unit))  # noqa: E731
    rows = [FunctionRow(r["name"], r["flat"], r["cum"]) for r in top["rows"]]  # in `-top` order
    if sort == "total":
        rows = sort_rows(rows, "cum", granularity)
    pct = lambda v: f"{100 * v / root:6.2f}%" if root else "     -"  # noqa: E731
    shown = rows[:limit] if limit else rows
    lines = [f"{top.get('sampleType')}: {value(root)} over {len(top['instanceIds'])} "
             f"instance(s): {', '.join(top['instanceIds'])}; {len(shown)} of {len(rows)} functions, "
             "from the whole profile",
             f"{'SELF':>14} {'SELF%':>7} {'TOTAL':>14} {'TOTAL%':>7}  FUNCTION"]
    for r in shown:
        lines.append(f"{value(r.self_value):>14} {pct(r.self_value)} {value(r.total):>14} {pct(r.total)}  {r.name}")
    return "\n".join(lines)


def cmd_analyze(client: ApiClient, args) -> int:
    params = {"instanceIds": args.instances, "sampleType": args.sample_type, "granularity": args.granularity}
    path = f"/api/v1/pprof/tasks/{args.task_id}"
    if args.format == "table":
        # the server's top table covers the whole profile; --max-nodes only shapes tree output
        print(top_table(client.get(path + "/top", **params), args.top, args.sort, args.raw, args.granularity))
        return 0
    if args.format == "json":
        body = client.get_bytes(path + "/analysis", maxNodes=args.max_nodes, **params)
    else:
        body = client.get_bytes(path + "/export", format=args.format, **params)
    if args.output == "-":
        sys.stdout.buffer.write(body)
        return 0
    out = pathlib.Path(args.output or f"proftask-{args.task_id}.{SUFFIX[args.format]}")
    out.write_bytes(body)
    print(out)
    return 0


def register(sub, client_options) -> None:
    analyze = sub.add_parser(
        "analyze", help="a task's merged profile: top functions, or an export",
        description="The merged profile of a task's finished instances. By default a table of the top functions "
                    "of the whole profile (self and total as `go tool pprof -top`: a function counts once per "
                    "stack). With --format folded|pprof|"
                    "speedscope the export is written to a file (pprof opens in `go tool pprof`); --format json "
                    "writes the analysis tree as the API returns it.")
    analyze.add_argument("task_id", help="the task's id")
    analyze.add_argument("--format", choices=FORMATS, default="table", help="table (default), folded, pprof, "
                         "speedscope or json")
    analyze.add_argument("-o", "--output", help="file to write (default proftask-<task>.<suffix>; - for stdout)")
    analyze.add_argument("--instances", help="comma-separated instances to merge (default: every finished one)")
    analyze.add_argument("--sample-type", help="e.g. cpu, alloc_space, inuse_space/bytes (default: the profile's "
                         "default sample type, as pprof)")
    analyze.add_argument("--granularity", choices=("function", "line"), default="function",
                         help="frames by function (default) or by function and line")
    analyze.add_argument("--top", type=int, default=20, help="rows of the table (default 20; 0: all)")
    analyze.add_argument("--sort", choices=("self", "total"), default="self",
                         help="table order, as pprof: self = `-top` (self, then name; default), "
                              "total = `-top -cum` (total, then name)")
    analyze.add_argument("--raw", action="store_true",
                         help="table values as integers in the sample type's unit (as pprof's -raw)")
    analyze.add_argument("--max-nodes", type=int, default=0,
                         help="json: keep only the heaviest nodes of the tree (default: all); the table always "
                              "covers the whole profile")
    analyze.set_defaults(client_func=cmd_analyze)
    client_options(analyze)
