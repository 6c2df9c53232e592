"""An instance that never will settle (core.progress.missed_instances): the task's deadline is
the last moment it is handed out, not when its instances must be done."""
from proftask.core.progress import FAILED, RUNNING, WAITING, missed_instances, task_status

CREATED, DEADLINE = 0, 11 * 60_000  # a 1-minute task with a 10-minute grace
ALLOWANCE = DEADLINE - CREATED


def progress(notified: dict[str, int], finished=(), failed=()) -> dict:
    return {"logs": [{"instanceId": i, "operationType": "NOTIFIED", "operationTime": t} for i, t in notified.items()],
            "successInstanceIds": list(finished), "errorInstanceIds": list(failed)}


def test_an_instance_handed_the_task_just_before_its_deadline_is_still_running_it():
    p = progress({"late": DEADLINE - 1})
    assert missed_instances(["late"], p, CREATED, DEADLINE, DEADLINE + 60_000) == set()
    assert task_status(["late"], p, CREATED, DEADLINE, DEADLINE + 60_000) == RUNNING
    gone = DEADLINE - 1 + ALLOWANCE + 1  # its agent went away: nothing came in the time a task gives
    assert missed_instances(["late"], p, CREATED, DEADLINE, gone) == {"late"}
    assert task_status(["late"], p, CREATED, DEADLINE, gone) == FAILED


def test_an_instance_never_handed_the_task_misses_it_at_the_deadline_and_settled_ones_never():
    p = progress({}, finished=["ok"], failed=["bad"])
    instances = ["ok", "bad", "never"]
    assert missed_instances(instances, p, CREATED, DEADLINE, DEADLINE) == set()
    assert task_status(instances, p, CREATED, DEADLINE, DEADLINE) == RUNNING
    assert missed_instances(instances, p, CREATED, DEADLINE, DEADLINE + 1) == {"never"}
    assert task_status(instances, p, CREATED, DEADLINE, DEADLINE + 1) == FAILED
    assert task_status(["never"], progress({}), CREATED, DEADLINE, DEADLINE) == WAITING
