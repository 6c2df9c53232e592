"""proftask benchmarks against `go tool pprof` on the same inputs. Prints one JSON line per case
and the ratios. Starts its own Kafka broker and proftask process (as the integration tests do).

The baseline is what a user would run: ONE `go tool pprof` process over all the files (it
merges them), timed in the same run as proftask. Cold (a task never analysed before) is the
headline; warm (the answer cached) stands beside it.

    .venv/bin/python -m bench.run [--instances 10] [--warm-runs 5] [--skip-big] [--burst 1000]
                                  [--burst-layouts all,split] [--skip-large] [--stages]

The ten are ingested again at the end, as a second task (the tenant's stacks known), beside the
headline. Beneath them stands ingest's floor: the CPU time of the upload check and the fold alone
(the Go library, in this process, nothing sent or stored) over the core count, the least any
scheduling of that work could take. It ends with the issue's table: each row as a ratio to `go
tool pprof` measured in this run, then the burst figures for each layout (`all`: one `serve
all`; `split`: `serve task`, two `serve ingest` behind a client-side round robin, `serve
processor,query`). --stages adds where the ingest time went, from the processes' own stage
timings (PROFTASK_STAGE_LOG).
"""
from __future__ import annotations

import argparse
import concurrent.futures
import itertools
import json
import os
import pathlib
import resource
import statistics
import subprocess
import tempfile
import time

from tests.conformance.oracle import require_conformance
from tests.integration.harness import KafkaBroker, Proftask, new_topic_prefix, stop_all, wait_until
from tests.integration.profiles import create_task, progress, upload

OUT = pathlib.Path(__file__).resolve().parents[1] / "test-output"


def emit(case: str, **figures) -> dict:
    line = {"case": case, **figures}
    print(json.dumps(line), flush=True)
    return line


def peak_rss_mb(pid: int) -> float:
    for line in pathlib.Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def tree_peak_rss_mb(pid: int) -> float:
    """The process and its children (the CPU workers), each at its own peak."""
    total = peak_rss_mb(pid)
    for child in children(pid):
        try:
            total += tree_peak_rss_mb(child)
        except (FileNotFoundError, ProcessLookupError):
            pass
    return total


def own_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system) of a process, its waited-for children's included."""
    try:
        fields = pathlib.Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return 0.0
    return sum(int(f) for f in fields[11:15]) / os.sysconf("SC_CLK_TCK")  # utime stime cutime cstime


def children(pid: int) -> list[int]:
    path = pathlib.Path(f"/proc/{pid}/task/{pid}/children")
    return [int(child) for child in path.read_text().split()] if path.exists() else []


def cpu_seconds(p: Proftask, broker: KafkaBroker) -> dict[str, float]:
    """Where the cores go: proftask's process (event loops, the intake's check, ClickHouse), its
    CPU workers (the fold), and the Kafka broker."""
    return {"proftask": own_cpu_seconds(p.proc.pid),
            "proftask_cpu_workers": sum(own_cpu_seconds(child) for child in children(p.proc.pid)),
            "kafka": own_cpu_seconds(int((broker.data_dir / "kafka.pid").read_text()))}


def metric(p: Proftask, name: str) -> float:
    total = 0.0
    for line in p.get("/metrics").body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def server_seconds(p: Proftask, fn) -> tuple[float, dict[str, float], object]:
    """fn's wall time, and how much of it the server spent in ClickHouse queries, per query
    label (its proftask_query_seconds, summed)."""
    def sums() -> dict[str, float]:
        out: dict[str, float] = {}
        for line in p.get("/metrics").body.decode().splitlines():
            if line.startswith("proftask_query_seconds_sum{"):
                label = line.split('query="', 1)[1].split('"', 1)[0]
                out[label] = out.get(label, 0.0) + float(line.rsplit(" ", 1)[1])
        return out

    before = sums()
    seconds, result = timed(fn)
    after = sums()
    spent = {k: round(v - before.get(k, 0.0), 3) for k, v in after.items() if v - before.get(k, 0.0) > 0}
    return seconds, spent, result


def go_pprof_seconds(files: list[pathlib.Path], report: str = "-raw") -> float:
    """One `go tool pprof` process over every file (pprof merges them), as a user would run it."""
    started = time.perf_counter()
    subprocess.run(["go", "tool", "pprof", report, *map(str, files)], capture_output=True, check=True)
    return time.perf_counter() - started


