"""Uploads: limits, bad bytes, idempotency, replacement, the edge cases of the corpus."""
import gzip
import os
import pathlib

import pytest

from tests.conformance.oracle import oracle_tree, require_conformance
from tests.integration.harness import wait_until
from tests.integration.profiles import (analysis, as_oracle_shape, create_task, logs_of, progress, upload,
                                        wait_finished)



def corpus(name: str) -> pathlib.Path:
    return require_conformance() / name


def wait_log(stack, task_id, operation_type, n=1):
    return wait_until(lambda: (lambda ls: ls if len(ls) >= n else None)(logs_of(stack, task_id, operation_type)),
                      message=f"{n} {operation_type}")


def test_over_pprof_max_size_is_413_with_the_log(stack):
    task_id = create_task(stack, ["i-1"])
    r = upload(stack, task_id, "i-1", os.urandom(31 * 1024 * 1024))
    assert r.status == 413 and r.json()["code"] == "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR", r
    (log,) = wait_log(stack, task_id, "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR")
    assert "pprofMaxSize" in log["message"] and log["instanceId"] == "i-1"
    assert progress(stack, task_id)["errorInstanceIds"] == ["i-1"]
    assert stack.get("/readyz").status == 200


def test_gzip_bomb_is_413_with_the_log(stack):
    bomb = gzip.compress(bytes(300 * 1024 * 1024), 9)  # ~300 KB that inflates to 300 MiB
    assert len(bomb) < 1024 * 1024
    task_id = create_task(stack, ["i-1"])
    r = upload(stack, task_id, "i-1", bomb)
    assert r.status == 413, r
    (log,) = wait_log(stack, task_id, "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR")
    assert "decompressed limit" in log["message"]


