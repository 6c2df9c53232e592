"""The Go fold (native/): a profile decoded, checked and folded about ten times faster than by
the Python code beside this module, with the same result.

The library is built by `make install` (`go build -buildmode=c-shared`, next to this file) and
loaded with ctypes. It accepts exactly what proftask.pprof.decode accepts and refuses the rest
with the ProfileError parse_profile raises (the same words: the first fault, the bound broken),
so a profile over a bound is refused in milliseconds, not re-read by Python for seconds. What it
is unsure of (invalid UTF-8, unknown groups, bytes it cannot decode) it declines: a declined
profile, or a machine without the library, takes the Python path, which decides.
tests/unit/test_native_fold.py and the decoder fuzz hold both paths equal on every conformance
file and on generated hostile profiles.

Loaded only where profiles are folded or checked: in the CPU pool's spawned workers, and in a
process for small profiles (the Go runtime in a process does not survive a fork, which only
subprocess's fork+exec does after loading it).
"""
from __future__ import annotations

import ctypes
import dataclasses
import functools
import logging
import os
import sys
import threading
from pathlib import Path

import numpy as np
import pyarrow as pa
from google.protobuf.internal import api_implementation

from proftask.pprof.decode import ProfileError, parse_profile

log = logging.getLogger(__name__)

LIBRARY = Path(__file__).with_name("libproftask_fold.so")
_KINDS: dict[int, np.dtype] = {1: np.dtype("<u8"), 2: np.dtype("<i8"), 3: np.dtype("<u4")}
_STRINGS = 4
# native/fold/wire.go CorruptWire: Go's refusal of bytes whose wire no decoder reads, worded here
_CORRUPT_WIRE = "not a pprof protobuf: corrupt wire"


@functools.cache
def _library() -> ctypes.CDLL | None:
    if os.environ.get("PROFTASK_NATIVE_FOLD", "1") == "0":
        return None
    try:
        lib = ctypes.CDLL(str(LIBRARY))
    except OSError as e:
        log.warning("the Go fold is not built (%s): profiles are folded in Python, several times slower; "
                    "`make install` builds it", e)
        return None
    lib.proftask_fold.argtypes = [ctypes.c_char_p, ctypes.c_longlong, ctypes.c_int, ctypes.POINTER(ctypes.c_longlong)]
    lib.proftask_fold.restype = ctypes.c_longlong
    lib.proftask_take.argtypes = [ctypes.c_longlong, ctypes.c_void_p]
    lib.proftask_take.restype = ctypes.c_int
    return lib


def available() -> bool:
    return _library() is not None


@dataclasses.dataclass
class Arrays:
    """What the library answers: named numpy arrays and Arrow string arrays, all views of one
    buffer."""
    numbers: dict[str, np.ndarray]
    texts: dict[str, pa.LargeStringArray]

    def strings(self, name: str) -> list[str]:
        return self.texts[name].to_pylist()


def _call(raw: bytes | bytearray | memoryview, check_only: bool) -> Arrays | None:
    """The library's answer; None: declined. Raises ProfileError when it refuses the profile."""
    lib = _library()
    if lib is None or not len(raw):
        return None
    if not isinstance(raw, bytes):  # an upload held in memory, not gzipped: ctypes passes bytes as they are
        raw = bytes(raw)
    size = ctypes.c_longlong()
    handle = lib.proftask_fold(raw, len(raw), int(check_only), ctypes.byref(size))
    if not handle:
        return None
    try:
        buffer = _answers.take(size.value)  # the one copy of the answer: Go writes it here
    except BaseException:
        lib.proftask_take(abs(handle), None)  # forgotten, not leaked
        raise
    try:
        if not lib.proftask_take(abs(handle), buffer.ctypes.data):
            return None
    finally:
        _answers.done(size.value)
    if handle < 0:  # refused: the answer is why, in decode's words
        words: str | None = buffer.tobytes().decode()
        if words == _CORRUPT_WIRE:
            words = _corrupt_wire_words()
        if words is None:
            return None
        raise ProfileError(words)
    return _arrays(buffer)