def fold_floor_cpu_seconds(profile: pathlib.Path, count: int) -> float:
    """CPU seconds (every thread of this process) of the least that ingest does for `count`
    uploads of the profile: the upload's check and the fold, both by the Go library, one after
    the other, nothing sent or stored. Spread over every core, no scheduling of ingest finishes
    sooner than this over the core count."""
    from proftask.pprof import native
    from proftask.pprof.decode import decompress

    body = profile.read_bytes()
    native.fold(decompress(body, 1 << 31))  # the library loaded and its heap grown, as in a running worker

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime

    started = cpu()
    for _ in range(count):
        raw = decompress(body, 1 << 31)
        assert native.sample_types(raw) is not None and native.fold(raw) is not None
    return cpu() - started


def analysis(p: Proftask, task_id: str, **params) -> bytes:
    """The analysis answer's bytes, as they arrive: what the server takes to answer. Parsing
    them is the client's own cost (the bench's json.loads takes ~0.55 s for a 42 MB tree, a
    browser's JSON.parse a fraction of that), timed apart as client_json_parse_seconds."""
    query = "&".join(f"{k}={v}" for k, v in params.items() if v is not None)
    r = p.get(f"/api/v1/pprof/tasks/{task_id}/analysis?{query}", timeout=300)
    assert r.status == 200, r
    return r.body


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def ingest(p: Proftask, profile: pathlib.Path, names: list[str]) -> tuple[str, float, float]:
    """A new task of these instances, every one uploading the profile at once: (its id, seconds
    from the first upload to the last EXECUTION_FINISHED, seconds until every upload's answer)."""
    task_id = create_task(p, names, events="CPU", duration=1)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(len(names)) as agents:
        replies = list(agents.map(lambda name: upload(p, task_id, name, profile), names))
    assert all(r.status == 202 for r in replies), replies
    uploaded = time.perf_counter() - started
    wait_until(lambda: len(progress(p, task_id)["successInstanceIds"]) == len(names), timeout=600, interval=0.05)
    return task_id, time.perf_counter() - started, uploaded


