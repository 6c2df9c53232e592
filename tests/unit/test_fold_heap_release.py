"""A large Go fold's heap is given back to the OS after a second idle, also when a small fold
came in between: the small one held the release and never armed it again, and a busy worker
(large and small profiles mixed) kept the large fold's ~300 MB until Go's forced collection,
two minutes later, in every worker."""
from __future__ import annotations

import subprocess
import sys
import textwrap

from proftask.pprof import native

CHILD = textwrap.dedent("""
    import time
    from proftask.pprof import native
    from tests.unit.test_stack_frames import deep as deep_profile

    def rss_mb():
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) // 1024 for line in f if line.startswith("VmRSS"))

    def deep(times):  # one location of 4096 inlined lines, `times` deep
        return deep_profile(4096, times).SerializeToString()

    small = deep(1)
    assert native.fold(small) is not None
    base = rss_mb()
    large = native.fold(deep(256))  # 2^20 frames: a ~120 MB answer, ~300 MB of Go heap
    assert large is not None
    del large
    grown = rss_mb()
    assert native.fold(small) is not None  # a small fold at once, then idle
    deadline = time.monotonic() + 10
    while rss_mb() > base + (grown - base) // 3 and time.monotonic() < deadline:
        time.sleep(0.1)
    print(base, grown, rss_mb())
""")


def test_a_small_fold_after_a_large_one_does_not_keep_its_heap():
    assert native.available()
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60, check=True)
    base, grown, after = map(int, out.stdout.split())
    assert grown - base > 150, (base, grown)  # the large fold's heap, in use
    assert after - base < (grown - base) // 3, (base, grown, after)  # given back (main: kept)
