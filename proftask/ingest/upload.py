"""Receiving a profile upload from any transport: count its bytes under pprofMaxSize, bound its
decompressed size, validate it as pprof. Memory mode keeps the body in memory (once); file mode
spools it to a temporary file that is always removed."""
from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import BinaryIO

from proftask.core.keys import joined_names
from proftask.errors import Invalid, TooLarge
from proftask.spool import create_file as new_spool_file
from proftask.pprof import native
from proftask.pprof.decode import decompress, parse_profile

CHUNK = 256 * 1024
_PROFILE_NS = uuid.UUID("0f6b1f2e-8e63-4c55-9a2d-6c1b8f0e7a41")


class UploadTooLarge(TooLarge):
    """The upload is over pprofMaxSize, or its profile inflates past the decompressed limit."""
    code = "PPROF_UPLOAD_FILE_TOO_LARGE_ERROR"  # SkyWalking's code


class UploadInterrupted(Invalid):
    """The upload stream ended before the size its sender declared."""
    code = "UPLOAD_INTERRUPTED"


class UploadOverDeclared(Invalid):
    """More bytes arrived than the upload declared (a gRPC stream's contentSize): refused as soon
    as they do, so that the declared size, which the upload budget was charged, bounds what is held."""
    code = "UPLOAD_OVER_DECLARED"


class Spool:
    """An upload's bytes, held once: in memory (memory mode) or in a temporary file (file
    mode), with their size and sha256. close() frees them (the file is always removed)."""

    def __init__(self, in_memory: bool):
        self.size, self._sha256 = 0, hashlib.sha256()
        self.buffer: bytearray | None = bytearray() if in_memory else None
        self.path: str | None = None
        self._file: BinaryIO | None = None
        if not in_memory:
            fd, self.path = new_spool_file()
            self._file = os.fdopen(fd, "wb")

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        self._sha256.update(chunk)
        if self.buffer is not None:
            self.buffer += chunk
        else:
            assert self._file is not None, "written after finish()"
            self._file.write(chunk)

    def finish(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    @property
    def sha256(self) -> bytes:
        return self._sha256.digest()

    def pieces(self, size: int) -> Iterator[bytes]:
        """The content in pieces of at most `size` bytes, never all of it at once (file mode)."""
        if self.buffer is not None:
            view = memoryview(self.buffer)
            for start in range(0, self.size, size):
                yield bytes(view[start:start + size])
            return
        assert self.path is not None, "read after close()"
        with open(self.path, "rb") as f:
            while piece := f.read(size):
                yield piece

    def content(self) -> bytes:
        if self.buffer is not None:
            return bytes(self.buffer)
        assert self.path is not None, "read after close()"
        with open(self.path, "rb") as f:
            return f.read()

    def close(self) -> None:
        self.buffer = None
        if self._file is not None:
            self._file.close()
            self._file = None
        if self.path is not None:
            try:
                os.unlink(self.path)
            except FileNotFoundError:
                pass
            self.path = None


async def receive_chunks(chunks: AsyncIterator[bytes], max_size: int, in_memory: bool) -> Spool:
    """The upload's bytes, refusing it as soon as they pass max_size (whatever size was declared).
    Memory mode collects them in memory; file mode spools them to a temporary file."""
    spool = Spool(in_memory)
    try:
        async for chunk in chunks:
            if spool.size + len(chunk) > max_size:
                raise UploadTooLarge(f"upload is over pprofMaxSize ({max_size} bytes)")
            spool.write(chunk)
        spool.finish()
    except BaseException:
        spool.close()
        raise
    return spool


def check_profile_file(path: str, decompressed_limit: int, by_go: bool = True) -> list[tuple[str, str]]:
    """check_profile of a spooled upload, read by the CPU worker itself (no 30 MB pickled)."""
    with open(path, "rb") as f:
        return check_profile(f.read(), decompressed_limit, by_go)


def check_profile_by_go(body: bytes, decompressed_limit: int) -> list[tuple[str, str]] | None:
    """The sample types of an upload if the Go check takes it, None if it declines (then
    check_profile in the CPU pool decides). For a thread: ctypes lets go of the GIL while Go
    works, and zlib while it inflates. Raises ProfileTooLarge, or ProfileError when Go refuses
    the profile (in parse_profile's words: Python need not read it again)."""
    return native.sample_types(decompress(body, decompressed_limit))


def check_profile_file_by_go(path: str, decompressed_limit: int) -> list[tuple[str, str]] | None:
    """check_profile_by_go of a spooled upload."""
    with open(path, "rb") as f:
        return check_profile_by_go(f.read(), decompressed_limit)


def check_profile(body: bytes, decompressed_limit: int, by_go: bool = True) -> list[tuple[str, str]]:
    """The profile's sample types as (type, unit), in file order. Raises ProfileTooLarge (a gzip
    bomb, or an inflated size over the limit) or ProfileError (worded by Go when it refuses the
    profile, as Python would). by_go=False: Go declined it already (check_profile_by_go), only
    Python checks it.

    Inflated once: the output stops one byte past the limit, so a bomb never costs more memory
    than a valid profile of the largest size allowed."""
    raw = decompress(body, decompressed_limit)
    checked = native.sample_types(raw) if by_go else None
    if checked is not None:
        return checked
    profile = parse_profile(raw)  # declined by the Go check (unsure): this raises, or takes the profile
    strings = profile.string_table
    return [(strings[vt.type].decode("utf-8", "replace"), strings[vt.unit].decode("utf-8", "replace"))
            for vt in profile.sample_type]


def profile_id(tenant: str, task_id: str, instance_id: str, idempotency_key: str, sha256: bytes) -> str:
    """The same upload (by Idempotency-Key, else by its bytes' sha256) for a task's instance is one profile.
    Joined plainly, an instance `i` under key `z/key:w` and an instance `i/key:z` under key `w`
    were one text, one id, and the second upload was taken for a retry of the first."""
    what = f"key:{idempotency_key}" if idempotency_key else "sha256:" + sha256.hex()
    return str(uuid.uuid5(_PROFILE_NS, f"{joined_names(tenant, task_id, instance_id)}/{what}"))
