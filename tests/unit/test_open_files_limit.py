"""proftask.http.connections.within_open_files_limit: the HTTP connections fit the open-files
limit, raised first to its hard limit. (A hard limit too low is refused at start:
tests/integration/test_roles.py; a test cannot lower its own and raise it back.)"""
import resource

import pytest

from proftask.config import HttpLimits
from proftask.http.connections import within_open_files_limit


@pytest.fixture
def restored_limit():
    before = resource.getrlimit(resource.RLIMIT_NOFILE)
    yield before
    resource.setrlimit(resource.RLIMIT_NOFILE, before)


def test_a_soft_limit_below_the_hard_one_is_raised_to_it_before_connections_are_capped(restored_limit):
    _, hard = restored_limit
    if hard == resource.RLIM_INFINITY or hard < 1_000:
        pytest.skip(f"needs a finite hard open-files limit of 1000 or more, not {hard}")
    resource.setrlimit(resource.RLIMIT_NOFILE, (300, hard))  # 44 connections' room at 300
    limits = within_open_files_limit(HttpLimits(max_connections=10_000_000))
    assert resource.getrlimit(resource.RLIMIT_NOFILE) == (hard, hard)
    assert limits.max_connections == hard - 256



def test_the_ports_of_a_process_share_the_room_the_limit_leaves(restored_limit):
    _, hard = restored_limit
    if hard == resource.RLIM_INFINITY or hard < 1_000:
        pytest.skip(f"needs a finite hard open-files limit of 1000 or more, not {hard}")
    # HTTP and two gRPC listeners, each at most maxConnections, all of them under the limit
    assert within_open_files_limit(HttpLimits(max_connections=10_000_000), ports=3).max_connections == \
        (hard - 256) // 3
    assert within_open_files_limit(HttpLimits(max_connections=50), ports=3).max_connections == 50