def bench_large(p: Proftask, broker: KafkaBroker, instances: int, warm_runs: int) -> list[dict]:
    large = require_conformance() / "large" / "pprof-large.cpu.pb.gz"
    go_pprof_seconds([large])  # the go toolchain's own first-run costs are not pprof's
    names = [f"pod-{n}" for n in range(instances)]
    rows_before = metric(p, "proftask_ingest_sample_rows_total")
    cpu_before = cpu_seconds(p, broker)
    task_id, ingest_s, uploaded = ingest(p, large, names)
    # where the two cores went meanwhile: proftask's processes, and the broker's
    cpu = {name: round(spent - cpu_before[name], 2) for name, spent in cpu_seconds(p, broker).items()}
    rows = metric(p, "proftask_ingest_sample_rows_total") - rows_before
    task_folds = {outcome: metric(p, f'proftask_task_folds_total{{outcome="{outcome}"}}')
                  for outcome in ("added", "written", "summed_again", "left_to_next", "unplaced")}
    go_s = go_pprof_seconds([large] * instances)
    floor_cpu = fold_floor_cpu_seconds(large, instances)
    cores = len(os.sched_getaffinity(0))
    out = [emit("ingest", profiles=instances, file=large.name, seconds=round(ingest_s, 3),
                upload_seconds=round(uploaded, 3), go_pprof_raw_one_process_seconds=round(go_s, 3),
                ratio_vs_go=round(ingest_s / go_s, 2),
                check_and_fold_cpu_seconds=round(floor_cpu, 3), cores=cores,
                check_and_fold_floor_ratio_vs_go=round(floor_cpu / cores / go_s, 2), cpu_seconds_during_ingest=cpu,
                sample_rows=int(rows),
                rows_per_second=round(rows / ingest_s), process_peak_rss_mb=round(peak_rss_mb(p.proc.pid)),
                task_folds=task_folds, task_fold_seconds=round(metric(p, "proftask_task_fold_seconds_total"), 3))]
    # What the UI asks first (maxNodes=5000) on a task never analysed, then the full tree, then warm.
    first_view_s, first_view_queries, _ = server_seconds(p, lambda: analysis(p, task_id, maxNodes=5000))
    # The UI itself opens a task of several instances with their shares (instanceStats): cold too.
    ui_first_s, ui_first_queries, _ = server_seconds(p, lambda: analysis(
        p, task_id, maxNodes=5000, instanceIds=",".join(names), instanceStats="true"))
    full_s, full_queries, body = server_seconds(p, lambda: analysis(p, task_id))
    parse_s, result = timed(lambda: json.loads(body))
    warm_first = statistics.median(timed(lambda: analysis(p, task_id, maxNodes=5000))[0] for _ in range(warm_runs))
    warm_full = statistics.median(timed(lambda: analysis(p, task_id))[0] for _ in range(warm_runs))
    out.append(emit("analysis_merged", instances=instances, nodes=len(result["tree"]["elements"]),
                    go_pprof_raw_one_process_seconds=round(go_s, 3),
                    first_view_max_nodes_5000_cold_seconds=round(first_view_s, 3),
                    first_view_ratio_vs_go=round(first_view_s / go_s, 3),
                    first_view_query_seconds=first_view_queries,
                    ui_first_view_instance_stats_cold_seconds=round(ui_first_s, 3),
                    ui_first_view_ratio_vs_go=round(ui_first_s / go_s, 3),
                    ui_first_view_query_seconds=ui_first_queries,
                    full_tree_cold_seconds=round(full_s, 3), full_tree_ratio_vs_go=round(full_s / go_s, 3),
                    full_tree_query_seconds=full_queries, full_tree_bytes=len(body),
                    client_json_parse_seconds=round(parse_s, 3),
                    first_view_warm_seconds=round(warm_first, 3), full_tree_warm_seconds=round(warm_full, 3)))
    # One large profile opened in the UI, against `go tool pprof -top` of that file.
    # Its ingest alone too: what one instance's operator waits for (the workers idle before it).
    single = create_task(p, ["pod-0"], events="CPU", duration=1)
    started = time.perf_counter()
    assert upload(p, single, "pod-0", large).status == 202
    wait_until(lambda: progress(p, single)["successInstanceIds"] == ["pod-0"], timeout=600, interval=0.01)
    alone_s = time.perf_counter() - started
    top_s = go_pprof_seconds([large], "-top")
    open_s, open_queries, _ = server_seconds(p, lambda: analysis(p, single, maxNodes=5000))
    out.append(emit("open_one_large_profile", upload_to_finished_seconds=round(alone_s, 3),
                    go_pprof_top_seconds=round(top_s, 3),
                    analysis_max_nodes_5000_cold_seconds=round(open_s, 3), ratio_vs_go_top=round(open_s / top_s, 3),
                    query_seconds=open_queries))
    # The same ten again, as a second task: the headline above is the tenant's first, which also
    # writes its stacks and node paths; this is what each task after it waits for.
    _, again_s, _ = ingest(p, large, names)
    out.append(emit("ingest_again", profiles=instances, seconds=round(again_s, 3),
                    ratio_vs_go=round(again_s / go_s, 2)))
    return out


def upload_as_agent(p: Proftask, task_id: str, name: str, data: bytes):
    """An agent's upload: a 503 (upload budget full) is sent again after its Retry-After."""
    for _ in range(100):
        r = upload(p, task_id, name, data)
        if r.status not in (0, 503):
            return r
        time.sleep(min(float(r.headers.get("Retry-After", "1")), 1.0))
    return r


def bench_burst(layout: str, control: Proftask, query: Proftask, ingest: list[Proftask], everyone: list[Proftask],
                uploads: int) -> dict:
    """A task for a whole fleet: every instance uploads at once (32 at a time), round robin over
    the ingest processes; done when the progress lists every instance finished."""
    sample = (require_conformance() / "go" / "pprof-sample.cpu.pb.gz").read_bytes()
    names = [f"pod-{n}" for n in range(uploads)]
    task_id = create_task(control, names, events="CPU", duration=1)
    wait_until(lambda: query.get(f"/api/v1/pprof/tasks/{task_id}/progress").status == 200, timeout=60)
    targets = itertools.cycle(ingest)
    pairs = [(next(targets), name) for name in names]
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(32) as agents:
        replies = list(agents.map(lambda pn: upload_as_agent(pn[0], task_id, pn[1], sample), pairs))
    uploaded_s = time.perf_counter() - started
    statuses = {s: sum(1 for r in replies if r.status == s) for s in sorted({r.status for r in replies})}
    accepted = sum(1 for r in replies if r.status == 202)
    wait_until(lambda: len(progress(query, task_id)["successInstanceIds"]) >= accepted, timeout=1800, interval=0.1)
    finished_s = time.perf_counter() - started
    stored = len(progress(query, task_id)["successInstanceIds"])
    return emit(f"burst_{layout}", uploads=uploads, processes=[p.role for p in everyone], statuses=statuses,
                upload_seconds=round(uploaded_s, 2), first_upload_to_last_finished_seconds=round(finished_s, 2),
                stored=stored, lost=uploads - stored,
                process_peak_rss_mb={f"{p.role}:{p.port}": round(peak_rss_mb(p.proc.pid)) for p in everyone},
                process_tree_peak_rss_mb_total=round(sum(tree_peak_rss_mb(p.proc.pid) for p in everyone)))


