"""Ids and Kafka keys made of several names: one per tuple of names, whatever the names hold."""
from __future__ import annotations

import hashlib
import uuid

from proftask.ingest import upload as upload_module
from proftask.ingest.upload import profile_id
from proftask.kafka.topics import agent_key


def test_names_with_a_slash_cannot_make_two_instances_uploads_one_profile():
    digest = hashlib.sha256(b"p").digest()
    assert profile_id("acme", "t-1", "i", "z/key:w", digest) != profile_id("acme", "t-1", "i/key:z", "w", digest)
    assert profile_id("acme", "t/1", "i", "k", digest) != profile_id("acme", "t", "1/i", "k", digest)
    assert profile_id("acme", "t-1", "a%2Fb", "k", digest) != profile_id("acme", "t-1", "a/b", "k", digest)
    # names without '/' or '%' keep the ids uploads were given before: a retry still finds its profile
    assert profile_id("acme", "t-1", "pod-1", "retry-7", digest) == str(
        uuid.uuid5(upload_module._PROFILE_NS, "acme/t-1/pod-1/key:retry-7"))


def test_agents_of_names_with_a_slash_keep_a_compaction_key_each():
    assert agent_key("acme", "x/y", "z") != agent_key("acme", "x", "y/z")
    assert agent_key("acme", "svc", "pod-1") == b"acme/svc/pod-1"  # as before: nothing to re-key

