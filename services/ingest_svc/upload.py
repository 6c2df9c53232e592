"""Receiving a profile upload from any transport: count its bytes under pprofMaxSize, bound its
decompressed size, validate it as pprof. Memory mode keeps the body in memory; file mode spools
it to a temporary file that is always removed."""
from __future__ import annotations

import hashlib
import os
import uuid
from typing import AsyncIterator

from proftask.spool import create_file as new_spool_file
from proftask.pprof.decode import BoundedGunzip, ProfileTooLarge, is_gzip, parse_profile

CHUNK = 256 * 1024
_PROFILE_NS = uuid.UUID("0f6b1f2e-8e63-4c55-9a2d-6c1b8f0e7a41")


class UploadTooLarge(Exception):
    pass


class UploadInterrupted(Exception):
    """The upload stream ended before the size its sender declared."""


async def receive_chunks(chunks: AsyncIterator[bytes], max_size: int, in_memory: bool) -> bytes:
    """The upload's bytes, refusing it as soon as they pass max_size (whatever size was declared).
    Memory mode collects them in memory; file mode spools them to a temporary file first."""
    received = 0
    if in_memory:
        body = bytearray()
        async for chunk in chunks:
            received += len(chunk)
            if received > max_size:
                raise UploadTooLarge(f"upload is over pprofMaxSize ({max_size} bytes)")
            body += chunk
        return bytes(body)
    fd, path = new_spool_file()
    try:
        with os.fdopen(fd, "wb") as spool:
            async for chunk in chunks:
                received += len(chunk)
                if received > max_size:
                    raise UploadTooLarge(f"upload is over pprofMaxSize ({max_size} bytes)")
                spool.write(chunk)
        with open(path, "rb") as spool:
            return spool.read()  # Kafka takes the record whole; the spool bounds the receive
    finally:
        os.unlink(path)


def check_profile(body: bytes, decompressed_limit: int) -> None:
    """Raises ProfileTooLarge (a gzip bomb, or an inflated size over the limit) or ProfileError.

    A first pass only counts the inflated bytes, so a bomb is refused without ever holding its
    output; a profile within the limit is then inflated and decoded."""
    if is_gzip(body):
        counter = BoundedGunzip(decompressed_limit)
        for start in range(0, len(body), CHUNK):
            counter.feed(body[start:start + CHUNK])
        counter.finish()
        gunzip = BoundedGunzip(decompressed_limit)
        raw = gunzip.feed(body)
    else:
        if len(body) > decompressed_limit:
            raise ProfileTooLarge(f"profile is larger than the decompressed limit of {decompressed_limit} bytes")
        raw = body
    parse_profile(raw)


def profile_id(tenant: str, task_id: str, instance_id: str, idempotency_key: str, body: bytes) -> str:
    """The same upload (by Idempotency-Key, else by its bytes) for a task's instance is one profile."""
    what = f"key:{idempotency_key}" if idempotency_key else "sha256:" + hashlib.sha256(body).hexdigest()
    return str(uuid.uuid5(_PROFILE_NS, f"{tenant}/{task_id}/{instance_id}/{what}"))
