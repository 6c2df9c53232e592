"""proftask benchmarks against `go tool pprof` on the same inputs. Prints one JSON line per case
and the ratios. Starts its own Kafka broker and proftask process (as the integration tests do).

The baseline is what a user would run: ONE `go tool pprof` process over all the files (it
merges them), timed in the same run as proftask. Cold (a task never analysed before) is the
headline; warm (the answer cached) stands beside it.

    .venv/bin/python -m bench.run [--instances 10] [--warm-runs 5] [--skip-big] [--burst 1000]
"""
from __future__ import annotations

import argparse
import concurrent.futures
import json
import pathlib
import statistics
import subprocess
import tempfile
import time

from tests.conformance.oracle import require_conformance
from tests.integration.harness import KafkaBroker, Proftask, new_topic_prefix, wait_until
from tests.integration.profiles import analysis, create_task, progress, upload

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


def metric(p: Proftask, name: str) -> float:
    total = 0.0
    for line in p.get("/metrics").body.decode().splitlines():
        if line.startswith(name) and not line.startswith("#"):
            total += float(line.rsplit(" ", 1)[1])
    return total


def go_pprof_seconds(files: list[pathlib.Path], report: str = "-raw") -> float:
    """One `go tool pprof` process over every file (pprof merges them), as a user would run it."""
    started = time.perf_counter()
    subprocess.run(["go", "tool", "pprof", report, *map(str, files)], capture_output=True, check=True)
    return time.perf_counter() - started


def timed(fn) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = fn()
    return time.perf_counter() - t0, result


def bench_large(p: Proftask, instances: int, warm_runs: int) -> list[dict]:
    large = require_conformance() / "large" / "pprof-large.cpu.pb.gz"
    go_pprof_seconds([large])  # the go toolchain's own first-run costs are not pprof's
    names = [f"pod-{n}" for n in range(instances)]
    task_id = create_task(p, names, events="CPU", duration=1)
    rows_before = metric(p, "proftask_ingest_sample_rows_total")
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(instances) as agents:  # every instance uploads at once
        replies = list(agents.map(lambda name: upload(p, task_id, name, large), names))
    assert all(r.status == 202 for r in replies), replies
    uploaded = time.perf_counter() - started
    wait_until(lambda: len(progress(p, task_id)["successInstanceIds"]) == instances, timeout=600, interval=0.05)
    ingest_s = time.perf_counter() - started
    rows = metric(p, "proftask_ingest_sample_rows_total") - rows_before
    go_s = go_pprof_seconds([large] * instances)
    out = [emit("ingest", profiles=instances, file=large.name, seconds=round(ingest_s, 3),
                upload_seconds=round(uploaded, 3), go_pprof_raw_one_process_seconds=round(go_s, 3),
                ratio_vs_go=round(ingest_s / go_s, 2), sample_rows=int(rows),
                rows_per_second=round(rows / ingest_s), process_peak_rss_mb=round(peak_rss_mb(p.proc.pid)))]
    # What the UI asks first (maxNodes=5000) on a task never analysed, then the full tree, then warm.
    first_view_s, _ = timed(lambda: analysis(p, task_id, maxNodes=5000))
    full_s, result = timed(lambda: analysis(p, task_id))
    warm_first = statistics.median(timed(lambda: analysis(p, task_id, maxNodes=5000))[0] for _ in range(warm_runs))
    warm_full = statistics.median(timed(lambda: analysis(p, task_id))[0] for _ in range(warm_runs))
    out.append(emit("analysis_merged", instances=instances, nodes=len(result["tree"]["elements"]),
                    go_pprof_raw_one_process_seconds=round(go_s, 3),
                    first_view_max_nodes_5000_cold_seconds=round(first_view_s, 3),
                    first_view_ratio_vs_go=round(first_view_s / go_s, 3),
                    full_tree_cold_seconds=round(full_s, 3), full_tree_ratio_vs_go=round(full_s / go_s, 3),
                    first_view_warm_seconds=round(warm_first, 3), full_tree_warm_seconds=round(warm_full, 3)))
    # One large profile opened in the UI, against `go tool pprof -top` of that file.
    single = create_task(p, ["pod-0"], events="CPU", duration=1)
    assert upload(p, single, "pod-0", large).status == 202
    wait_until(lambda: progress(p, single)["successInstanceIds"] == ["pod-0"], timeout=600, interval=0.05)
    top_s = go_pprof_seconds([large], "-top")
    open_s, _ = timed(lambda: analysis(p, single, maxNodes=5000))
    out.append(emit("open_one_large_profile", go_pprof_top_seconds=round(top_s, 3),
                    analysis_max_nodes_5000_cold_seconds=round(open_s, 3), ratio_vs_go_top=round(open_s / top_s, 3)))
    return out


def bench_burst(p: Proftask, uploads: int) -> dict:
    """A task for a whole fleet: every instance uploads at once."""
    sample = (require_conformance() / "go" / "pprof-sample.cpu.pb.gz").read_bytes()
    names = [f"pod-{n}" for n in range(uploads)]
    task_id = create_task(p, names, events="CPU", duration=1)
    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(32) as agents:
        replies = list(agents.map(lambda name: upload(p, task_id, name, sample), names))
    statuses = {s: sum(1 for r in replies if r.status == s) for s in {r.status for r in replies}}
    accepted = [n for n, r in zip(names, replies) if r.status == 202]
    wait_until(lambda: len(progress(p, task_id)["successInstanceIds"]) == len(accepted), timeout=900, interval=0.2)
    finished_s = time.perf_counter() - started
    return emit("burst", uploads=uploads, statuses=statuses, first_upload_to_last_finished_seconds=round(finished_s, 2),
                lost=len(accepted) - len(progress(p, task_id)["successInstanceIds"]),
                process_peak_rss_mb=round(peak_rss_mb(p.proc.pid)))


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
    result = analysis(p, task_id, maxNodes=1000)
    analysed = time.perf_counter() - t0
    go_s = go_pprof_seconds([path])
    return emit("profile_30mib", bytes=len(data), status=r.status, upload_to_finished_seconds=round(stored, 2),
                analysis_max_nodes_1000_seconds=round(analysed, 2), root_total=result["tree"]["elements"][0]["total"],
                go_pprof_raw_seconds=round(go_s, 2), memory_parser="file",
                process_peak_rss_mb_before=round(rss_before), process_peak_rss_mb_after=round(peak_rss_mb(p.proc.pid)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--warm-runs", type=int, default=5)
    ap.add_argument("--skip-big", action="store_true", help="skip the 30 MiB profile case")
    ap.add_argument("--burst", type=int, default=0, help="also upload go/pprof-sample.cpu.pb.gz for this many "
                                                         "instances of one task at once (e.g. 1000)")
    args = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="proftask-bench-") as tmp:
        work = pathlib.Path(tmp)
        broker = KafkaBroker(work / "kafka")
        broker.start()
        procs = []
        try:
            p = Proftask("all", broker, work / "data", new_topic_prefix(), OUT).start()
            procs.append(p)
            bench_large(p, args.instances, args.warm_runs)
            if args.burst:
                burst = Proftask("all", broker, work / "data-burst", new_topic_prefix(), OUT).start()
                procs.append(burst)
                bench_burst(burst, args.burst)
            if not args.skip_big:
                big = Proftask("all", broker, work / "data-big", new_topic_prefix(), OUT,
                               {"SW_RECEIVER_PPROF_MEMORY_PARSER_ENABLED": "false"}).start()
                procs.append(big)
                bench_big(big, work)
        finally:
            for proc in procs:
                proc.stop()
            broker.stop()


if __name__ == "__main__":
    main()
