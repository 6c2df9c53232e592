"""A graceful stop (SIGTERM, as `make down` or a rolling restart sends) or a crash (SIGKILL) of
the process that stores profiles, while it folds and writes a burst of large ones, loses none and
counts none twice: after the restart every instance finishes and the merged tree sums every
profile once. Faust used to acknowledge the
batches in flight as their actors were cancelled and commit them on the way out, unwritten:
5 to 7 of 10 instances finished, in 14 runs out of 15. And with the actors acking out of order,
Faust committed past an offset still in flight (faust-streaming #606, proftask.faust_commits):
1 run of 5 ended with an instance never finished."""
from __future__ import annotations

import signal

import pytest

from tests.conformance.oracle import require_conformance
from tests.integration.harness import new_topic_prefix, wait_until
from tests.integration.profiles import analysis, create_task, progress, upload

INSTANCES = 10


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGKILL], ids=["SIGTERM", "SIGKILL"])
def test_a_stop_mid_burst_loses_no_profile(spawn, tmp_path, stop):
    large = require_conformance() / "large" / "pprof-large.cpu.pb.gz"
    body = large.read_bytes()
    data, prefix = tmp_path / "data", new_topic_prefix()
    p = spawn("all", prefix=prefix, data_dir=data)
    one = create_task(p, ["one"], events="CPU", duration=1)
    assert upload(p, one, "one", body).status == 202
    wait_until(lambda: progress(p, one)["successInstanceIds"] == ["one"], timeout=120)
    one_total = analysis(p, one)["tree"]["elements"][0]["total"]
    names = [f"pod-{i}" for i in range(INSTANCES)]
    task_id = create_task(p, names, events="CPU", duration=1)
    for name in names:
        assert upload(p, task_id, name, body).status == 202
    # stopped once the first profiles are stored and the rest are folding or being written
    wait_until(lambda: len(progress(p, task_id)["successInstanceIds"]) >= 1, timeout=120, interval=0.02)
    assert len(progress(p, task_id)["successInstanceIds"]) < INSTANCES, "the stop came too late to test"
    p.proc.send_signal(stop)
    assert p.proc.wait(60) == (0 if stop == signal.SIGTERM else -signal.SIGKILL)
    again = spawn("all", prefix=prefix, data_dir=data)
    wait_until(lambda: len(progress(again, task_id)["successInstanceIds"]) == INSTANCES, timeout=120,
               interval=0.2, message="every instance finishes after the restart")
    assert analysis(again, task_id)["tree"]["elements"][0]["total"] == INSTANCES * one_total