def burst_layout(layout: str, broker: KafkaBroker, work: pathlib.Path, uploads: int, env: dict,
                 stages: bool) -> dict:
    prefix = new_topic_prefix()
    if layout == "all":
        procs = [Proftask("all", broker, work / "burst-all", prefix, OUT, env)]
    else:
        procs = [Proftask(role, broker, work / f"burst-{n}-{role.replace(',', '-')}", prefix, OUT, env)
                 for n, role in enumerate(("task", "ingest", "ingest", "processor,query"))]
    try:
        for p in procs:
            p.start(wait=False)
        for p in procs:
            p.wait_ready()
        if layout == "all":
            result = bench_burst(layout, procs[0], procs[0], procs, procs, uploads)
        else:
            result = bench_burst(layout, procs[0], procs[3], procs[1:3], procs, uploads)
        if stages:
            emit(f"ingest_stages_burst_{layout}", **stage_seconds(procs))
        return result
    finally:
        stop_all(procs)


def bench_big(p: Proftask, work: pathlib.Path) -> dict:
    from bench.big_profile import big_profile

    data = big_profile(30 * 1024 * 1024 - 512 * 1024)
    path = work / "big.pb.gz"
    path.write_bytes(data)
    task_id = create_task(p, ["big-1"])
    rss_before = peak_rss_mb(p.proc.pid)
    started = time.perf_counter()
    r = upload(p, task_id, "big-1", path)
    assert r.status == 202, r
    wait_until(lambda: progress(p, task_id)["successInstanceIds"] == ["big-1"], timeout=600, interval=0.1)
    stored = time.perf_counter() - started
    t0 = time.perf_counter()
    result = json.loads(analysis(p, task_id, maxNodes=1000))
    analysed = time.perf_counter() - t0
    go_s = go_pprof_seconds([path])
    return emit("profile_30mib", bytes=len(data), status=r.status, upload_to_finished_seconds=round(stored, 2),
                analysis_max_nodes_1000_seconds=round(analysed, 2), root_total=result["tree"]["elements"][0]["total"],
                go_pprof_raw_seconds=round(go_s, 2), memory_parser="file",
                process_peak_rss_mb_before=round(rss_before), process_peak_rss_mb_after=round(peak_rss_mb(p.proc.pid)))


STAGES = "proftask_ingest_stage_seconds"


def stage_seconds(procs: list[Proftask]) -> dict[str, dict[str, float]]:
    """Per ingest stage, summed over the processes: seconds spent (stages of concurrent profiles
    overlap, so these are busy seconds, not wall time) and how many profiles passed it."""
    out: dict[str, dict[str, float]] = {}
    for p in procs:
        for line in p.get("/metrics").body.decode().splitlines():
            for suffix, field in (("_sum{", "seconds"), ("_count{", "profiles")):
                if line.startswith(STAGES + suffix):
                    stage = line.split('stage="', 1)[1].split('"', 1)[0]
                    value = float(line.rsplit(" ", 1)[1])
                    entry = out.setdefault(stage, {"seconds": 0.0, "profiles": 0})
                    entry[field] += value
    return {k: {"seconds": round(v["seconds"], 3), "profiles": int(v["profiles"])} for k, v in out.items()}


