"""pprof's RemoveUninteresting, which `go tool pprof` applies to every profile it reads: a
profile's drop_frames (and keep_frames) regexps cut the frames they name, and those beneath, from
its stacks (github.com/google/pprof/profile/prune.go, Prune). native/fold/prune.go is the same in
Go, which folds nearly every profile; this is the Python fold's. RE2 reads the regexps, as Go's
regexp does: the same syntax, and time linear in the name (Python's `re` backtracks: a crafted
drop_frames held a worker for days). A regexp that does not compile, or is not UTF-8, cuts
nothing, as pprof ignores the error.
"""
from __future__ import annotations

import re

import re2

from proftask.pprof.names import display_name
from proftask.pprof.v1 import profile_pb2

_RESERVED = ("(anonymous namespace)", "operator()")
_BRACKET = re.compile(r"\(anonymous namespace\)|operator\(\)|\(")


def simplify_func(name: str) -> str:
    """pprof's simplifyFunc: the name without its argument list (from the first '(' not part of a
    reserved name) and a leading '.'."""
    name = name.removeprefix(".")
    for m in _BRACKET.finditer(name):
        if m.group() not in _RESERVED:
            return name[:m.start()]
    return name


_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a regexp that does not compile is the profile's, not ours to log


def _compiled(pattern: bytes):
    """pprof's regexp.Compile("^(" + pattern + ")$"), or None where it fails (not UTF-8, or
    not a regexp)."""
    try:
        return re2.compile(f"^({pattern.decode('utf-8')})$", options=_RE2_OPTIONS)
    except (UnicodeDecodeError, re2.error):
        return None


def _raw(p: profile_pb2.Profile, i: int) -> bytes:
    """String i of p as its bytes ("" for 0 or out of range)."""
    return p.string_table[i] if 0 < i < len(p.string_table) else b""


def regexps_not_utf8(p: profile_pb2.Profile) -> bool:
    """Whether a drop_frames or keep_frames of p is not UTF-8, which pprof does not compile and
    so cuts nothing (for whoever rewrites the strings of p as UTF-8 before folding it)."""
    for i in (p.drop_frames, p.keep_frames):
        try:
            _raw(p, i).decode("utf-8")
        except UnicodeDecodeError:
            return True
    return False


def prune(p: profile_pb2.Profile, strings: list[str]) -> None:
    """Applies p's drop_frames and keep_frames to its locations and samples, in place (`strings`:
    its string table as text)."""
    def text(i: int) -> str:
        return strings[i] if 0 < i < len(strings) else ""

    drop_frames, keep_frames = _raw(p, p.drop_frames), _raw(p, p.keep_frames)
    if not drop_frames:
        return
    drop = _compiled(drop_frames)
    keep = _compiled(keep_frames) if keep_frames else None
    if drop is None or (keep_frames and keep is None):
        return
    # matched as pprof matches them: after its symbolizer named them (display_name)
    names = {f.id: display_name(text(f.name), text(f.system_name)) for f in p.function}
    cache: dict[str, bool] = {}

    def prune_from_here(name: str) -> bool:
        if name not in cache:
            simple = simplify_func(name)
            cache[name] = bool(drop.search(simple)) and not (keep is not None and keep.search(simple))
        return cache[name]

    pruned, beneath = set(), set()
    for loc in p.location:
        i = len(loc.line) - 1
        while i >= 0:  # from the outermost caller
            name = names.get(loc.line[i].function_id, "")
            if name and prune_from_here(name):
                break
            i -= 1
        if i < 0:
            continue
        beneath.add(loc.id)
        if i == len(loc.line) - 1:
            pruned.add(loc.id)
        else:
            del loc.line[:i + 1]
    if not beneath:
        return
    for sample in p.sample:
        ids = sample.location_id  # leaf first
        user = False  # frames before the first that is not pruned stay: not everything goes
        for i in range(len(ids) - 1, -1, -1):
            if ids[i] not in pruned and ids[i] not in beneath:
                user = True
                continue
            if not user:
                continue
            del ids[:i + 1 if ids[i] in pruned else i]
            break
