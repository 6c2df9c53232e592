"""Reading an upload, whatever the transport: its bytes held once (memory) or spooled (file,
always removed), refused as soon as they pass pprofMaxSize whatever was declared, and one
profile id per upload of an instance."""
from __future__ import annotations

import asyncio
import hashlib
import os

import pytest

from proftask import spool
from proftask.ingest.upload import UploadTooLarge, profile_id, receive_chunks


async def _chunks(pieces, sent: list):
    for piece in pieces:
        sent.append(piece)
        yield piece


@pytest.mark.parametrize("in_memory", [True, False])
def test_an_upload_is_held_once_with_its_size_and_sha256(in_memory):
    pieces = [b"a" * 1000, b"b" * 10, b"", b"c" * 5000]
    held = asyncio.run(receive_chunks(_chunks(pieces, []), 6010, in_memory))
    try:
        body = b"".join(pieces)
        assert (held.size, held.sha256) == (len(body), hashlib.sha256(body).digest())
        assert held.content() == body and b"".join(held.pieces(777)) == body
        assert (held.path is None) == in_memory
        path = held.path
    finally:
        held.close()
    assert path is None or not os.path.exists(path)


@pytest.mark.parametrize("in_memory", [True, False])
def test_an_upload_is_refused_at_the_first_chunk_past_the_limit_and_nothing_is_left(in_memory, tmp_path,
                                                                                      monkeypatch):
    monkeypatch.setattr(spool, "_directory", tmp_path)
    sent: list = []
    pieces = [b"x" * 600, b"x" * 600, b"never read" * 100]
    with pytest.raises(UploadTooLarge, match="over pprofMaxSize"):
        asyncio.run(receive_chunks(_chunks(pieces, sent), 1000, in_memory))
    assert len(sent) == 2  # the rest of the body is never read
    assert os.listdir(tmp_path) == []  # file mode: the spool file is gone


def test_one_upload_of_an_instance_is_one_profile_by_its_key_else_by_its_bytes():
    digest, other = hashlib.sha256(b"p").digest(), hashlib.sha256(b"q").digest()
    by_key = profile_id("acme", "t-1", "pod-1", "retry-7", digest)
    assert by_key == profile_id("acme", "t-1", "pod-1", "retry-7", other)  # a retry under its key
    assert by_key != profile_id("beta", "t-1", "pod-1", "retry-7", digest)  # another tenant
    assert by_key != profile_id("acme", "t-1", "pod-2", "retry-7", digest)  # another instance
    by_bytes = profile_id("acme", "t-1", "pod-1", "", digest)
    assert by_bytes == profile_id("acme", "t-1", "pod-1", "", digest)
    assert by_bytes != profile_id("acme", "t-1", "pod-1", "", other)

