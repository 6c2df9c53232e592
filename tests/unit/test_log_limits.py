"""proftask.log_limits: a line repeated thousands of times is logged a few times per window,
then said how often it was left out; other lines are not held back by it."""
import io
import logging

from proftask.log_limits import RepeatLimit


def _logger(clock):
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    handler.addFilter(RepeatLimit(per_window=5, window_s=10, clock=clock))
    logger = logging.getLogger("test-log-limits")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out


def test_a_line_repeated_thousands_of_times_is_logged_five_times_a_window_then_counted():
    now = [0.0]
    logger, out = _logger(lambda: now[0])
    for node in range(10_000):  # one template, other arguments: one line
        logger.error("Unable connect to node with id %s: %s", node, "refused")
    logger.warning("another line")
    logger.error("socket.accept() out of system resource\nsocket: <fd=7>")
    logger.error("socket.accept() out of system resource\nsocket: <fd=8>")
    now[0] = 10.0
    logger.error("Unable connect to node with id %s: %s", 1, "refused")
    lines = out.getvalue().splitlines()
    assert lines[:5] == [f"test-log-limits Unable connect to node with id {n}: refused" for n in range(5)]
    assert lines[5:] == ["test-log-limits another line",
                         "test-log-limits socket.accept() out of system resource", "socket: <fd=7>",
                         "test-log-limits socket.accept() out of system resource", "socket: <fd=8>",
                         "test-log-limits Unable connect to node with id 1: refused "
                         "[and 9995 more like it in 10 s, not logged]"]


def test_many_distinct_lines_are_all_logged_and_tracked_in_bounded_memory():
    now = [0.0]
    logger, out = _logger(lambda: now[0])
    limit = logger.handlers[0].filters[0]
    for n in range(5_000):
        now[0] = n * 0.001
        logger.info(f"line {n}")  # preformatted: each its own line
    assert len(out.getvalue().splitlines()) == 5_000
    assert len(limit._lines) <= 1_000


def test_two_bugs_logged_by_one_call_are_two_lines():
    now = [0.0]
    logger, out = _logger(lambda: now[0])

    def fail(error):
        try:
            raise error
        except Exception:
            logger.exception("unhandled error on %s %s", "GET", "/x")

    for _ in range(10):
        fail(KeyError("k"))
    fail(ZeroDivisionError("z"))
    text = out.getvalue()
    assert text.count("KeyError: ") == 5 and text.count("ZeroDivisionError: z") == 1
