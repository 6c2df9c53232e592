"""The sample types of a merged pprof file, as `go tool pprof a.pb.gz b.pb.gz` merges its
profiles (profile.CompatibilizeSampleTypes): the types every profile has, by name, in the first
profile's order, each profile's values picked from its first column of that name.

Where pprof then converts one type's units into one (measurement.ScaleProfiles: milliseconds
into nanoseconds), this refuses: proftask's analysis keeps `cpu/milliseconds` and
`cpu/nanoseconds` apart as two types, and an export merges what the analysis merges."""
from __future__ import annotations

from collections.abc import Sequence

from proftask.core.echo import echo


class SampleTypesDisagree(ValueError):
    """The profiles cannot be merged into one pprof file; the message says why."""


def merged_sample_types(type_lists: Sequence[Sequence[str]]) -> tuple[list[str], list[list[int]]]:
    """("type/unit" of the merge, per profile the 0-based column of each in its values). Profiles
    of one list keep it whole, a name given twice included (pprof would drop that name: it reads
    the export by its own rule)."""
    if not type_lists:
        return [], []
    first = list(type_lists[0])
    if all(list(types) == first for types in type_lists):
        return first, [list(range(len(first))) for _ in type_lists]
    names = [[t.partition("/")[0] for t in types] for types in type_lists]
    common = [t for t, name in zip(first, names[0], strict=True) if all(name in n for n in names[1:])]
    common = list(dict.fromkeys(common))  # pprof looks each name up once (its first column)
    if not common:
        raise SampleTypesDisagree("the chosen instances have no sample type in common, so no pprof file merges "
                                  "them (go tool pprof refuses them too); choose them with instanceIds")
    columns = []
    for types, n in zip(type_lists, names, strict=True):
        picked = [n.index(t.partition("/")[0]) for t in common]
        for t, at in zip(common, picked, strict=True):
            if types[at] != t:
                raise SampleTypesDisagree(
                    f"the chosen instances measure {echo(t.partition('/')[0])} in different units ({echo(t)} and "
                    f"{echo(types[at])}), which proftask analyses as two types and does not merge into one pprof "
                    "file; choose them with instanceIds")
        columns.append(picked)
    return common, columns
