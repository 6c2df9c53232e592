"""Function names as `go tool pprof` shows them.

pprof's symbolizer (internal/symbolizer, demangle mode "default") simplifies names that look
like demangled C++ — which includes Go generics such as `pkg.F[go.shape.int]` — by removing
parameter lists `(...)` and template arguments `<...>`. It does so only for functions whose
Name is empty or equal to SystemName (not demangled by the profiler itself). Mangled symbols
(`_Z…`, `_R…`) would first go through a C++/Rust demangler, which proftask does not have; they
are kept as written.
"""
from __future__ import annotations

import re

_CPLUSPLUS_HINT = re.compile(r"[<>\[\]]|::")


def looks_like_demangled_cplusplus(name: str) -> bool:
    if ".<" in name:  # Java: class.<init>
        return False
    if "])." in name:  # Go: pkg.(*T[...]).Method
        return False
    return _CPLUSPLUS_HINT.search(name) is not None


def remove_matching(name: str, start: str, end: str) -> str:
    """Remove nested start..end groups; on a mismatch give the name back unchanged past it (the
    groups before it removed, as pprof's loop leaves them). One pass over the delimiters: cutting
    each group out and searching again from its start took O(len²), seconds for a 100 KB name."""
    kept: list[str] = []
    nesting = first = copied = 0
    for m in re.finditer(f"[{re.escape(start)}{re.escape(end)}]", name):
        i = m.start()
        if name[i] == start:
            nesting += 1
            if nesting == 1:
                first = i
        else:
            nesting -= 1
            if nesting < 0:
                break
            if nesting == 0:
                kept.append(name[copied:first])
                copied = i + 1
    return "".join(kept) + name[copied:] if copied else name


def display_name(name: str, system_name: str) -> str:
    if name and system_name != name:
        return name  # already demangled by the profiler
    shown = system_name
    if looks_like_demangled_cplusplus(shown):
        shown = remove_matching(shown, "(", ")")
        shown = remove_matching(shown, "<", ">")
    return shown
