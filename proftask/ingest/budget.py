"""Admission of uploads by the bytes they may hold in this process at once.

Each upload is charged its declared size before its body is read (or its bytes as they arrive
when it declared none) and releases the charge when it is done. Beyond the budget HTTP answers
503 with Retry-After (agents retry) and gRPC waits, since its flow control holds the sender."""
from __future__ import annotations

import asyncio
import math

from proftask import metrics
from proftask.errors import Unavailable

RETRY_AFTER_MIN_S, RETRY_AFTER_MAX_S = 1, 30
# About what a process takes in per second; it only spreads the retries of a crowd of agents
# (too long a wait leaves the processor idle, measured with bench/big_uploads.py).
DRAIN_BYTES_PER_S = 64 * 1024 * 1024


class UploadBusy(Unavailable):
    """The upload budget is full; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, retry_after=retry_after)


class UploadBudget:
    def __init__(self, capacity: int):
        self.capacity, self.used = capacity, 0
        self._released = asyncio.Event()

    def fits(self, n: int) -> bool:
        # An upload larger than the whole budget still gets in when it is alone.
        return self.used == 0 or self.used + n <= self.capacity

    def retry_after(self) -> int:
        return max(RETRY_AFTER_MIN_S, min(RETRY_AFTER_MAX_S, math.ceil(self.used / DRAIN_BYTES_PER_S)))

    def busy(self, n: int) -> UploadBusy:
        return UploadBusy(f"the server is busy: {self.used} bytes of uploads in flight, {n} more would pass "
                          f"the upload budget of {self.capacity} bytes; retry later", self.retry_after())

    def try_charge(self, n: int) -> bool:
        if not self.fits(n):
            return False
        self.used += n
        metrics.UPLOAD_BYTES_IN_FLIGHT.set(self.used)
        return True

    async def charge(self, n: int, timeout: float) -> bool:
        """Waits up to `timeout` seconds for room; False when there was none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.try_charge(n):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._released.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def release(self, n: int) -> None:
        self.used -= n
        metrics.UPLOAD_BYTES_IN_FLIGHT.set(self.used)
        self._released.set()  # wake every waiter; each re-checks whether it fits
        self._released = asyncio.Event()


class Charge:
    """What one upload holds of the budget. `wait_s` None: refuse at once (UploadBusy);
    else wait up to that long for room."""

    def __init__(self, budget: UploadBudget, wait_s: float | None):
        self.budget, self.wait_s, self.held = budget, wait_s, 0

    async def add(self, n: int) -> None:
        if n <= 0:
            return
        ok = self.budget.try_charge(n) if self.wait_s is None else await self.budget.charge(n, self.wait_s)
        if not ok:
            raise self.budget.busy(n)
        self.held += n

    def release(self) -> None:
        if self.held:
            self.budget.release(self.held)
            self.held = 0


_process_budgets: dict[int, UploadBudget] = {}


def process_budget(capacity: int) -> UploadBudget:
    """The budget every transport of this process shares (HTTP and gRPC hold the same memory)."""
    if capacity not in _process_budgets:
        _process_budgets[capacity] = UploadBudget(capacity)
    return _process_budgets[capacity]
