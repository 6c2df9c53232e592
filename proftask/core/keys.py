"""Names joined into one key text (ids derived from it, Kafka keys), one text per tuple of names."""
from __future__ import annotations


def joined_names(*names: str) -> str:
    """The names joined by '/', each with its own '%' and '/' escaped: service `x/y` with instance
    `z` and service `x` with instance `y/z` are two keys, not one. Names with neither character
    are joined as they are, so keys and ids made before escaping stay the same."""
    return "/".join(name.replace("%", "%25").replace("/", "%2F") for name in names)
