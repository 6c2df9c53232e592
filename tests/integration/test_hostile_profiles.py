"""Hostile but valid profiles (docs/design.md §3 limits): each is accepted and analysed exactly, or
refused with a clear error; nothing else already accepted is disturbed."""
import asyncio
import concurrent.futures
import gzip
import random

from aiokafka import AIOKafkaProducer

from proftask import events
from proftask.events.v1 import events_pb2 as pb
from proftask.kafka.topics import task_key
from proftask.pprof.encode import encode_profile
from proftask.pprof.v1 import profile_pb2
from tests.integration.harness import wait_until
from tests.integration.profiles import analysis, create_task, logs_of, progress, upload, wait_finished
from tests.unit.test_stack_frames import deep



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


def test_refused_uploads_inflating_to_hundreds_of_megabytes_leave_no_memory_held(stack):
    """Each refused at once (413 past the decompressed limit, 400 for bytes inflating under it
    that are no profile), and what they inflated to is given back with the answer: a kept error
    held it (its traceback's frames), 24 such uploads of 200 KB each ~5 GB for minutes."""
    def rss_mb() -> int:
        with open(f"/proc/{stack.proc.pid}/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))

    past_limit = gzip.compress(b"\0" * (260 << 20), 1)                       # 256 MiB is the limit
    no_profile = gzip.compress(profile_pb2.Profile(string_table=[b"a" * (200 << 20)]).SerializeToString()
                               + b"\x0f", 1)  # a tag of wire type 7 at the end
    bad_check = bytearray(gzip.compress(b"x"))
    bad_check[-8] ^= 0xFF  # a second gzip member whose CRC is wrong, after 200 MB that inflate well
    corrupt = gzip.compress(b"\0" * (200 << 20), 1) + bytes(bad_check)
    kinds = (past_limit, no_profile, corrupt)
    task_id = create_task(stack, [f"pod-{i}" for i in range(18)], events="CPU", duration=1)
    before = rss_mb()
    with concurrent.futures.ThreadPoolExecutor(18) as agents:
        statuses = list(agents.map(lambda i: upload(stack, task_id, f"pod-{i}", kinds[i % 3]).status, range(18)))
    assert statuses == [413, 400, 400] * 6
    grown = rss_mb() - before
    assert grown < 1024, f"{grown} MB held after 18 refused uploads"  # 6 x 260 + 12 x 200 MB on the old code
    wait_until(lambda: len(progress(stack, task_id)["errorInstanceIds"]) == 18)


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


def test_instances_whose_values_sum_past_64_bits_together_are_refused_not_wrapped(stack):
    """Each profile fits and is stored; their merge would wrap past 2^63 - 1 to a negative total,
    so every answer summing them (tree, cut tree, top, pprof export, diff, GraphQL) is a 422
    naming the sum, and each instance alone is shown exactly."""
    big = encode_profile(["cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 10_000_000,
                         [([("main.main", 0, False), ("main.hot", 0, False)], [2**62])])
    task_id = create_task(stack, ["pod-1", "pod-2"], events="CPU", duration=1)
    for instance in ("pod-1", "pod-2"):
        assert upload(stack, task_id, instance, big).status == 202
    wait_finished(stack, task_id, ["pod-1", "pod-2"])
    assert analysis(stack, task_id, instanceIds="pod-2")["tree"]["elements"][0]["total"] == 2**62
    base = f"/api/v1/pprof/tasks/{task_id}"
    for path in (f"{base}/analysis", f"{base}/analysis?maxNodes=2&instanceStats=true", f"{base}/top",
                 f"{base}/export?format=pprof", f"{base}/export?format=folded",
                 f"/api/v1/pprof/diff?baseTaskId={task_id}&baseInstanceIds=pod-1&compareTaskId={task_id}"):
        r = stack.get(path)
        assert r.status == 422 and r.json()["code"] == "VALUES_OUT_OF_RANGE", (path, r)
        assert "sum to 9223372036854775808" in r.json()["errorReason"], path
    query = "query ($r: PprofAnalyzationRequest!) { queryPprofAnalyze(request: $r) { tree { elements { total } } } }"
    answer = stack.post("/graphql", {"query": query, "variables": {"r": {"taskId": task_id, "instanceIds": []}}}).json()
    assert "sum to 9223372036854775808" in answer["errors"][0]["message"], answer
    # two sample types of one name: the tree sums the first, a pprof export sums both
    twice = encode_profile(["cpu/nanoseconds", "cpu/nanoseconds"], "cpu/nanoseconds", "cpu/nanoseconds", 1,
                           [([("main.main", 0, False)], [1, 2**62])])
    twin_task = create_task(stack, ["pod-1", "pod-2"], events="CPU", duration=1)
    for instance in ("pod-1", "pod-2"):
        assert upload(stack, twin_task, instance, twice).status == 202
    wait_finished(stack, twin_task, ["pod-1", "pod-2"])
    assert analysis(stack, twin_task)["tree"]["elements"][0]["total"] == 2
    r = stack.get(f"/api/v1/pprof/tasks/{twin_task}/export?format=pprof")
    assert r.status == 422 and "sum to 9223372036854775808" in r.json()["errorReason"], r
    assert stack.get("/readyz").status == 200


async def _produce(bootstrap: str, topic: str, key: bytes, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


def test_a_40_kb_profile_of_25_million_frames_is_refused_and_the_task_goes_on(stack):
    # one location of 5,000 inlined lines, 5,000 times in one sample: its fold ran out of memory
    hostile = gzip.compress(deep(5000, 5000).SerializeToString())
    task_id = create_task(stack, ["pod-1", "pod-2", "pod-3"], events="CPU", duration=1)  # samples/count profiles
    r = upload(stack, task_id, "pod-1", hostile)
    assert r.status == 400 and r.json()["code"] == "INVALID_PROFILE", r
    assert "25000000 frames" in r.json()["errorReason"] and "4194304" in r.json()["errorReason"]
    # the same profile already on Kafka (taken by an older intake): dead-lettered, not retried forever
    uploaded = events.new_event("default", pb.ProfileUploaded(task_id=task_id, instance_id="pod-3",
                                                              profile_id="hostile-on-kafka", content=hostile,
                                                              size=len(hostile)))
    asyncio.run(_produce(stack.broker.bootstrap, stack.topic_prefix + "profiles", task_key("default", task_id),
                         uploaded.SerializeToString()))
    good = encode_profile(["samples/count"], "samples/count", "", 0, [([("main.main", 1, False)], [4])])
    assert upload(stack, task_id, "pod-2", good).status == 202
    done = wait_until(lambda: (lambda p: p if sorted(p["errorInstanceIds"]) == ["pod-1", "pod-3"]
                               and p["successInstanceIds"] == ["pod-2"] else None)(progress(stack, task_id)),
                      timeout=60, message="pod-2 finished, pod-1 and pod-3 failed")
    errors = {e["instanceId"]: e["message"] for e in done["logs"] if e["operationType"] == "EXECUTION_TASK_ERROR"}
    assert "invalid profile: its stacks hold 25000000 frames" in errors["pod-1"]
    assert "could not be processed: invalid profile: its stacks hold 25000000 frames" in errors["pod-3"]
    assert analysis(stack, task_id)["tree"]["elements"][0]["total"] == 4


def test_an_upload_of_9_million_empty_samples_is_refused_before_it_is_decoded(stack):
    # 16 MB once inflated: decoding it took ~811 MB in the intake's Go check, then 1.4 GB in upb
    header = profile_pb2.Profile(string_table=[b"", b"samples", b"count"])
    header.sample_type.add(type=1, unit=2)
    hostile = gzip.compress(header.SerializeToString() + b"\x12\x00" * 9_000_000)
    task_id = create_task(stack, ["pod-1"], events="CPU", duration=1)
    r = upload(stack, task_id, "pod-1", hostile)
    assert r.status == 400 and r.json()["code"] == "INVALID_PROFILE", r
    assert "too many entries: more than 8388608 samples" in r.json()["errorReason"]
