from proftask.core.creation import REMEMBERED_DECISIONS, ServiceState, decide_creation
from proftask.core.tasks import EventType, TaskSpec


def spec(event=EventType.CPU, duration=1):
    return TaskSpec("svc", ("i-1",), event, duration, 0)


def test_first_task_is_created_at_request_time():
    decision, state = decide_creation(ServiceState(), "t1", spec(), requested_at=1000)
    assert decision.created and decision.create_time == 1000
    assert state.last_create_time == 1000


def test_overlapping_same_event_is_rejected_naming_the_running_task():
    _, state = decide_creation(ServiceState(), "t1", spec(), 1000)
    decision, state2 = decide_creation(state, "t2", spec(), 2000)
    assert not decision.created and decision.conflicting_task_id == "t1"
    assert state2.last_create_time == 1000


def test_other_event_type_is_accepted_meanwhile():
    _, state = decide_creation(ServiceState(), "t1", spec(), 1000)
    decision, _ = decide_creation(state, "t2", spec(EventType.HEAP, 0), 1500)
    assert decision.created


def test_after_the_duration_a_new_task_is_accepted():
    _, state = decide_creation(ServiceState(), "t1", spec(duration=1), 1000)
    decision, _ = decide_creation(state, "t2", spec(duration=1), 1000 + 60_001)
    assert decision.created


def test_create_time_strictly_increases_even_when_clocks_disagree():
    _, state = decide_creation(ServiceState(), "t1", spec(EventType.HEAP, 0), 5000)
    decision, _ = decide_creation(state, "t2", spec(EventType.GOROUTINE, 0), 4000)  # earlier clock
    assert decision.created and decision.create_time == 5001


def test_redelivered_request_gets_the_same_answer():
    _, s1 = decide_creation(ServiceState(), "t1", spec(), 1000)
    _, s2 = decide_creation(s1, "t2", spec(), 2000)
    again, s3 = decide_creation(s2, "t1", spec(), 1000)
    assert again.created and again.create_time == 1000 and s3 == s2
    rejected_again, _ = decide_creation(s2, "t2", spec(), 2000)
    assert not rejected_again.created


def test_state_stays_bounded():
    state = ServiceState()
    for n in range(10 * REMEMBERED_DECISIONS):
        _, state = decide_creation(state, f"t{n}", spec(EventType.HEAP, 0), 1000 + n)
    assert len(state.recent) <= REMEMBERED_DECISIONS + 1


def test_the_rejection_names_the_blocking_task_and_when_it_ends():
    from proftask.core.creation import rejection_reason
    created_at = 1_795_000_000_000  # 2026-11-18T11:06:40Z
    _, state = decide_creation(ServiceState(), "t1", spec(duration=5), created_at)
    decision, _ = decide_creation(state, "t2", spec(), created_at + 1000)
    assert decision.conflicting_until == created_at + 5 * 60_000
    assert rejection_reason(decision, "svc") == (
        'service "svc" already has a CPU task running: task t1 runs until 2026-11-18T11:11:40.000Z '
        "(1795000300000 epoch ms); a service runs one task per event type at a time")