@pytest.mark.parametrize("kind", ["truncated gzip", "random bytes", "empty body", "gzip of garbage"])
def test_invalid_bytes_are_400_with_an_execution_task_error(stack, kind):
    real = corpus("go/pprof-sample.cpu.pb.gz").read_bytes()
    body = {"truncated gzip": real[: len(real) // 2], "random bytes": os.urandom(4096),
            "empty body": b"", "gzip of garbage": gzip.compress(os.urandom(4096))}[kind]
    task_id = create_task(stack, ["i-1"])
    r = upload(stack, task_id, "i-1", body)
    assert r.status == 400 and r.json()["code"] == "INVALID_PROFILE", r
    (log,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    assert log["message"].startswith("invalid profile:")
    assert progress(stack, task_id)["successInstanceIds"] == []


def test_a_refused_upload_sent_again_is_logged_once(stack):
    """An agent retrying a refused upload (the same Idempotency-Key, or the same bytes) adds no
    second log line; another upload refused is another line."""
    task_id = create_task(stack, ["i-1"], events="CPU", duration=1)
    garbage, other = os.urandom(4096), os.urandom(4096)
    assert [upload(stack, task_id, "i-1", garbage, key="k-1").status for _ in range(3)] == [400] * 3
    assert [upload(stack, task_id, "i-1", os.urandom(31 * 1024 * 1024), key="k-2").status
            for _ in range(2)] == [413] * 2
    assert [upload(stack, task_id, "i-1", other).status for _ in range(2)] == [400] * 2  # no key: its bytes
    assert upload(stack, task_id, "i-1", os.urandom(4096)).status == 400  # another upload
    # the instance's logs are read in order: once its profile is finished, every refusal is in
    assert upload(stack, task_id, "i-1", corpus("go/pprof-sample.cpu.pb.gz")).status == 202
    wait_finished(stack, task_id, ["i-1"])
    assert len(logs_of(stack, task_id, "EXECUTION_TASK_ERROR")) == 3
    assert len(logs_of(stack, task_id, "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR")) == 1


def test_the_same_upload_three_times_counts_once(stack):
    path = corpus("go/pprof-sample.cpu.pb.gz")
    task_id = create_task(stack, ["i-1"], events="CPU", duration=1)
    replies = [upload(stack, task_id, "i-1", path) for _ in range(3)]
    assert {r.status for r in replies} == {202}
    assert len({r.json()["profileId"] for r in replies}) == 1
    wait_finished(stack, task_id, ["i-1"])
    assert upload(stack, task_id, "i-1", path).json()["duplicate"] is True  # known by now
    assert as_oracle_shape(analysis(stack, task_id)) == oracle_tree([path])
    assert len(logs_of(stack, task_id, "EXECUTION_FINISHED")) == 1


def test_idempotency_key_counts_a_retried_upload_once(stack):
    task_id = create_task(stack, ["i-1"], events="CPU", duration=1)
    first = upload(stack, task_id, "i-1", corpus("go/pprof-sample.cpu.pb.gz"), key="attempt-1")
    # a retry under the same key is the same upload, even if the agent re-encoded the bytes
    again = upload(stack, task_id, "i-1", gzip.compress(gzip.decompress(corpus("go/pprof-sample.cpu.pb.gz")
                                                                        .read_bytes()), 1), key="attempt-1")
    assert first.json()["profileId"] == again.json()["profileId"]
    wait_finished(stack, task_id, ["i-1"])
    assert as_oracle_shape(analysis(stack, task_id)) == oracle_tree([corpus("go/pprof-sample.cpu.pb.gz")])


def test_a_new_upload_replaces_the_earlier_one(stack):
    task_id = create_task(stack, ["i-1"], events="CPU", duration=1)
    assert upload(stack, task_id, "i-1", corpus("go/parca-fib.pb.gz")).status == 202
    wait_finished(stack, task_id, ["i-1"])
    assert upload(stack, task_id, "i-1", corpus("go/pprof-sample.cpu.pb.gz")).status == 202
    wait_log(stack, task_id, "EXECUTION_FINISHED", n=2)
    assert as_oracle_shape(analysis(stack, task_id)) == oracle_tree([corpus("go/pprof-sample.cpu.pb.gz")])


def test_unknown_task_and_foreign_instance(stack):
    path = corpus("go/pprof-sample.cpu.pb.gz")
    assert upload(stack, "no-such-task", "i-1", path).status == 404
    task_id = create_task(stack, ["i-1"])
    assert upload(stack, task_id, "stranger", path).status == 409
    assert stack.post(f"/api/v1/pprof/agent/profiles?taskId={task_id}", raw=b"x").status == 400  # no instance


@pytest.mark.parametrize("name,events", [
    ("edge/pyroscope-heap.uncompressed.pb", "HEAP"), ("edge/pyroscope-profile.uncompressed", "CPU"),
    ("edge/parca-empty-sample-type.pb.gz", "HEAP"), ("edge/parca-stripped-cpu.pprof", "CPU"),
    ("edge/pyroscope-no_addr_no_line.pb.gz", "CPU"), ("edge/pprof-go.nomappings.crash.pb.gz", "HEAP")])
def test_edge_files_are_accepted_and_exact(stack, name, events):
    path = corpus(name)
    task_id = create_task(stack, ["i-1"], events=events, duration=1 if events == "CPU" else None)
    assert upload(stack, task_id, "i-1", path).status == 202
    wait_finished(stack, task_id, ["i-1"])
    assert as_oracle_shape(analysis(stack, task_id)) == oracle_tree([path])


def test_stripped_profile_frames_are_addresses(stack):
    task_id = create_task(stack, ["i-1"], events="CPU", duration=1)
    upload(stack, task_id, "i-1", corpus("edge/parca-stripped-cpu.pprof"))
    wait_finished(stack, task_id, ["i-1"])
    names = {e["codeSignature"] for e in analysis(stack, task_id)["tree"]["elements"][1:]}
    assert names and all(n.startswith("0x") for n in names)


def test_function_id_zero_is_refused_naming_the_problem(stack):
    task_id = create_task(stack, ["i-1"])
    r = upload(stack, task_id, "i-1", corpus("edge/pyroscope-dotnet-function-id-0.pb.gz"))
    assert r.status == 400 and "reserved ID=0" in r.json()["errorReason"], r
    (log,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    assert "reserved ID=0" in log["message"]


def test_invalid_utf8_names_are_replaced(stack):
    task_id = create_task(stack, ["i-1"], events="CPU", duration=1)
    assert upload(stack, task_id, "i-1", corpus("edge/pyroscope-invalid_utf8.pb.gz")).status == 202
    wait_finished(stack, task_id, ["i-1"])
    names = [e["codeSignature"] for e in analysis(stack, task_id)["tree"]["elements"]]
    assert any("\ufffd" in n for n in names)


@pytest.mark.parametrize("events,name", [("HEAP", "go/pprof-sample.cpu.pb.gz"), ("CPU", "go/pyroscope-heap.pb.gz"),
                                         ("GOROUTINE", "go/pyroscope-req_3.pprof")])
def test_a_profile_of_another_event_is_refused_and_logged(stack, events, name):
    """Issue 12 item 8: a HEAP task took a CPU profile and showed a cpu/nanoseconds graph."""
    task_id = create_task(stack, ["i-1", "i-2"], events=events, duration=1 if events == "CPU" else None)
    r = upload(stack, task_id, "i-1", corpus(name))
    assert r.status == 400 and r.json()["code"] == "PROFILE_EVENT_MISMATCH", r
    reason = r.json()["errorReason"]
    assert reason.startswith(f"the profile does not fit a {events} task: it carries sample types "), reason
    (log,) = wait_log(stack, task_id, "EXECUTION_TASK_ERROR")
    assert log["instanceId"] == "i-1" and log["message"] == reason
    # what was received and what the event expects, by name
    received = {"go/pprof-sample.cpu.pb.gz": "samples/count, cpu/nanoseconds",
                "go/pyroscope-heap.pb.gz": "alloc_objects/count, alloc_space/bytes, inuse_objects/count, inuse_space/bytes",
                "go/pyroscope-req_3.pprof": "contentions/count, delay/nanoseconds"}[name]
    expected = {"HEAP": "inuse_space/bytes", "CPU": "cpu/nanoseconds", "GOROUTINE": "goroutine/count"}[events]
    assert received in reason and expected in reason.split(";")[1], reason
    assert progress(stack, task_id)["errorInstanceIds"] == ["i-1"]
    # the right kind for the other instance is taken: the task shows only what fits
    fitting = {"HEAP": "go/pyroscope-heap.pb.gz", "CPU": "go/pprof-sample.cpu.pb.gz",
               "GOROUTINE": "go/pyroscope-req_2.pprof"}[events]
    assert upload(stack, task_id, "i-2", corpus(fitting)).status == 202
    wait_finished(stack, task_id, ["i-2"])
    assert as_oracle_shape(analysis(stack, task_id)) == oracle_tree([corpus(fitting)])


def test_file_mode_spools_and_removes_its_temporary_files(spawn, tmp_path):
    spool = tmp_path / "tmp"
    spool.mkdir()
    p = spawn("all", SW_RECEIVER_PPROF_MEMORY_PARSER_ENABLED="false", PROFTASK_SPOOL_DIR=str(spool))
    task_id = create_task(p, ["i-1", "i-2"])
    assert upload(p, task_id, "i-1", corpus("go/pyroscope-heap.pb.gz")).status == 202
    assert upload(p, task_id, "i-2", os.urandom(1000)).status == 400
    wait_finished(p, task_id, ["i-1"])
    assert as_oracle_shape(analysis(p, task_id)) == oracle_tree([corpus("go/pyroscope-heap.pb.gz")])
    assert [f.name for f in spool.iterdir() if f.name.startswith("proftask-upload-")] == []
