"""How user input is quoted in an error message: spelled as JSON and cut short.

One helper for every message that repeats what a caller sent, so a 6,000-character id, a lone
surrogate or a control character never comes back whole or raw.
"""
from __future__ import annotations

import json
from typing import Any

MAX_ECHO_CHARS = 100


def echo(value: Any, limit: int = MAX_ECHO_CHARS) -> str:
    """`value` as JSON text (ASCII-escaped, so it is always printable and encodable), at most
    about `limit` characters of it, saying how long a cut string or text was."""
    if isinstance(value, str):
        if len(value) <= limit:
            return json.dumps(value)
        return f"{json.dumps(value[:limit])[:-1]}…\" ({len(value)} characters)"
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):  # not JSON (bytes, a huge int): name the type only
        return type(value).__name__
    if len(text) <= limit:
        return text
    return f"{text[:limit]}… ({len(text)} characters)"
