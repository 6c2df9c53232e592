"""`proftask task create|list|get|progress|wait`: tasks over the HTTP API."""
from __future__ import annotations

import argparse
import json
import sys
import time

from proftask.client.http import ApiClient, ClientError, task_path
from proftask.client.terminal import printable
from proftask.core.progress import missed_instances, task_status

EVENTS = ("CPU", "HEAP", "ALLOCS", "BLOCK", "MUTEX", "GOROUTINE", "THREADCREATE")
WAIT_FINISHED, WAIT_FAILED, WAIT_TIMEOUT = 0, 1, 2  # and 3 (CLIENT_ERROR): the server said no


MISSED_MESSAGE = ("not settled in the time the task gives an instance: not handed the task by its deadline, or "
                  "its agent went away after")


def _now_ms() -> int:
    return int(time.time() * 1000)


def deadline_ms(task: dict) -> int:
    """When the task's instances can no longer run it (the server's `deadline`)."""
    return task.get("deadline", task["createTime"] + (task["duration"] or 0) * 60_000)


def instance_states(task: dict, progress: dict, now_ms: int | None = None) -> list[tuple[str, str, str]]:
    """(instance, state, latest message) per instance of the task; state is finished, error,
    notified or waiting, or missed: it never will settle (core.progress.missed_instances, by the
    server's deadline against this machine's clock)."""
    done, failed = set(progress["successInstanceIds"]), set(progress["errorInstanceIds"])
    missed = (missed_instances(task["serviceInstanceIds"], progress, task["createTime"], deadline_ms(task), now_ms)
              if now_ms is not None else set())
    out = []
    for instance in task["serviceInstanceIds"]:
        logs = [log for log in progress["logs"] if log["instanceId"] == instance]
        notified = any(log["operationType"] == "NOTIFIED" for log in logs)
        errors = [log["message"] for log in logs if log["operationType"] not in ("NOTIFIED", "EXECUTION_FINISHED")]
        state = ("finished" if instance in done else "error" if instance in failed
                 else "missed" if instance in missed else "notified" if notified else "waiting")
        message = errors[-1] if errors and state == "error" else MISSED_MESSAGE if state == "missed" else ""
        out.append((instance, state, message))
    return out


def _progress(client: ApiClient, task_id: str) -> dict:
    """The progress of a task the server found (the query role answers it from the 201 on: a 404
    is no "nothing yet", which kept `task wait` pending for good against a split process without
    the query role)."""
    try:
        return client.get(task_path(task_id, "/progress"))
    except ClientError as e:
        if e.status == 404:
            raise ClientError(404, "NOT_FOUND", f"{client.server} knows task {task_id} but answers no progress of "
                                                "it: give --server a process of the query role (`serve all`, or "
                                                "the proxy in front of the roles)") from None
        raise


