"""Admission of uploads by the bytes they may hold in this process at once.

Each upload is charged its declared size before its body is read (or its bytes as they arrive
when it declared none) and releases the charge when it is done. Beyond the budget HTTP answers
503 with Retry-After (agents retry) and gRPC waits, since its flow control holds the sender.

Where several tenants upload (their tokens configured), one tenant's uploads hold at most
TENANT_SHARE of the budget, so that no one tenant can keep the others out: five slow uploads of
one tenant's agent (declaring 26 MB each, a byte every 20 s) held the whole budget, and every
other tenant's upload was refused for as long as they lasted. (Two tenants together can still
fill it; a third then waits as everyone did before.) One tenant alone has the whole budget, and
an upload larger than a share gets in when nothing else is in flight."""
from __future__ import annotations

import asyncio
import collections
import math

from proftask import metrics
from proftask.errors import Unavailable

RETRY_AFTER_MIN_S, RETRY_AFTER_MAX_S = 1, 30
# About what a process takes in per second; it only spreads the retries of a crowd of agents
# (too long a wait leaves the processor idle, measured with bench/big_uploads.py).
DRAIN_BYTES_PER_S = 64 * 1024 * 1024
TENANT_SHARE = 0.75


class UploadBusy(Unavailable):
    """The upload budget is full; try again after `retry_after` seconds."""

    def __init__(self, message: str, retry_after: int):
        super().__init__(message, retry_after=retry_after)


class UploadBudget:
    def __init__(self, capacity: int, tenant_share: float = 1.0):
        self.capacity, self.used = capacity, 0
        self.tenant_capacity = int(capacity * tenant_share)
        self.by_tenant: collections.Counter[str] = collections.Counter()
        self._released = asyncio.Event()

    def has_room(self, n: int) -> bool:
        """Whether n more bytes fit the budget, whoever's (before a request's tenant is known)."""
        return self.used == 0 or self.used + n <= self.capacity

    def fits(self, tenant: str, n: int) -> bool:
        # An upload larger than the whole budget (or a tenant's share) still gets in when it is alone.
        return self.has_room(n) and (self.used == 0 or self.by_tenant[tenant] + n <= self.tenant_capacity)

    def retry_after(self) -> int:
        return max(RETRY_AFTER_MIN_S, min(RETRY_AFTER_MAX_S, math.ceil(self.used / DRAIN_BYTES_PER_S)))

    def busy(self, tenant: str | None, n: int) -> UploadBusy:
        if tenant is not None and self.has_room(n):  # the tenant's share is what is full
            return UploadBusy(f"the server is busy: this tenant's uploads in flight hold {self.by_tenant[tenant]} "
                              f"bytes, {n} more would pass the {self.tenant_capacity} bytes one tenant may hold "
                              f"of the upload budget; retry later", self.retry_after())
        return UploadBusy(f"the server is busy: {self.used} bytes of uploads in flight, {n} more would pass "
                          f"the upload budget of {self.capacity} bytes; retry later", self.retry_after())

    def try_charge(self, tenant: str, n: int) -> bool:
        if not self.fits(tenant, n):
            return False
        self.used += n
        self.by_tenant[tenant] += n
        metrics.UPLOAD_BYTES_IN_FLIGHT.set(self.used)
        return True

    async def charge(self, tenant: str, n: int, timeout: float) -> bool:
        """Waits up to `timeout` seconds for room; False when there was none."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.try_charge(tenant, n):
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                await asyncio.wait_for(self._released.wait(), remaining)
            except TimeoutError:
                return False
        return True

    def release(self, tenant: str, n: int) -> None:
        self.used -= n
        self.by_tenant[tenant] -= n
        if not self.by_tenant[tenant]:
            del self.by_tenant[tenant]
        metrics.UPLOAD_BYTES_IN_FLIGHT.set(self.used)
        self._released.set()  # wake every waiter; each re-checks whether it fits
        self._released = asyncio.Event()


class Charge:
    """What one upload of a tenant holds of the budget. `wait_s` None: refuse at once
    (UploadBusy); else wait up to that long for room."""

    def __init__(self, budget: UploadBudget, tenant: str, wait_s: float | None):
        self.budget, self.tenant, self.wait_s, self.held = budget, tenant, wait_s, 0

    async def add(self, n: int) -> None:
        if n <= 0:
            return
        ok = (self.budget.try_charge(self.tenant, n) if self.wait_s is None
              else await self.budget.charge(self.tenant, n, self.wait_s))
        if not ok:
            raise self.budget.busy(self.tenant, n)
        self.held += n

    def release(self) -> None:
        if self.held:
            self.budget.release(self.tenant, self.held)
            self.held = 0


_process_budgets: dict[tuple[int, float], UploadBudget] = {}


def process_budget(capacity: int, tenants: int) -> UploadBudget:
    """The budget every transport of this process shares (HTTP and gRPC hold the same memory),
    for this many tenants (0 or 1: one tenant has it all)."""
    key = (capacity, TENANT_SHARE if tenants > 1 else 1.0)
    if key not in _process_budgets:
        _process_budgets[key] = UploadBudget(*key)
    return _process_budgets[key]
