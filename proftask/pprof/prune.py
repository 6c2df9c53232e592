"""pprof's RemoveUninteresting, which `go tool pprof` applies to every profile it reads: a
profile's drop_frames (and keep_frames) regexps cut the frames they name, and those beneath, from
its stacks (github.com/google/pprof/profile/prune.go, Prune). native/fold/prune.go is the same in
Go, which folds nearly every profile; this is the Python fold's. Python's `re` reads the regexps:
one RE2 reads otherwise (a syntax only one of them knows) would cut otherwise here, in the fold
of a profile Go declined. A regexp that does not compile cuts nothing, as pprof ignores the
error."""
from __future__ import annotations

import re

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


_LEADING_FLAGS = re.compile(r"\(\?([ims]+)\)")


def _compiled(pattern: str) -> re.Pattern | None:
    """pprof's `^(pattern)$`, matched anywhere as Go's MatchString matches (the anchors make it
    whole). Python takes flags such as `(?i)` only at the very start, where RE2 takes them
    anywhere: leading ones become a group of those flags around the rest."""
    flags = _LEADING_FLAGS.match(pattern)
    if flags:
        pattern = f"(?{flags.group(1)}:{pattern[flags.end():]})"
    try:
        return re.compile(f"^({pattern})\\Z")
    except re.error:
        return None


def prune(p: profile_pb2.Profile, strings: list[str]) -> None:
    """Applies p's drop_frames and keep_frames to its locations and samples, in place (`strings`:
    its string table as text)."""
    def text(i: int) -> str:
        return strings[i] if 0 < i < len(strings) else ""

    drop_frames, keep_frames = text(p.drop_frames), text(p.keep_frames)
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
