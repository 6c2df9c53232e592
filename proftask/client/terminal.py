"""Text from the server as a terminal shows it: names, instance ids and agents' messages come
from agents and profiles, and may hold control characters (a line break splits a table row, an
escape sequence rewrites the operator's screen, U+202E turns text around). Those are written as
Python escapes; every other character as it is."""
from __future__ import annotations

import unicodedata

# control, format (bidirectional overrides, zero widths), line and paragraph separators, and
# surrogates (which print() cannot encode)
_UNSHOWN = {"Cc", "Cf", "Zl", "Zp", "Cs"}


def printable(text: object) -> str:
    return "".join(c if unicodedata.category(c) not in _UNSHOWN else c.encode("unicode_escape", "backslashreplace")
                   .decode("ascii") for c in str(text))
