from proftask.core.progress import (EXECUTION_FINISHED, EXECUTION_TASK_ERROR, NOTIFIED,
                                    PPROF_UPLOAD_FILE_TOO_LARGE_ERROR, TaskLog, derive_progress)


def log(instance, op, t, msg=""):
    return TaskLog("task", instance, op, t, msg)


def test_logs_newest_first_and_outcomes():
    p = derive_progress([
        log("a", NOTIFIED, 1), log("b", NOTIFIED, 2),
        log("a", EXECUTION_FINISHED, 5), log("b", EXECUTION_TASK_ERROR, 6, "CPU profiling already in use"),
    ])
    assert [entry.operation_time for entry in p.logs] == [6, 5, 2, 1]
    assert p.success_instance_ids == ["a"] and p.error_instance_ids == ["b"]


def test_a_later_success_supersedes_an_error():
    p = derive_progress([log("a", PPROF_UPLOAD_FILE_TOO_LARGE_ERROR, 3), log("a", EXECUTION_FINISHED, 4)])
    assert p.success_instance_ids == ["a"] and p.error_instance_ids == []


def test_ids_are_not_repeated():
    p = derive_progress([log("a", EXECUTION_TASK_ERROR, 3, "x"), log("a", EXECUTION_TASK_ERROR, 4, "y")])
    assert p.error_instance_ids == ["a"] and len(p.logs) == 2


def test_an_instance_has_one_final_state_and_a_stored_profile_wins():
    # an error reported after the profile was stored (the agent gave up on an upload that landed)
    p = derive_progress([log("a", NOTIFIED, 1), log("a", EXECUTION_FINISHED, 5),
                         log("a", EXECUTION_TASK_ERROR, 9, "upload timed out")])
    assert p.success_instance_ids == ["a"] and p.error_instance_ids == []
    assert [entry.operation_type for entry in p.logs] == [EXECUTION_TASK_ERROR, EXECUTION_FINISHED, NOTIFIED]
    # and one reported before it
    p = derive_progress([log("b", EXECUTION_TASK_ERROR, 3), log("b", EXECUTION_FINISHED, 4)])
    assert p.success_instance_ids == ["b"] and p.error_instance_ids == []
