"""proftask benchmarks against `go tool pprof` on the same inputs. Prints one JSON line per case
and the ratios. Starts its own Kafka broker and proftask process (as the integration tests do).

    .venv/bin/python -m bench.run [--instances 10] [--warm-runs 5] [--skip-big]
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


def go_pprof_raw_seconds(files: list[pathlib.Path]) -> float:
    started = time.perf_counter()
    for f in files:
        subprocess.run(["go", "tool", "pprof", "-raw", str(f)], capture_output=True, check=True)
    return time.perf_counter() - started


def bench_large(p: Proftask, instances: int, warm_runs: int) -> list[dict]:
    large = require_conformance() / "large" / "pprof-large.cpu.pb.gz"
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
    go_s = go_pprof_raw_seconds([large] * instances)
    out = [emit("ingest", profiles=instances, file=large.name, seconds=round(ingest_s, 3),
                upload_seconds=round(uploaded, 3), go_pprof_raw_seconds=round(go_s, 3),
                ratio_vs_go=round(ingest_s / go_s, 2), sample_rows=int(rows),
                rows_per_second=round(rows / ingest_s), process_peak_rss_mb=round(peak_rss_mb(p.proc.pid)))]
    cold_started = time.perf_counter()
    result = analysis(p, task_id)
    cold = time.perf_counter() - cold_started
    warm = []
    for _ in range(warm_runs):
        t0 = time.perf_counter()
        analysis(p, task_id)
        warm.append(time.perf_counter() - t0)
    top = []
    for _ in range(warm_runs):
        t0 = time.perf_counter()
        analysis(p, task_id, maxNodes=2000)
        top.append(time.perf_counter() - t0)
    warm_s = statistics.median(warm)
    out.append(emit("analysis", instances=instances, nodes=len(result["tree"]["elements"]),
                    cold_seconds=round(cold, 3), warm_seconds_median=round(warm_s, 3),
                    warm_max_nodes_2000_seconds_median=round(statistics.median(top), 3),
                    go_pprof_raw_seconds=round(go_s, 3), ratio_vs_go=round(warm_s / go_s, 3),
                    ratio_vs_go_max_nodes_2000=round(statistics.median(top) / go_s, 3)))
    return out


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
    go_s = go_pprof_raw_seconds([path])
    return emit("profile_30mib", bytes=len(data), status=r.status, upload_to_finished_seconds=round(stored, 2),
                analysis_max_nodes_1000_seconds=round(analysed, 2), root_total=result["tree"]["elements"][0]["total"],
                go_pprof_raw_seconds=round(go_s, 2), memory_parser="file",
                process_peak_rss_mb_before=round(rss_before), process_peak_rss_mb_after=round(peak_rss_mb(p.proc.pid)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--instances", type=int, default=10)
    ap.add_argument("--warm-runs", type=int, default=5)
    ap.add_argument("--skip-big", action="store_true", help="skip the 30 MiB profile case")
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
