"""Hostile but valid profiles (docs/design.md §3 limits): each is accepted and analysed exactly, or
refused with a clear error; nothing else already accepted is disturbed."""
import gzip
import random


from proftask.pprof.encode import encode_profile
from proftask.pprof.v1 import profile_pb2
from tests.integration.harness import wait_until
from tests.integration.profiles import analysis, create_task, logs_of, upload, wait_finished



def test_a_stack_of_10000_frames(stack):
    frames = [(f"main.level{i}", i + 1, False) for i in range(10_000)]
    body = encode_profile(["samples/count"], "samples/count", "", 0, [(frames, [3]), (frames[:10], [2])])
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1)  # samples/count profiles
    assert upload(stack, task_id, "pod-1", body).status == 202
    wait_finished(stack, task_id, ["pod-1"], timeout=180)
    elements = analysis(stack, task_id)["tree"]["elements"]
    assert len(elements) == 10_001 and elements[0]["total"] == 5
    assert elements[-1]["codeSignature"] == "main.level9999" and elements[-1]["self"] == 3
    assert elements[10]["codeSignature"] == "main.level9" and elements[10]["self"] == 2


def test_a_million_samples(stack):
    p = profile_pb2.Profile()
    p.string_table.extend([b"", b"samples", b"count"] + [f"main.f{i}".encode() for i in range(100)])
    p.sample_type.add(type=1, unit=2)
    for i in range(100):
        p.function.add(id=i + 1, name=3 + i, system_name=3 + i)
        p.location.add(id=i + 1).line.add(function_id=i + 1, line=1)
    rng = random.Random(7)
    expected_total = 0
    for _ in range(1_000_000):
        v = rng.randint(1, 9)
        expected_total += v
        p.sample.add(location_id=[rng.randint(1, 100), rng.randint(1, 100)], value=[v])
    body = gzip.compress(p.SerializeToString(), 1)
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1)  # samples/count profiles
    assert upload(stack, task_id, "pod-1", body).status == 202
    wait_finished(stack, task_id, ["pod-1"], timeout=300)
    result = analysis(stack, task_id, maxNodes=200)
    assert result["tree"]["elements"][0]["total"] == expected_total
    assert len(result["tree"]["elements"]) == 200 and result["truncated"] == 100 * 100 + 100 + 1 - 200


def test_names_of_100000_characters(stack):
    long_name = "main." + "x" * 100_000
    body = encode_profile(["samples/count"], "samples/count", "", 0,
                          [([("main.main", 1, False), (long_name, 2, False)], [4])])
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1)  # samples/count profiles
    assert upload(stack, task_id, "pod-1", body).status == 202
    wait_finished(stack, task_id, ["pod-1"])
    names = [e["codeSignature"] for e in analysis(stack, task_id)["tree"]["elements"]]
    assert names == ["root", "main.main", long_name]


def test_a_profile_inflating_past_the_limit_is_refused_and_logged(stack):
    # valid protobuf all along, but 300 MiB once inflated (the decompressed limit is 256 MiB)
    p = profile_pb2.Profile()
    p.string_table.extend([b"", b"samples", b"count", b"x" * (300 * 1024 * 1024)])
    body = gzip.compress(p.SerializeToString(), 9)
    assert len(body) < 2 * 1024 * 1024
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1)  # samples/count profiles
    r = upload(stack, task_id, "pod-1", body)
    assert r.status == 413 and "decompressed limit" in r.json()["errorReason"]
    (log,) = wait_until(lambda: logs_of(stack, task_id, "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR") or None)
    assert "decompressed limit" in log["message"]


def test_values_summing_past_64_bits_are_refused_with_the_reason(stack):
    big = 2**63 - 1
    body = encode_profile(["samples/count"], "samples/count", "", 0,
                          [([("main.f", 1, False)], [big]), ([("main.f", 1, False)], [big]),
                           ([("main.f", 1, False)], [5])])
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1)  # samples/count profiles
    r = upload(stack, task_id, "pod-1", body)
    assert r.status == 400 and "18446744073709551619" in r.json()["errorReason"], r
    (log,) = wait_until(lambda: logs_of(stack, task_id, "EXECUTION_TASK_ERROR") or None)
    assert "beyond the 64-bit range" in log["message"]
