"""SkyWalking's ids for services and instances, pure. The OAP names a service
`base64(name) + ".1"` (the `.1` is "normal", a real service) and an instance
`serviceId + "_" + base64(instanceName)`; swctl computes these from names and sends them.
proftask keys tasks by plain names, so GraphQL accepts both forms and answers with ids."""
from __future__ import annotations

import base64
import binascii

NORMAL_SUFFIX = ".1"


def service_id(name: str) -> str:
    return base64.b64encode(name.encode()).decode() + NORMAL_SUFFIX


def instance_id(service_name: str, instance_name: str) -> str:
    return service_id(service_name) + "_" + base64.b64encode(instance_name.encode()).decode()


def _decode_b64(text: str) -> str | None:
    """The name `text` encodes, or None when it is not canonical base64 of UTF-8 (a plain name)."""
    if not text:
        return None
    try:
        raw = base64.b64decode(text, validate=True)
        name = raw.decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    if not name or base64.b64encode(raw).decode() != text:
        return None
    return name


def service_name(service: str) -> str:
    """The service's name, from its id or its name."""
    if service.endswith(NORMAL_SUFFIX):
        name = _decode_b64(service[: -len(NORMAL_SUFFIX)])
        if name is not None:
            return name
    return service


def instance_name(instance: str, service: str | None = None) -> str:
    """The instance's name, from its id (`serviceId_base64(name)`) or its name. Base64 has no
    `_`, so the first `_` ends the service part."""
    head, sep, tail = instance.partition("_")
    if sep and head.endswith(NORMAL_SUFFIX) and _decode_b64(head[: -len(NORMAL_SUFFIX)]) is not None:
        if service is None or service_name(head) == service_name(service):
            name = _decode_b64(tail)
            if name is not None:
                return name
    return instance
