"""Which instances an analysis is asked of: instance names may hold commas."""
from __future__ import annotations

from proftask.analysis.selection import resolve_instances


def test_an_instance_choice_is_a_whole_name_of_the_task_else_the_names_it_lists():
    instances = ["a", "b", "a,b", "c,d"]
    assert resolve_instances(["a,b"], instances) == {"a,b"}
    assert resolve_instances(["a", "b"], instances) == {"a", "b"}
    assert resolve_instances(["c,d", "a"], instances) == {"c,d", "a"}
    assert resolve_instances(["b,a"], instances) == {"a", "b"}  # no such name: the names it lists
    assert resolve_instances(["x,,y"], instances) == {"x", "y"}  # check_instances names them unknown
    assert resolve_instances([], instances) == set()  # every instance
