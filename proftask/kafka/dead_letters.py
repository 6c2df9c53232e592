"""Poison records: what every consumer does with a record it cannot use. It logs the facts at
ERROR, counts them in /metrics (proftask_dead_letters_total{consumer,topic,reason_kind}), and
the consumers in a consumer group (decider, processor) publish a DeadLetter event to
`{prefix}dead-letters`; then they go on with the next record.

The DeadLetter's id derives from (consumer, topic, partition, offset), so a redelivered record
or a second replica of the same consumer yields the very same event.
"""
from __future__ import annotations

import logging
import uuid

from proftask import events, metrics
from proftask.events.v1 import events_pb2 as pb

log = logging.getLogger(__name__)
UNPROCESSABLE = "unprocessable"  # a valid event the consumer still failed on (reason_kind)
_DEAD_LETTER_NS = uuid.UUID("1f6c2d8e-7a43-4b5e-9c0d-3e2a1b4f5d67")


def dead_letter_id(consumer: str, topic: str, partition: int, offset: int) -> str:
    return str(uuid.uuid5(_DEAD_LETTER_NS, f"{consumer}/{topic}/{partition}/{offset}"))


def dead_letter_key(topic: str, partition: int) -> bytes:
    """Key on the dead-letter topic: a source partition's letters stay in order."""
    return f"{topic}/{partition}".encode()


def reason_kind(error: BaseException) -> str:
    """InvalidEvent says its kind; any other failure on a record is `unprocessable`."""
    return getattr(error, "kind", UNPROCESSABLE)


def dead_letter(consumer: str, topic: str, partition: int, offset: int, kind: str, reason: str,
                value: bytes | None, tenant: str = "") -> pb.Envelope:
    """Log and count one poison record; the DeadLetter event to publish (consumers without a
    group, like the task view, only log and count: see TaskView)."""
    log.error("%s: dead letter %s[%d]@%d (%s, %d bytes): %s", consumer, topic, partition, offset, kind,
              len(value or b""), reason)
    metrics.DEAD_LETTERS.labels(consumer, topic, kind).inc()
    letter = pb.DeadLetter(source_topic=topic, partition=partition, offset=offset, reason=reason,
                           original=value or b"", consumer=consumer, reason_kind=kind)
    return events.new_event(tenant or events.DEFAULT_TENANT, letter,
                            event_id=dead_letter_id(consumer, topic, partition, offset))
