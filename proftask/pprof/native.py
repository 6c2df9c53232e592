"""The Go fold (native/): a profile decoded, checked and folded about ten times faster than by
the Python code beside this module, with the same result.

The library is built by `make install` (`go build -buildmode=c-shared`, next to this file) and
loaded with ctypes. It accepts exactly what proftask.pprof.decode accepts, and declines the rest
along with what it is unsure of (invalid UTF-8): a declined profile, or a machine without the
library, takes the Python path, which also words every refusal. tests/unit/test_native_fold.py
holds both paths equal on every conformance file and on generated hostile profiles.

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
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

LIBRARY = Path(__file__).with_name("libproftask_fold.so")
_KINDS: dict[int, np.dtype] = {1: np.dtype("<u8"), 2: np.dtype("<i8"), 3: np.dtype("<u4")}
_STRINGS = 4


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
    lib.proftask_fold.argtypes = [ctypes.c_char_p, ctypes.c_longlong, ctypes.c_int,
                                  ctypes.POINTER(ctypes.c_void_p), ctypes.POINTER(ctypes.c_longlong)]
    lib.proftask_fold.restype = ctypes.c_int
    lib.proftask_free.argtypes = [ctypes.c_void_p]
    lib.proftask_free.restype = None
    return lib


def available() -> bool:
    return _library() is not None


@dataclasses.dataclass
class Arrays:
    """What the library answers: named numpy arrays (views of one buffer) and string lists."""
    numbers: dict[str, np.ndarray]
    strings: dict[str, list[str]]


def _call(raw: bytes, check_only: bool) -> Arrays | None:
    lib = _library()
    if lib is None or not raw:
        return None
    out, out_len = ctypes.c_void_p(), ctypes.c_longlong()
    if not lib.proftask_fold(raw, len(raw), int(check_only), ctypes.byref(out), ctypes.byref(out_len)):
        return None
    try:
        buffer = ctypes.string_at(out, out_len.value)  # one copy, then the arrays are views of it
    finally:
        lib.proftask_free(out)
    return _arrays(buffer)


def _arrays(buffer: bytes) -> Arrays:
    """The named arrays of the buffer (layout: native/fold/encode.go)."""
    out = Arrays({}, {})
    at = 0
    while at < len(buffer):
        kind, name_len = buffer[at], buffer[at + 1]
        name = buffer[at + 2:at + 2 + name_len].decode()
        at = _aligned(at + 2 + name_len)
        count = int.from_bytes(buffer[at:at + 8], "little")
        at += 8
        if kind == _STRINGS:
            offsets = np.frombuffer(buffer, dtype="<i8", count=count + 1, offset=at).tolist()
            at += 8 * (count + 1)
            blob = buffer[at:at + offsets[-1]]
            out.strings[name] = [blob[offsets[i]:offsets[i + 1]].decode() for i in range(count)]
            at = _aligned(at + offsets[-1])
        else:
            dtype = _KINDS[kind]
            out.numbers[name] = np.frombuffer(buffer, dtype=dtype, count=count, offset=at)
            at = _aligned(at + count * dtype.itemsize)
    return out


def _aligned(at: int) -> int:
    return (at + 7) & ~7


def sample_types(raw: bytes) -> list[tuple[str, str]] | None:
    """The (type, unit) pairs of a profile proftask accepts (the serialized protobuf, not
    gzipped); None: ask proftask.pprof.decode."""
    arrays = _call(raw, check_only=True)
    if arrays is None:
        return None
    return list(zip(arrays.strings["types"], arrays.strings["units"], strict=True))


def fold(raw: bytes) -> Arrays | None:
    """The folded profile as named arrays (what proftask.processing.profile_rows makes rows of);
    None: fold it in Python."""
    return _call(raw, check_only=False)
