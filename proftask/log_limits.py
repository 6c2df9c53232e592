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
        self._lines: dict[tuple, list] = {}  # line -> [window start, records in it]
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        line = (record.name, record.levelno, str(record.msg).split("\n", 1)[0], _raised_where(record))
        now = self._clock()
        with self._lock:
            seen = self._lines.get(line)
            if seen is not None and now - seen[0] < self.window_s:
                seen[1] += 1
                return seen[1] <= self.per_window
            self._lines.pop(line, None)  # to the end: the lines stay in the order of their windows
            if len(self._lines) >= MAX_LINES_TRACKED:
                self._forget(now - self.window_s)
            self._lines[line] = [now, 1]
        left_out = seen[1] - self.per_window if seen is not None else 0
        if left_out > 0:  # the handler's own record: proftask's root logger has this one handler
            record.msg = f"{record.msg} [and {left_out} more like it in {self.window_s:.0f} s, not logged]"
        return True

    def _forget(self, before: float) -> None:
        """The lines whose window ended; if none has, the oldest tenth (their counts are lost)."""
        ended = [line for line, (at, _) in self._lines.items() if at < before]
        for line in ended or list(self._lines)[:MAX_LINES_TRACKED // 10]:
            del self._lines[line]


def _raised_where(record: logging.LogRecord) -> tuple[str, str, int] | None:
    """A logged exception's type and the line that raised it: one log call reporting every
    unhandled error ("unhandled error on %s %s") is as many lines as there are bugs."""
    if not record.exc_info or record.exc_info[1] is None:
        return None
    error, tb = record.exc_info[1], record.exc_info[2]
    if tb is None:
        return type(error).__name__, "", 0
    while tb.tb_next is not None:
        tb = tb.tb_next
    return type(error).__name__, tb.tb_frame.f_code.co_filename, tb.tb_lineno
