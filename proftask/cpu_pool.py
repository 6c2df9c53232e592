"""A process pool for CPU-bound profile work (validation, folding).

Python holds the GIL while it folds a profile; in a process that also serves HTTP and runs
Faust, that stalls everything else and leaves the second core idle. Workers are spawned (not
forked: the parent has Kafka and chDB threads) and import only the pure pprof code.

Workers exit when the server dies, even by SIGKILL: each holds the read end of a pipe whose only
write end is the server's, and a thread waiting on it sees EOF the moment the kernel closes the
server's descriptors. (PR_SET_PDEATHSIG would fire on the death of whichever thread spawned the
worker, and ProcessPoolExecutor spawns from the thread that submits; the pipe follows the
process, needs no ctypes and no polling.)

A large result (a folded profile is ~80 MB of numpy arrays) does not come back through the
pool's pipe, which costs a pickle, a pipe and an unpickle, each a copy, and the unpickle holds
the server's GIL: its arrays go out of band (pickle protocol 5) into one file in /dev/shm, which
the server maps and unlinks, and the arrays it gets are views of that mapping."""
from __future__ import annotations

import asyncio
import concurrent.futures
import concurrent.futures.process
import contextlib
import dataclasses
import functools
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import tempfile
import threading

SHARED_MIN_BYTES = 1 << 20  # smaller results come back through the pipe
_ALIGN = 64
_PREFIX = "proftask-result-"


def _exit_when_parent_dies(parent_alive: multiprocessing.connection.Connection) -> None:
    def watch() -> None:
        try:
            parent_alive.recv()  # nothing is ever sent: returns or raises only at EOF
        except (EOFError, OSError):
            pass
        os._exit(0)  # no one is left to take a result

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


# The server that started this worker: its result files carry this pid, not whatever os.getppid()
# says when one is written (1 once the server has died, and files named after a live pid are
# never taken for orphans).
_server_pid: int | None = None


def _init_worker(parent_alive: multiprocessing.connection.Connection) -> None:
    global _server_pid
    _server_pid = os.getppid()
    _exit_when_parent_dies(parent_alive)
    import proftask.pprof.fold  # noqa: F401 - import numpy and the generated protobuf once
    from proftask.processing import profile_rows
    from proftask.pprof import native
    native.available()  # load the Go fold now, not on the first profile
    # pyarrow imports pandas the first time it builds a dictionary column (~0.2 s idle, ~0.5 s
    # beside a busy server): now, not while the first profile waits
    profile_rows.constant_column("", 1)


def _ready() -> None:
    """Nothing: submitted at start (spawn_at_start) so that the workers are spawned and
    initialised before the first profile, which would otherwise wait ~1.5 s for them."""


def _shared_dir() -> str:
    return "/dev/shm" if os.access("/dev/shm", os.W_OK) else tempfile.gettempdir()


def _aligned(n: int) -> int:
    return (n + _ALIGN - 1) // _ALIGN * _ALIGN


@dataclasses.dataclass
class _Shared:
    """A result whose buffers are in the file at `path`, each at an aligned offset."""
    head: bytes          # the pickle, without its buffers
    path: str
    lengths: list[int]


def _run_in_worker(fn, *args):
    result = fn(*args)
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(result, protocol=5, buffer_callback=buffers.append)
    raws = [b.raw() for b in buffers]
    if sum(r.nbytes for r in raws) < SHARED_MIN_BYTES:
        return result
    server = _server_pid if _server_pid is not None else os.getppid()
    fd, path = tempfile.mkstemp(prefix=f"{_PREFIX}{server}-{os.getpid()}-", dir=_shared_dir())
    try:
        with os.fdopen(fd, "wb") as f:  # buffered: writes whole or raises (a raw write may stop short)
            for raw in raws:
                f.write(raw)
                f.write(bytes(_aligned(raw.nbytes) - raw.nbytes))
    except OSError:  # /dev/shm full (a container's is 64 MB): through the pipe, then
        os.unlink(path)
        return result
    return _Shared(head, path, [r.nbytes for r in raws])


def _received(result):
    if not isinstance(result, _Shared):
        return result
    with open(result.path, "rb") as f:
        # private copy-on-write: the arrays are writable, and nothing is copied unless written
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY)
    os.unlink(result.path)  # the mapping keeps the pages until its last view is gone
    view = memoryview(mapped)
    buffers, at = [], 0
    for n in result.lengths:
        buffers.append(view[at:at + n])
        at += _aligned(n)
    return pickle.loads(result.head, buffers=buffers)


def _discard(future: concurrent.futures.Future) -> None:
    if not future.cancelled() and future.exception() is None and isinstance(future.result(), _Shared):
        with contextlib.suppress(OSError):
            os.unlink(future.result().path)


