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


@pytest.mark.parametrize("body,expected", [
    (req(serviceId=None), "service cannot be null"),
    (req(serviceId=""), "service cannot be null"),
    (req(events=None), "events cannot be empty"),
    (req(duration=0), "duration cannot be negative"),
    (req(duration=-3), "duration cannot be negative"),
    (req(duration=None), "duration cannot be negative"),
    (req(duration=16), "duration cannot be greater than 15 minutes"),
    (req(events="BLOCK", duration=1), "dumpPeriod cannot be negative"),
    (req(events="MUTEX", duration=1, dumpPeriod=0), "dumpPeriod cannot be negative"),
    (req(serviceInstanceIds=[]), "serviceInstanceIds cannot be empty"),
    (req(serviceInstanceIds=None), "serviceInstanceIds cannot be empty"),
])
def test_skywalking_reasons(body, expected):
    assert reason(body) == expected


def test_checks_run_in_skywalking_order():
    # service is checked before events, events before duration, duration before instances
    assert reason({"events": "CPU"}) == "service cannot be null"
    assert reason({"serviceId": "s", "duration": 99}) == "events cannot be empty"
    assert reason({"serviceId": "s", "events": "CPU", "duration": 99}) == \
        "duration cannot be greater than 15 minutes"


@pytest.mark.parametrize("body,fragment", [
    (req(duration="1"), "duration must be an integer"),
    (req(duration=True), "duration must be an integer"),
    (req(duration=1.5), "duration must be an integer"),
    (req(serviceId=7), "serviceId must be a string"),
    (req(serviceInstanceIds="c-1"), "serviceInstanceIds must be a list of strings"),
    (req(serviceInstanceIds=[1]), "serviceInstanceIds must be a list of strings"),
    (req(events="WALLCLOCK"), "unknown events 'WALLCLOCK'"),
    (req(serviceInstanceIds=[f"i-{n}" for n in range(10_000)]), "cannot hold more than 1000"),
    ([1, 2], "must be a JSON object"),
])
def test_wrong_types_and_limits(body, fragment):
    assert fragment in reason(body)


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
