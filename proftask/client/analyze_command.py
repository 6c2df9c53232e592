"""`proftask analyze`: a task's merged profile as a top table in the terminal, or exported."""
from __future__ import annotations

import pathlib
import sys

from proftask.client.http import ApiClient, task_path
from proftask.client.terminal import printable
from proftask.core.top import FunctionRow, sort_rows

FORMATS = ("table", "folded", "pprof", "speedscope", "json")
SUFFIX = {"folded": "folded", "pprof": "pb.gz", "speedscope": "speedscope.json", "json": "analysis.json"}


def format_value(value: int, unit: str) -> str:
    steps: dict[str, list[tuple[float, str]]] = {"nanoseconds": [(1e9, "s"), (1e6, "ms"), (1e3, "µs")],
                                                 "bytes": [(2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")]}
    for div, suffix in steps.get(unit, []):
        if abs(value) >= div:
            return f"{value / div:.2f} {suffix}"
    return f"{value:,}"


TERMINAL_REFUSED = 2  # as a usage error


def top_table(top: dict, rows: int, sort: str, raw: bool = False) -> str:
    """The server's top table (the whole profile, pprof's -top), in pprof's order (`flat`: flat,
    then name, as `-top`) or `cum` (cum, then name, as `-top -cum`); rows=0 prints them all."""
    root = top["total"]
    unit = (top.get("sampleType") or "/count").split("/")[-1]
    value = str if raw else (lambda v: format_value(v, unit))  # noqa: E731
    ordered = top["rows"]
    if sort == "cum":
        ordered = [{"name": r.name, "flat": r.flat, "cum": r.cum} for r in sort_rows(
            [FunctionRow(r["name"], r["flat"], r["cum"]) for r in ordered], "cum", top.get("granularity", "function"))]
    shown = ordered[:rows] if rows else ordered
    pct = lambda v: f"{100 * v / root:6.2f}%" if root else "     -"  # noqa: E731
    lines = [f"{top.get('sampleType')}: {value(root)} over {len(top['instanceIds'])} "
             f"instance(s): {', '.join(top['instanceIds'])}",
             f"{'FLAT':>14} {'FLAT%':>7} {'CUM':>14} {'CUM%':>7}  "
             f"{'LINE' if top.get('granularity') == 'line' else 'FUNCTION'}"]
    for r in shown:
        lines.append(f"{value(r['flat']):>14} {pct(r['flat'])} {value(r['cum']):>14} {pct(r['cum'])}  {r['name']}")
    if len(ordered) > len(shown):
        lines.append(f"({len(ordered) - len(shown)} more; --top N shows more)")
    return "\n".join(printable(line) for line in lines)  # names, types and instances as the profiles wrote them


def cmd_analyze(client: ApiClient, args) -> int:
    params = {"instanceIds": args.instances, "sampleType": args.sample_type, "granularity": args.granularity}
    path = task_path(args.task_id)
    if args.format == "table":
        print(top_table(client.get(path + "/top", **params), args.top, args.sort, args.raw))
        return 0
    if args.format == "json":
        body = client.get_bytes(path + "/analysis", maxNodes=args.max_nodes, **params)
    else:
        body = client.get_bytes(path + "/export", format=args.format, **params)
    if args.output == "-":
        if sys.stdout.isatty():  # what a terminal shows: no escape sequence from a profile gets through
            if args.format == "pprof":
                print("proftask: a pprof file is binary: write it with --output FILE, or pipe it", file=sys.stderr)
                return TERMINAL_REFUSED
            body = "\n".join(printable(line) for line in body.decode("utf-8", "replace").split("\n")).encode()
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
                    "(flat and cum over the whole profile, as `go tool pprof -top`; a recursive function counted "
                    "once per sample). With --format folded|pprof|speedscope the export is written to a file "
                    "(pprof opens in `go tool pprof`); --format json writes the analysis tree as the API returns it.")
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
    analyze.add_argument("--raw", action="store_true",
                         help="table values as integers in the sample type's unit (as pprof's -raw)")
    analyze.add_argument("--sort", choices=("flat", "cum"), default="flat",
                         help="table order: flat (as `go tool pprof -top`: flat, then name; default) or cum "
                              "(as `-top -cum`: cum, then name)")
    analyze.add_argument("--max-nodes", type=int, default=0,
                         help="--format json: keep only the heaviest nodes of the tree (default: all); the table is "
                              "always the whole profile's")
    analyze.set_defaults(client_func=cmd_analyze)
    client_options(analyze)
