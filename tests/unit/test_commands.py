from proftask.core.commands import command_args, select_task_for_instance
from proftask.core.tasks import EventType, Task, TaskSpec

GRACE = 10 * 60_000


def task(tid, create_time, instances=("a", "b"), event=EventType.CPU, duration=1, dump=0):
    return Task(tid, TaskSpec("svc", instances, event, duration, dump), create_time)


def test_oldest_eligible_task_first():
    tasks = [task("new", 3000), task("old", 2000, event=EventType.HEAP, duration=0)]
    assert select_task_for_instance(tasks, "a", 0, 3000, GRACE).task_id == "old"
    assert select_task_for_instance(tasks, "a", 2000, 3000, GRACE).task_id == "new"


def test_no_task_at_or_before_last_command_time():
    assert select_task_for_instance([task("t", 2000)], "a", 2000, 2500, GRACE) is None


def test_instance_not_in_task_gets_nothing():
    assert select_task_for_instance([task("t", 2000)], "zzz", 0, 2500, GRACE) is None


def test_task_waits_for_its_agent_until_its_deadline_not_five_minutes():
    t = task("t", 0, duration=15)
    assert select_task_for_instance([t], "a", -1, 20 * 60_000, GRACE) is not None  # past 5 min
    assert select_task_for_instance([t], "a", -1, 25 * 60_000, GRACE) is not None  # at deadline
    assert select_task_for_instance([t], "a", -1, 25 * 60_000 + 1, GRACE) is None


def test_args_are_skywalkings_six_in_order():
    t = task("t-1", 1716000000000, event=EventType.MUTEX, duration=5, dump=10)
    assert command_args(t, "serial") == [
        ("SerialNumber", "serial"), ("TaskId", "t-1"), ("Events", "mutex"),
        ("Duration", "5"), ("CreateTime", "1716000000000"), ("DumpPeriod", "10"),
    ]


def test_a_restarted_agent_polling_from_zero_never_gets_a_task_it_settled():
    # finished ("done": a profile stored) or failed ("bad") on this instance: skipped, the next
    # task (still waiting for this instance) comes instead; another instance still gets them.
    tasks = [task("done", 1000), task("bad", 2000), task("next", 3000)]
    assert select_task_for_instance(tasks, "a", 0, 3000, GRACE, settled={"done", "bad"}).task_id == "next"
    assert select_task_for_instance(tasks, "b", 0, 3000, GRACE, settled=set()).task_id == "done"
    assert select_task_for_instance(tasks[:2], "a", 0, 3000, GRACE, settled={"done", "bad"}) is None
