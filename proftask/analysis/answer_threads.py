"""The threads query answers are made in. Off the event loop: a large task's rows, trees and
exports made there held it for seconds, and agents' polls and /healthz waited. Apart from
asyncio's default pool: uploads' checks and the processor's folds use that one, and a burst of
reads queued them. Two threads: a tree's text is formatted by two at once (flamegraph.elements_jobs),
and more only share the GIL."""
from __future__ import annotations

import asyncio
import concurrent.futures
import functools
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_ANSWERS = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="answers")


async def off_loop(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
    """fn(*args, **kwargs) in an answer thread."""
    return await asyncio.get_running_loop().run_in_executor(_ANSWERS, functools.partial(fn, *args, **kwargs))