def _table(rows: list[list[str]], header: list[str]) -> str:
    rows = [[printable(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)).rstrip()  # noqa: E731
    return "\n".join([line(header), *(line(r) for r in rows)])


def _ms(ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(ms / 1000)) if ms else ""


def cmd_create(client: ApiClient, args) -> int:
    body = {"serviceId": args.service, "serviceInstanceIds": [i for i in args.instances.split(",") if i],
            "events": args.event, "duration": args.duration, "dumpPeriod": args.dump_period}
    created = client.post("/api/v1/pprof/tasks", body)
    print(created["id"])
    for warning in created.get("warnings") or ():  # on stderr: stdout stays the id, for scripts
        print(f"warning: {printable(warning)}", file=sys.stderr)
    return 0


def cmd_list(client: ApiClient, args) -> int:
    tasks = client.get("/api/v1/pprof/tasks", serviceId=args.service, limit=args.limit)["tasks"]
    if args.json:
        print(json.dumps(tasks, indent=2))
        return 0
    now = _now_ms()
    rows = [[t["id"], _ms(t["createTime"]), t["serviceId"], t["events"], ",".join(t["serviceInstanceIds"]),
             f"{t['duration']} min" if t["duration"] else "",
             task_status(t["serviceInstanceIds"], _progress(client, t["id"]), t["createTime"], deadline_ms(t), now)]
            for t in tasks]
    print(_table(rows, ["TASK", "CREATED", "SERVICE", "EVENT", "INSTANCES", "DURATION", "STATUS"]))
    return 0


def cmd_get(client: ApiClient, args) -> int:
    print(json.dumps(client.get(task_path(args.task_id)), indent=2))
    return 0


def cmd_progress(client: ApiClient, args) -> int:
    task = client.get(task_path(args.task_id))
    progress = _progress(client, args.task_id)
    if args.json:
        print(json.dumps(progress, indent=2))
        return 0
    print(_table([list(s) for s in instance_states(task, progress, _now_ms())],
                 ["INSTANCE", "STATE", "MESSAGE"]))
    return 0


def progress_bar(states: list[tuple[str, str, str]], width: int = 30) -> str:
    n = len(states)
    finished = sum(s == "finished" for _, s, _ in states)
    failed = sum(s in ("error", "missed") for _, s, _ in states)
    filled = round(width * (finished + failed) / n) if n else width
    return (f"[{'#' * filled}{'.' * (width - filled)}] {finished}/{n} finished, {failed} failed, "
            f"{n - finished - failed} pending")


def cmd_wait(client: ApiClient, args) -> int:
    task = client.get(task_path(args.task_id))
    deadline = time.monotonic() + args.timeout if args.timeout else float("inf")
    live = sys.stderr.isatty()
    last = ""
    while True:
        states = instance_states(task, _progress(client, args.task_id), _now_ms())
        bar = progress_bar(states)
        if bar != last:
            print(("\r" + bar) if live else bar, end="" if live else "\n", file=sys.stderr, flush=True)
            last = bar
        if all(s in ("finished", "error", "missed") for _, s, _ in states):
            if live:
                print(file=sys.stderr)
            for instance, state, message in states:
                if state in ("error", "missed"):
                    print(f"{printable(instance)}: {printable(message)}", file=sys.stderr)
            return WAIT_FAILED if any(s != "finished" for _, s, _ in states) else WAIT_FINISHED
        if time.monotonic() >= deadline:
            if live:
                print(file=sys.stderr)
            print(f"timed out after {args.timeout:g}s", file=sys.stderr)
            return WAIT_TIMEOUT
        time.sleep(args.interval)


def register(sub, client_options) -> None:
    task = sub.add_parser("task", help="create, list and follow profiling tasks",
                          description="Profiling tasks on a proftask server (its HTTP API).")
    commands = task.add_subparsers(dest="task_command", required=True)

    create = commands.add_parser("create", help="create a task; prints its id",
                                 description="Create a profiling task for some instances of a service and print "
                                             "its id. The server checks the request as SkyWalking does and says "
                                             "what is wrong (exit code 3).")
    create.add_argument("--service", required=True, help="the service (serviceId), as the agents name it")
    create.add_argument("--instances", required=True, help="comma-separated instance names (serviceInstanceIds)")
    create.add_argument("--event", required=True, type=str.upper, choices=EVENTS, help="what to profile")
    create.add_argument("--duration", type=int, help="minutes, 1..15; required for CPU, BLOCK and MUTEX")
    create.add_argument("--dump-period", type=int,
                        help="Go's sampling rate for BLOCK (ns per sampled event) and MUTEX (1/n events); > 0")
    create.set_defaults(client_func=cmd_create)

    ls = commands.add_parser(
        "list", help="list tasks, newest first, with their status",
        description="Tasks, newest first. STATUS: finished (every instance finished), failed (every instance "
                    "settled or missed, and some did not finish), waiting (no instance notified yet), running "
                    "(otherwise). An instance missed the task when it was not handed it by the task's deadline, or "
                    "did not settle in the time the task gives an instance after it was.")
    ls.add_argument("--service", help="only this service's tasks")
    ls.add_argument("--limit", type=int, default=50, help="at most this many (default 50)")
    ls.add_argument("--json", action="store_true", help="print the API's JSON")
    ls.set_defaults(client_func=cmd_list)

    get = commands.add_parser("get", help="print one task as JSON")
    get.add_argument("task_id", help="the task's id")
    get.set_defaults(client_func=cmd_get)

    progress = commands.add_parser("progress", help="each instance's state: waiting, notified, finished, error, "
                                                   "or missed (it never will settle)")
    progress.add_argument("task_id", help="the task's id")
    progress.add_argument("--json", action="store_true", help="print the API's JSON (logs included)")
    progress.set_defaults(client_func=cmd_progress)

    wait = commands.add_parser(
        "wait", help="wait until every instance finished or failed, with a progress bar",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Show a live progress bar (on stderr) until every instance of the task has finished or "
                    "failed, or missed the task (see `task list`): those never will settle.\n\nexit codes:\n"
                    "  0  every instance finished\n  1  at least one instance failed "
                    "or missed the task (their messages are printed)\n  2  --timeout passed first\n"
                    "  3  the server refused or could not be reached")
    wait.add_argument("task_id", help="the task's id")
    wait.add_argument("--timeout", type=float, default=0, help="give up after this many seconds (default: never)")
    wait.add_argument("--interval", type=float, default=1.0, help="seconds between polls (default 1)")
    wait.set_defaults(client_func=cmd_wait)
    for p in (create, ls, get, progress, wait):
        client_options(p)
