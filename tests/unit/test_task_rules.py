import pytest

from proftask.core.tasks import EventType, TaskArgumentError, conflicts, parse_task_request


def req(**kw):
    body = {"serviceId": "checkout", "serviceInstanceIds": ["c-1", "c-2"], "events": "CPU", "duration": 1}
    body.update(kw)
    return body


def reason(body):
    with pytest.raises(TaskArgumentError) as e:
        parse_task_request(body)
    return str(e.value)


def test_valid_cpu_task():
    spec = parse_task_request(req())
    assert spec.service_id == "checkout"
    assert spec.service_instance_ids == ("c-1", "c-2")
    assert spec.events is EventType.CPU and spec.duration == 1 and spec.dump_period == 0


@pytest.mark.parametrize("spelling", ["cpu", "Cpu", " CPU "])
def test_events_case_insensitive(spelling):
    assert parse_task_request(req(events=spelling)).events is EventType.CPU


SERVICE_RULE = "serviceId must be a non-blank string of at most 512 characters, got "
EVENTS_RULE = "events must be one of CPU, HEAP, BLOCK, MUTEX, GOROUTINE, THREADCREATE, ALLOCS, got "
CPU_DURATION_RULE = "duration must be a whole number of minutes from 1 to 15 for CPU tasks, got "
BLOCK_RULE = ("dumpPeriod must be a whole number from 1 to 2147483647 for BLOCK tasks (the block profile rate: "
              "one sample per that many nanoseconds spent blocked), got ")
MUTEX_RULE = ("dumpPeriod must be a whole number from 1 to 2147483647 for MUTEX tasks (the mutex profile "
              "fraction: one in that many contention events sampled), got ")
INSTANCES_RULE = "serviceInstanceIds must be a non-empty list of instance ids, got "


@pytest.mark.parametrize("body,expected", [
    (req(serviceId=None), SERVICE_RULE + "null"),
    (req(serviceId=""), SERVICE_RULE + '""'),
    (req(serviceId="  "), SERVICE_RULE + '"  "'),
    (req(serviceId=7), SERVICE_RULE + "7"),
    (req(serviceId="s" * 513), SERVICE_RULE + '"' + "s" * 100 + '…" (513 characters)'),
    (req(events=None), EVENTS_RULE + "null"),
    (req(events=""), EVENTS_RULE + '""'),
    (req(events="WALLCLOCK"), EVENTS_RULE + '"WALLCLOCK"'),
    (req(events=3), EVENTS_RULE + "3"),
    (req(duration=0), CPU_DURATION_RULE + "0"),
    (req(duration=-3), CPU_DURATION_RULE + "-3"),
    (req(duration=None), CPU_DURATION_RULE + "null"),
    (req(duration=16), CPU_DURATION_RULE + "16"),
    (req(duration=1.5), CPU_DURATION_RULE + "1.5"),
    (req(duration="1"), CPU_DURATION_RULE + '"1"'),
    (req(duration=True), CPU_DURATION_RULE + "true"),
    (req(events="MUTEX", duration=0, dumpPeriod=1),
     "duration must be a whole number of minutes from 1 to 15 for MUTEX tasks, got 0"),
    (req(events="BLOCK", duration=1), BLOCK_RULE + "null"),
    (req(events="MUTEX", duration=1), MUTEX_RULE + "null"),
    (req(events="MUTEX", duration=1, dumpPeriod=0), MUTEX_RULE + "0"),
    (req(events="BLOCK", duration=1, dumpPeriod=-5), BLOCK_RULE + "-5"),
    (req(events="BLOCK", duration=1, dumpPeriod=2**31), BLOCK_RULE + "2147483648"),
    (req(events="MUTEX", duration=1, dumpPeriod=2**63), MUTEX_RULE + "9223372036854775808"),
    (req(events="MUTEX", duration=1, dumpPeriod=0.5), MUTEX_RULE + "0.5"),
    (req(events="HEAP", duration=1.5), "duration must be an integer or null (HEAP tasks ignore it), got 1.5"),
    (req(events="GOROUTINE", dumpPeriod="x"),
     'dumpPeriod must be an integer or null (GOROUTINE tasks ignore it), got "x"'),
    (req(serviceInstanceIds=[]), INSTANCES_RULE + "[]"),
    (req(serviceInstanceIds=None), INSTANCES_RULE + "null"),
    (req(serviceInstanceIds="c-1"), INSTANCES_RULE + '"c-1"'),
    (req(serviceInstanceIds=[f"i-{n}" for n in range(1001)]),
     "serviceInstanceIds must hold at most 1000 instance ids, got 1001"),
    (req(serviceInstanceIds=["a", 1]), "serviceInstanceIds[1] must be a non-blank string of at most 512 characters, got 1"),
    (req(serviceInstanceIds=["a", " "]), 'serviceInstanceIds[1] must be a non-blank string of at most 512 characters, got " "'),
    (req(serviceInstanceIds=["i" * 600]), "serviceInstanceIds[0] must be a non-blank string of at most 512 characters, "
                                          'got "' + "i" * 100 + '…" (600 characters)'),
    ([1, 2], "the request body must be a JSON object, got [1, 2]"),
    ("x" * 300, 'the request body must be a JSON object, got "' + "x" * 100 + '…" (300 characters)'),
])
def test_every_message_names_the_field_the_rule_and_the_value(body, expected):
    assert reason(body) == expected


def test_checks_run_in_skywalking_order():
    # service is checked before events, events before duration, duration before instances
    assert reason({"events": "CPU"}).startswith("serviceId ")
    assert reason({"serviceId": "s", "duration": 99}).startswith("events ")
    assert reason({"serviceId": "s", "events": "CPU", "duration": 99}).startswith("duration ")
    assert reason({"serviceId": "s", "events": "MUTEX", "duration": 1}).startswith("dumpPeriod ")


def test_bounds_are_accepted():
    assert parse_task_request(req(duration=15)).duration == 15
    assert parse_task_request(req(events="MUTEX", duration=1, dumpPeriod=2**31 - 1)).dump_period == 2**31 - 1


@pytest.mark.parametrize("event", ["HEAP", "ALLOCS", "GOROUTINE", "THREADCREATE"])
def test_snapshot_events_ignore_duration_and_dump_period(event):
    spec = parse_task_request(req(events=event, duration=99, dumpPeriod=-1))
    assert (spec.duration, spec.dump_period) == (0, 0)


def test_block_keeps_dump_period():
    spec = parse_task_request(req(events="block", duration=2, dumpPeriod=1000))
    assert (spec.events, spec.duration, spec.dump_period) == (EventType.BLOCK, 2, 1000)


def test_duplicate_instances_collapse_in_order():
    assert parse_task_request(req(serviceInstanceIds=["b", "a", "b"])).service_instance_ids == ("b", "a")


def test_unknown_fields_are_ignored():
    assert parse_task_request(req(color="blue")).service_id == "checkout"


def test_conflict_rule_same_event_while_running():
    t0 = 1_000_000
    assert conflicts(EventType.CPU, t0, 1, EventType.CPU, t0 + 60_000)  # boundary still running
    assert not conflicts(EventType.CPU, t0, 1, EventType.CPU, t0 + 60_001)
    assert not conflicts(EventType.CPU, t0, 5, EventType.HEAP, t0 + 1)
    # snapshot events have duration 0: they only conflict within the same millisecond
    assert not conflicts(EventType.HEAP, t0, 0, EventType.HEAP, t0 + 1)
