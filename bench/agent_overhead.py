"""The Go agent's overhead on the demo: two demo processes with the same load, one without the
agent (-no-agent) and one with it, measured idle and while a CPU task profiles the second.
CPU % from /proc utime+stime over a window, RSS, goroutines (the demo's /stats).

Needs a running proftask (`make up`):  .venv/bin/python -m bench.agent_overhead [--load PATHS]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.integration.demo import build_demo

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def rss_mb(pid: int) -> float:
    return int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{pid}/status").read_text()).group(1)) / 1024


def measure(procs: dict, seconds: float) -> dict:
    before = {name: cpu_seconds(p.pid) for name, (p, _) in procs.items()}
    time.sleep(seconds)
    out = {}
    for name, (p, url) in procs.items():
        goroutines = json.load(urllib.request.urlopen(url + "/stats"))["goroutines"]
        out[name] = {"cpu_pct": round(100 * (cpu_seconds(p.pid) - before[name]) / seconds, 2),
                     "rss_mb": round(rss_mb(p.pid), 1), "goroutines": goroutines}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="http://127.0.0.1:8080")
    ap.add_argument("--load", default="", help="demo load paths, e.g. /alloc,/block,/mutex,/goroutines")
    ap.add_argument("--seconds", type=float, default=30)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        binary = build_demo(Path(tmp))
        procs = {}
        for name, flags in (("without-agent", ["-no-agent"]), ("with-agent", [])):
            p = subprocess.Popen([str(binary), "-server", args.server, "-service", "overhead", "-instance", name,
                                  "-state-dir", f"{tmp}/state-{name}", "-load", args.load, *flags],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            procs[name] = (p, p.stdout.readline().split()[-1])
        try:
            time.sleep(5)
            print(json.dumps({"case": "agent_idle", "load": args.load, **measure(procs, args.seconds)}))
            req = urllib.request.Request(args.server + "/api/v1/pprof/tasks",
                                         headers={"Content-Type": "application/json"},
                                         data=json.dumps({"serviceId": "overhead", "serviceInstanceIds": ["with-agent"],
                                                          "events": "CPU", "duration": 1}).encode())
            urllib.request.urlopen(req).read()
            time.sleep(2)
            print(json.dumps({"case": "agent_profiling_cpu", "load": args.load, **measure(procs, args.seconds)}))
        finally:
            for p, _ in procs.values():
                p.terminate()


if __name__ == "__main__":
    main()
