"""Repeated log records, limited per line and per window. A retry loop outside proftask logs one
line thousands of times a second: asyncio's accept loop out of file descriptors (433,049
tracebacks, 207 MB in 40 s), aiokafka with its broker down (~13,000 lines a minute). That
turned one exhausted resource into a full disk, and buried every other line."""
from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

PER_WINDOW = 5
WINDOW_S = 10.0
MAX_LINES_TRACKED = 1_000


class RepeatLimit(logging.Filter):
    """At most `per_window` records of one line (logger, level, and the message's template up to
    its first line break, whatever its arguments) every `window_s` seconds; the first record of
    the line after a window says how many were left out. A filter of the handler, so it sees
    every logger's records, from every thread."""

    def __init__(self, per_window: int = PER_WINDOW, window_s: float = WINDOW_S,
                 clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.per_window, self.window_s, self._clock = per_window, window_s, clock
        self._lines: dict[tuple[str, int, str], list] = {}  # line -> [window start, records in it]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        line = (record.name, record.levelno, str(record.msg).split("\n", 1)[0])
        now = self._clock()
        with self._lock:
            seen = self._lines.get(line)
            if seen is not None and now - seen[0] < self.window_s:
                seen[1] += 1
                return seen[1] <= self.per_window
            if len(self._lines) >= MAX_LINES_TRACKED:
                self._forget_before(now - self.window_s)
            self._lines[line] = [now, 1]
        left_out = seen[1] - self.per_window if seen is not None else 0
        if left_out > 0:
            record.msg = f"{record.msg} [and {left_out} more like it in {self.window_s:.0f} s, not logged]"
        return True

    def _forget_before(self, start: float) -> None:
        for line in [line for line, (at, _) in self._lines.items() if at < start] or list(self._lines):
            del self._lines[line]
