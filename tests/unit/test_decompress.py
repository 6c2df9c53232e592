"""decompress: what an upload's bytes inflate to, and when it refuses them (a bomb, a broken or
cut stream). The upload check and the processor's fold both read a profile through it."""
import gzip
import zlib

import pytest

from proftask.pprof.decode import ProfileError, ProfileTooLarge, decompress


def test_one_member_inflates_to_its_content():
    content = bytes(range(256)) * 4096
    assert decompress(gzip.compress(content), 1 << 20) == content


def test_concatenated_members_inflate_to_their_contents_in_order_as_gzip_does():
    first, second = b"first " * 1000, b"second " * 1000
    assert decompress(gzip.compress(first) + gzip.compress(second), 1 << 20) == first + second


def test_the_limit_counts_every_member():
    half = bytes(600)
    with pytest.raises(ProfileTooLarge, match="inflates past the decompressed limit of 1000 bytes"):
        decompress(gzip.compress(half) + gzip.compress(half), 1000)
    assert len(decompress(gzip.compress(half) + gzip.compress(half), 1200)) == 1200


def test_a_bomb_is_refused_without_inflating_it_whole():
    bomb = gzip.compress(bytes(64 << 20), 9)
    with pytest.raises(ProfileTooLarge):
        decompress(bomb, 1 << 20)


def test_a_cut_stream_and_broken_bytes_are_refused_in_words():
    body = gzip.compress(bytes(range(256)) * 100)
    with pytest.raises(ProfileError, match="truncated gzip data"):
        decompress(body[:len(body) // 2], 1 << 20)
    broken = body[:10] + bytes(b ^ 0xFF for b in body[10:30]) + body[30:]
    with pytest.raises(ProfileError, match="corrupt gzip data"):
        decompress(broken, 1 << 20)


def test_bytes_not_gzip_are_the_profile_itself_within_the_limit():
    raw = zlib.compress(b"not gzip")  # zlib's header, not gzip's
    assert decompress(raw, 1 << 20) == raw
    with pytest.raises(ProfileTooLarge, match="larger than the decompressed limit"):
        decompress(bytes(2000), 1000)