class _AnswerBuffers:
    """The memory a large answer is written into, kept for the next: a large profile's answer is
    ~70 MB, which made anew each fold the kernel mapped and zeroed page by page (a tenth to a seventh of a
    CPU worker's time in a burst of large profiles, measured with perf). Reused only when no
    array of the last answer is left: every view of it holds the owner (numpy keeps the owner as
    its views' base, Arrow the numpy slice), so the owner's reference count says whether one is.
    Given back once no fold has run for IDLE_RELEASE_S, as libfold gives back its heap."""

    MIN_BYTES = 8 << 20     # below it malloc reuses its own memory
    MAX_BYTES = 512 << 20   # a worker does not hold more than this between folds
    IDLE_RELEASE_S = 1.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._kept: np.ndarray | None = None
        self._release: threading.Timer | None = None

    def take(self, size: int) -> np.ndarray:
        if size < self.MIN_BYTES:
            return np.empty(size, dtype=np.uint8)
        with self._lock:
            kept, self._kept = self._kept, None
        # 2: `kept` and getrefcount's argument; more: an array of an earlier answer still lives
        if kept is None or kept.nbytes < size or sys.getrefcount(kept) > 2:
            kept = np.empty(size, dtype=np.uint8)
        if size <= self.MAX_BYTES:
            with self._lock:
                if self._kept is None or self._kept.nbytes < kept.nbytes:
                    self._kept = kept
        return kept[:size]

    def done(self, size: int) -> None:
        """A large answer is written: the kept memory is given back unless another comes soon."""
        if size < self.MIN_BYTES:
            return
        with self._lock:
            if self._release is not None:
                self._release.cancel()
            if self._kept is None:
                return
            self._release = threading.Timer(self.IDLE_RELEASE_S, self._drop)
            self._release.daemon = True
            self._release.start()

    def _drop(self) -> None:
        with self._lock:
            self._kept = None


_answers = _AnswerBuffers()


@functools.cache
def _corrupt_wire_words() -> str | None:
    """What parse_profile says of bytes whose wire is corrupt: upb words every corrupt wire alike
    (`... Wire format was corrupt`), so one says it for all. None with another Python decoder,
    whose words depend on the fault: Python then words it."""
    if api_implementation.Type() != "upb":
        return None
    try:
        parse_profile(b"\x0f")  # a tag of wire type 7
    except ProfileError as e:
        return str(e)
    return None


def _arrays(buffer: np.ndarray) -> Arrays:
    """The named arrays of the buffer (layout: native/fold/encode.go)."""
    out = Arrays({}, {})
    data = buffer.data
    at = 0
    while at < len(buffer):
        kind, name_len = int(buffer[at]), int(buffer[at + 1])
        name = bytes(data[at + 2:at + 2 + name_len]).decode()
        at = _aligned(at + 2 + name_len)
        count = int(buffer[at:at + 8].view("<u8")[0])
        at += 8
        if kind == _STRINGS:
            offsets = buffer[at:at + 8 * (count + 1)]
            at += 8 * (count + 1)
            end = int(offsets.view("<i8")[-1])
            out.texts[name] = pa.LargeStringArray.from_buffers(count, pa.py_buffer(offsets),
                                                               pa.py_buffer(buffer[at:at + end]))
            at = _aligned(at + end)
        else:
            dtype = _KINDS[kind]
            out.numbers[name] = buffer[at:at + count * dtype.itemsize].view(dtype)
            at = _aligned(at + count * dtype.itemsize)
    return out


def _aligned(at: int) -> int:
    return (at + 7) & ~7


def sample_types(raw: bytes | bytearray | memoryview) -> list[tuple[str, str]] | None:
    """The (type, unit) pairs of a profile proftask accepts (the serialized protobuf, not
    gzipped); None: ask proftask.pprof.decode. Raises ProfileError as parse_profile would."""
    arrays = _call(raw, check_only=True)
    if arrays is None:
        return None
    return list(zip(arrays.strings("types"), arrays.strings("units"), strict=True))


def fold(raw: bytes | bytearray | memoryview) -> Arrays | None:
    """The folded profile as named arrays (what proftask.processing.profile_rows makes rows of);
    None: fold it in Python. Raises ProfileError as parse_profile would."""
    return _call(raw, check_only=False)