def print_table(large: list[dict], bursts: list[dict]) -> None:
    """The issue's table, every ratio from this run."""
    rows = []
    if large:
        ingest, merged, single, again = large
        rows += [
            ("ingest: first upload -> last EXECUTION_FINISHED", ingest["seconds"], ingest["ratio_vs_go"], "<= 1.0x"),
            ("  the same ten again, as a second task", again["seconds"], again["ratio_vs_go"], ""),
            (f"  its floor: check + fold alone, CPU s / {ingest['cores']} cores",
             round(ingest["check_and_fold_cpu_seconds"] / ingest["cores"], 3),
             ingest["check_and_fold_floor_ratio_vs_go"], ""),
            ("first view: cold analysis, maxNodes=5000", merged["first_view_max_nodes_5000_cold_seconds"],
             merged["first_view_ratio_vs_go"], "<= 0.1x"),
            ("  the same as the UI asks it (instanceStats=true)", merged["ui_first_view_instance_stats_cold_seconds"],
             merged["ui_first_view_ratio_vs_go"], ""),
            ("full tree, cold (no cache)", merged["full_tree_cold_seconds"], merged["full_tree_ratio_vs_go"],
             "<= 0.5x"),
            ("one large profile opened (vs go tool pprof -top)", single["analysis_max_nodes_5000_cold_seconds"],
             single["ratio_vs_go_top"], "<= 0.2x"),
            ("one large profile alone: upload -> FINISHED", single["upload_to_finished_seconds"], "", ""),
        ]
        print(f"\n{ingest['profiles']} x {ingest['file']}; baseline: one `go tool pprof -raw` process over all "
              f"of them, {ingest['go_pprof_raw_one_process_seconds']} s (-top of one: "
              f"{single['go_pprof_top_seconds']} s); warm first view {merged['first_view_warm_seconds']} s, "
              f"warm full tree {merged['full_tree_warm_seconds']} s; times are to the answer's last byte, the "
              f"client's json.loads of the full tree apart: {merged['client_json_parse_seconds']} s")
        print(f"| {'what a user waits for':50} | {'proftask s':>10} | {'ratio':>7} | goal     |")
        for what, seconds, ratio, goal in rows:
            shown = f"{ratio}x" if ratio != "" else ""
            print(f"| {what:50} | {seconds:>10} | {shown:>7} | {goal:8} |")
    for b in bursts:
        print(f"burst of {b['uploads']} ({b['layout']}: {' + '.join(b['processes'])}): first upload -> last "
              f"EXECUTION_FINISHED {b['first_upload_to_last_finished_seconds']} s (goal <= 10 s), stored "
              f"{b['stored']}/{b['uploads']}, lost {b['lost']}, peak RSS {b['process_peak_rss_mb']} MB "
              f"(with CPU workers, all processes: {b['process_tree_peak_rss_mb_total']} MB)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--warm-runs", type=int, default=5)
    ap.add_argument("--skip-big", action="store_true", help="skip the 30 MiB profile case")
    ap.add_argument("--skip-large", action="store_true", help="skip the large/pprof-large.cpu.pb.gz cases")
    ap.add_argument("--burst", type=int, default=0, help="also upload go/pprof-sample.cpu.pb.gz for this many "
                                                         "instances of one task at once (e.g. 1000)")
    ap.add_argument("--burst-layouts", default="all,split", help="all (one `serve all`), split (task, "
                                                                 "ingest x2, processor+query), or both")
    ap.add_argument("--stages", action="store_true", help="print where ingest time went, per stage")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    large: list[dict] = []
    bursts: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="proftask-bench-") as tmp:
        work = pathlib.Path(tmp)
        broker = KafkaBroker(work / "kafka")
        broker.start()
        try:
            if not args.skip_large:
                p = Proftask("all", broker, work / "data", new_topic_prefix(), OUT).start()
                try:
                    large = bench_large(p, broker, args.instances, args.warm_runs)
                    if args.stages:
                        emit("ingest_stages_large", **stage_seconds([p]))
                finally:
                    p.stop()
            for layout in filter(None, args.burst_layouts.split(",")) if args.burst else ():
                result = burst_layout(layout, broker, work, args.burst, {}, args.stages)
                bursts.append({"layout": layout, **result})
            if not args.skip_big:
                big = Proftask("all", broker, work / "data-big", new_topic_prefix(), OUT,
                               {"SW_RECEIVER_PPROF_MEMORY_PARSER_ENABLED": "false"}).start()
                try:
                    bench_big(big, work)
                finally:
                    big.stop()
        finally:
            broker.stop()
    print_table(large, bursts)


if __name__ == "__main__":
    main()
