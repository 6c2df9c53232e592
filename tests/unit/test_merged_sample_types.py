"""The sample types of a pprof export merging profiles of different types, as pprof merges them."""
import pytest

from proftask.core.merged_sample_types import SampleTypesDisagree, merged_sample_types

CPU, SAMPLES = "cpu/nanoseconds", "samples/count"


def test_profiles_of_one_list_keep_it_whole_a_name_given_twice_included():
    assert merged_sample_types([[SAMPLES, SAMPLES, CPU]] * 2) == ([SAMPLES, SAMPLES, CPU], [[0, 1, 2], [0, 1, 2]])


def test_the_types_every_profile_has_in_the_first_profiles_order_each_from_its_own_column():
    got = merged_sample_types([[SAMPLES, CPU, "wall/nanoseconds"], [CPU], ["wall/nanoseconds", CPU, SAMPLES]])
    assert got == ([CPU], [[1], [0], [1]])
    got = merged_sample_types([["wall/nanoseconds", CPU, SAMPLES], [SAMPLES, CPU, "wall/nanoseconds", "x/count"]])
    assert got == (["wall/nanoseconds", CPU, SAMPLES], [[0, 1, 2], [2, 1, 0]])


def test_a_type_in_two_units_is_refused_naming_both():
    with pytest.raises(SampleTypesDisagree, match='"cpu/milliseconds" and "cpu/nanoseconds"'):
        merged_sample_types([["cpu/milliseconds"], [SAMPLES, CPU]])


def test_profiles_with_no_type_in_common_are_refused():
    with pytest.raises(SampleTypesDisagree, match="no sample type in common"):
        merged_sample_types([[SAMPLES], [CPU]])


def test_no_profiles_no_types():
    assert merged_sample_types([]) == ([], [])
