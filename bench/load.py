"""Load: many agents long-polling one task_svc, and uploads at a sustained rate.

    .venv/bin/python -m bench.load agents [--agents 5000]
    .venv/bin/python -m bench.load uploads [--rates 5,10,20] [--duration 300]

`agents`: N simulated agents (aiohttp, one process) long-poll `/agent/commands` (wait=20, as the
Go agent does) against one `proftask serve task`; after they have all polled, a CPU task is
created for every one of them (five services of 1,000 instances, the per-task limit). Prints
the delivery latency (task creation → the agent has its command) p50/p99/max, the idle
long-poll round trips, and errors.

`uploads`: one `proftask serve all`; for each rate, uploads of a real Go profile at that rate for
`duration` seconds, each to a new instance. Prints, per rate, accepted vs stored (loss), the
ingest lag (202 → EXECUTION_FINISHED) p50/p99/max, and whether the rate held (zero loss,
p99 lag < 5 s); stops at the first rate that does not.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import pathlib
import tempfile
import time
import uuid

import aiohttp

from tests.conformance.oracle import require_conformance
from tests.integration.harness import KafkaBroker, Proftask, new_topic_prefix, wait_until
from tests.integration.profiles import create_task, logs_of

PROFILE = "go/pprof-sample.cpu.pb.gz"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def emit(case: str, **figures) -> None:
    print(json.dumps({"case": case, **figures}), flush=True)


async def run_agents(stack: Proftask, n_agents: int, services: int) -> None:
    per_service = n_agents // services
    agents = [(f"load-{s}", f"agent-{s}-{i}") for s in range(services) for i in range(per_service)]
    received: dict[str, float] = {}
    idle_round_trips: list[float] = []
    errors: list[str] = []
    polled = asyncio.Event()
    first_polls = 0
    stop = asyncio.Event()

    async def agent(session: aiohttp.ClientSession, service: str, instance: str) -> None:
        nonlocal first_polls
        last = 0
        first = True
        while not stop.is_set():
            url = (f"{stack.base}/api/v1/pprof/agent/commands?service={service}&serviceInstance={instance}"
                   f"&lastCommandTime={last}&wait=20")
            started = time.monotonic()
            try:
                request = session.get(url, timeout=aiohttp.ClientTimeout(total=60))
                if first:  # the long poll is on its way to the server
                    first_polls += 1
                    if first_polls == len(agents):
                        polled.set()
                    first = False
                async with request as r:
                    body = await r.json()
                    if r.status != 200:
                        errors.append(f"{r.status} {body.get('code')}")
                        await asyncio.sleep(1)
                        continue
            except Exception as e:  # noqa: BLE001 - every failure is counted
                errors.append(type(e).__name__)
                await asyncio.sleep(1)
                continue
            if body["commands"]:
                args = {a["key"]: a["value"] for a in body["commands"][0]["args"]}
                last = int(args["CreateTime"])
                received[instance] = time.time() * 1000 - last
            else:
                idle_round_trips.append(time.monotonic() - started)

    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = [asyncio.create_task(agent(session, s, i)) for s, i in agents]
        await asyncio.wait_for(polled.wait(), 120)
        await asyncio.sleep(3)  # let the first polls reach the server
        created = time.monotonic()
        for s in range(services):
            instances = [i for svc, i in agents if svc == f"load-{s}"]
            r = await asyncio.to_thread(stack.post, "/api/v1/pprof/tasks", {
                "serviceId": f"load-{s}", "serviceInstanceIds": instances, "events": "CPU", "duration": 1})
            assert r.status == 201, r
        deadline = time.monotonic() + 120
        while len(received) < len(agents) and time.monotonic() < deadline:
            await asyncio.sleep(0.2)
        all_delivered_s = time.monotonic() - created
        await asyncio.sleep(25)  # one more idle long-poll cycle for everyone
        stop.set()
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    latencies = list(received.values())
    emit("agents-long-poll", agents=len(agents), delivered=len(received), errors=len(errors),
         error_kinds=sorted(set(errors))[:5], delivery_ms_p50=round(pct(latencies, 0.5)),
         delivery_ms_p99=round(pct(latencies, 0.99)), delivery_ms_max=round(max(latencies, default=0)),
         all_delivered_s=round(all_delivered_s, 2), idle_polls=len(idle_round_trips),
         idle_poll_s_p50=round(pct(idle_round_trips, 0.5), 2), idle_poll_s_p99=round(pct(idle_round_trips, 0.99), 2))


def run_uploads(stack: Proftask, rates: list[float], duration: float, batch: int = 1000) -> None:
    body = (require_conformance() / PROFILE).read_bytes()

    async def at_rate(rate: float) -> dict:
        n = int(rate * duration)
        service = f"up-{uuid.uuid4().hex[:6]}"
        tasks = []
        for start in range(0, n, batch):  # tasks of at most 1,000 instances
            pods = [f"pod-{i}" for i in range(start, min(n, start + batch))]
            tasks.append((create_task(stack, pods, events="CPU", duration=1,
                                      service=f"{service}-{start}"), pods))
        accepted: dict[tuple[str, str], float] = {}
        failures = 0
        t0 = time.monotonic()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=64)) as session:
            async def one(task_id: str, pod: str) -> None:
                nonlocal failures
                url = f"{stack.base}/api/v1/pprof/agent/profiles?taskId={task_id}&serviceInstance={pod}"
                try:
                    async with session.post(url, data=body) as r:
                        if r.status == 202:
                            accepted[(task_id, pod)] = time.time() * 1000
                        else:
                            failures += 1
                except Exception:  # noqa: BLE001
                    failures += 1

            sends = []
            i = 0
            for task_id, pods in tasks:
                for pod in pods:
                    delay = t0 + i / rate - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    sends.append(asyncio.create_task(one(task_id, pod)))
                    i += 1
            await asyncio.gather(*sends)
        sent_s = time.monotonic() - t0

        def stored():
            return {(t, entry["instanceId"]): entry["operationTime"] for t, _ in tasks
                    for entry in logs_of(stack, t, "EXECUTION_FINISHED")}
        try:
            done = wait_until(lambda: (lambda s: s if len(s) >= len(accepted) else None)(stored()), timeout=300,
                              interval=1)
        except AssertionError:
            done = stored()
        lags = [(done[k] - accepted[k]) / 1000 for k in accepted if k in done]
        held = failures == 0 and len(done) == len(accepted) == n and pct(lags, 0.99) < 5
        return dict(rate_per_s=rate, duration_s=duration, sent=n, sent_in_s=round(sent_s, 1), accepted=len(accepted),
                    refused=failures, stored=len(done), lost=len(accepted) - len(done),
                    lag_s_p50=round(pct(lags, 0.5), 2), lag_s_p99=round(pct(lags, 0.99), 2),
                    lag_s_max=round(max(lags, default=0), 2), held=held)

    for rate in rates:
        result = asyncio.run(at_rate(rate))
        emit("uploads-sustained", profile=PROFILE, **result)
        if not result["held"]:
            break


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="which", required=True)
    a = sub.add_parser("agents")
    a.add_argument("--agents", type=int, default=5000)
    u = sub.add_parser("uploads")
    u.add_argument("--rates", default="5,10,20,40")
    u.add_argument("--duration", type=float, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = pathlib.Path(tmp_name)
        broker = KafkaBroker(tmp / "kafka")
        broker.start()
        out = pathlib.Path(__file__).resolve().parents[1] / "test-output"
        out.mkdir(exist_ok=True)
        stack = Proftask("task" if args.which == "agents" else "all", broker, tmp / "proftask", new_topic_prefix(), out)
        try:
            stack.start()
            if args.which == "agents":
                asyncio.run(run_agents(stack, args.agents, services=max(1, args.agents // 1000)))
            else:
                run_uploads(stack, [float(r) for r in args.rates.split(",")], args.duration)
        finally:
            stack.stop()
            broker.stop()


if __name__ == "__main__":
    main()