def _remove_orphans() -> None:
    """Result files of servers that died between a worker writing one and the server mapping it."""
    directory = _shared_dir()
    for name in os.listdir(directory):
        if not name.startswith(_PREFIX):
            continue
        try:
            os.kill(int(name[len(_PREFIX):].split("-")[0]), 0)
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))
        except (ValueError, PermissionError):
            pass


def _running(pid: int) -> bool:
    """Whether the process runs (a zombie, dead and not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rpartition(")")[2].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False
    except (OSError, IndexError):  # no /proc: signal 0 (a zombie counts as running)
        try:
            os.kill(pid, 0)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return True


def _remove_results_of_dead_workers() -> None:
    """Result files of this server's workers that died before it mapped them: the OOM killer
    strikes a worker at its peak, the result held and its copy being written into /dev/shm, whose
    files are memory too; _remove_orphans removes them only when the server has died."""
    directory = _shared_dir()
    prefix = f"{_PREFIX}{os.getpid()}-"
    for name in os.listdir(directory):
        worker = name[len(prefix):].split("-")[0] if name.startswith(prefix) else ""
        if worker.isdigit() and not _running(int(worker)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(directory, name))


DEFAULT_MAX_WORKERS = 8  # each holds up to ~0.4 GB folding a large profile: more is set, not assumed


def available_cores() -> int:
    """The cores this process may use: its affinity (taskset, a cpuset), and its cgroup's CPU
    quota (a container's limit) where it is lower. os.cpu_count() counts every core of the
    host: a pod limited to 2 CPUs on a 64-core node would have spawned 64 workers."""
    cores = len(os.sched_getaffinity(0)) or 1
    quota = _cgroup_cpu_quota()
    return max(1, min(cores, quota)) if quota else cores


def _cgroup_cpu_quota() -> int | None:
    """The CPUs the cgroup's quota allows, rounded up; None without a quota (cgroup v2, then v1)."""
    try:
        quota, period = open("/sys/fs/cgroup/cpu.max").read().split()[:2]
        if quota == "max":
            return None
        return -(-int(quota) // int(period))
    except (OSError, ValueError):
        pass
    try:
        quota_us = int(open("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read())
        period_us = int(open("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read())
    except (OSError, ValueError):
        return None
    return -(-quota_us // period_us) if quota_us > 0 and period_us > 0 else None


class CpuPool:
    def __init__(self, workers: int | None = None, spawn_at_start: bool = False):
        self.workers = workers or min(available_cores(), DEFAULT_MAX_WORKERS)
        self.spawn_at_start = spawn_at_start
        self._pool: concurrent.futures.ProcessPoolExecutor | None = None
        self._reader: multiprocessing.connection.Connection | None = None
        self._parent_alive: multiprocessing.connection.Connection | None = None

    async def start(self) -> None:
        _remove_orphans()
        context = multiprocessing.get_context("spawn")
        self._reader, self._parent_alive = context.Pipe(duplex=False)  # we keep the write end, never write
        self._pool = self._new_pool()

    def _new_pool(self) -> concurrent.futures.ProcessPoolExecutor:
        assert self._reader is not None
        pool = concurrent.futures.ProcessPoolExecutor(
            self.workers, mp_context=multiprocessing.get_context("spawn"),
            initializer=functools.partial(_init_worker, self._reader))
        if self.spawn_at_start:
            for _ in range(self.workers):
                pool.submit(_ready)
        return pool

    async def stop(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)

    async def run(self, fn, *args):
        """fn and args must be picklable (module-level functions, bytes, numbers)."""
        assert self._pool is not None, "start() the pool first"
        pool = self._pool
        try:
            future = pool.submit(_run_in_worker, fn, *args)
            try:
                result = await asyncio.wrap_future(future)
            except asyncio.CancelledError:
                future.add_done_callback(_discard)  # a result still on its way leaves no file behind
                raise
        except concurrent.futures.process.BrokenProcessPool:
            # a worker died (the OOM killer, a fatal Go runtime error): this call fails, and the
            # next ones get new workers rather than the broken pool until a restart
            if self._pool is pool:
                self._pool = self._new_pool()
                # its workers reaped (a worker killed mid-write leaves its result file), then freed
                await asyncio.to_thread(pool.shutdown, True, cancel_futures=True)
                _remove_results_of_dead_workers()
            raise
        return _received(result)

    async def run_alone(self, fn, *args):
        """run, in a new worker of its own that serves nothing else and exits after: when it
        runs out of memory or dies (BrokenProcessPool), that call is the cause, not a neighbour's."""
        assert self._reader is not None, "start() the pool first"
        pool = concurrent.futures.ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                                      initializer=functools.partial(_init_worker, self._reader))
        try:
            future = pool.submit(_run_in_worker, fn, *args)
            try:
                return _received(await asyncio.wrap_future(future))
            except asyncio.CancelledError:
                future.add_done_callback(_discard)
                raise
        except concurrent.futures.process.BrokenProcessPool:
            await asyncio.to_thread(pool.shutdown, True)  # its worker reaped: its result file is no one's
            _remove_results_of_dead_workers()
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
