"""From uploaded bytes to a validated Profile message."""
from __future__ import annotations

import functools
import zlib
from collections.abc import Callable
from itertools import chain

import numpy as np

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError

from proftask.core.value_range import INT64_MAX, INT64_MIN, merged_sum_beyond_int64
from proftask.pprof.v1 import profile_pb2

GZIP_MAGIC = b"\x1f\x8b"
# The frames of a profile's distinct stacks (stack_frames) that proftask folds, at most. A small
# profile can spell tens of millions (one location of 5,000 inlined lines, 5,000 times in one
# sample: 40 KB, 25M frames), whose fold runs out of memory. The Go check refuses the same
# (native/fold/fold.go, MaxStackFrames). The most of the conformance corpus: 992,028 frames
# (go/pyroscope-heap_go_truncated_3); bench/big_profile.py's 30 MiB profile: ~643,000.
MAX_STACK_FRAMES = 1 << 22
# ... and those frames once for each sample type, at most: the fold keeps a node table per sample
# type, so a 29 KB profile of 2^22 frames and 64 types took ~28 GB (one frame-deep stack, each
# type ~190 MB). The most of the conformance corpus: 1,000,004 (large/pprof-large: 2 types).
MAX_FRAME_VALUES = 1 << 24
# Each sample type is folded, stored (a row per type and granularity) and listed in every answer:
# a 747-byte upload of 65,537 types passed the check and was never stored (type_index is a
# UInt16), and one of 200,000 held the processor for two minutes. Go profiles have 1 to 4.
MAX_SAMPLE_TYPES = 256
# The bytes of the function names of every location's lines (each line counts its function's
# name or system name, the longer), at most: a line-level frame is named `function:line`, so one
# 64 KB name on 4,096 lines of distinct numbers (6 KB gzipped, no sample at all) folded into
# 256 MB of frame names. The most of the conformance corpus: 851,514 bytes.
MAX_NAME_BYTES = 1 << 26
# What decoding costs before any of the checks above can run: each entry of a repeated field is
# an object (a Sample, a Line, a string...), ~100 bytes decoded in Go and ~175 in upb even when it
# is 2 bytes on the wire, and a packed number of 1 byte is 8 decoded: 16 MB of empty samples
# (15 KB gzipped) took ~811 MB in Go and 1.4 GB in upb. check_wire_counts counts on the wire,
# before anything is decoded, and refuses past these (the Go check refuses the same, in the same
# words, native/fold/wire.go):
# - entries: samples, locations, functions, mappings, strings, sample types, the period type,
#   labels, lines. The most of the conformance corpus: 113,269 (large/pprof-large); a 30 MiB
#   bench/big_profile.py profile: ~1.52M (5.5 times under). At the bound, ~0.85 GB in Go, ~1.5 GB
#   in upb (chosen over 5 << 20: a dense real profile near 30 MiB gzipped must go through).
# - numbers: location ids, values and comments, a packed one counted by its bytes (its most).
#   The most of the corpus: 1,934,626 (go/pyroscope-heap_go_truncated_3); the 30 MiB profile:
#   ~2.13M. At the bound, 0.5 GB decoded.
# - fields read by the scan (the profile's, its samples' and its locations'), which bound its
#   time: the most of the corpus: 244,630; the 30 MiB profile: ~2.35M; the Java profile of the
#   corpus scaled to 30 MiB gzipped: ~31M.
MAX_WIRE_ENTRIES = 1 << 23
MAX_WIRE_NUMBERS = 1 << 26
MAX_WIRE_FIELDS = 1 << 25


class ProfileError(ValueError):
    """The bytes are not a valid profile; str() says why (shown to the operator)."""


class ProfileTooLarge(ProfileError):
    """The profile inflates past the decompressed-size limit."""


def is_gzip(data: bytes) -> bool:
    """Compression is detected from the bytes, never from a file name."""
    return data[:2] == GZIP_MAGIC


class BoundedGunzip:
    """Incremental gunzip that refuses to produce more than `limit` bytes (gzip bombs), and
    accepts concatenated gzip members as gzip(1) does."""

    def __init__(self, limit: int):
        self.limit = limit
        self.produced = 0
        self._d = zlib.decompressobj(31)

    def feed(self, chunk: bytes) -> bytes:
        out = bytearray()
        data = chunk
        while data:
            try:
                piece = self._d.decompress(data, self.limit - self.produced + 1)
            except zlib.error as e:
                raise ProfileError(f"corrupt gzip data: {e}") from None
            self.produced += len(piece)
            if self.produced > self.limit:
                raise ProfileTooLarge(f"profile inflates past the decompressed limit of {self.limit} bytes")
            out += piece
            if self._d.unconsumed_tail:
                data = self._d.unconsumed_tail
            elif self._d.eof and self._d.unused_data:
                data = self._d.unused_data  # next gzip member
                self._d = zlib.decompressobj(31)
            else:
                data = b""
        return bytes(out)

    def finish(self) -> None:
        if not self._d.eof:
            raise ProfileError("truncated gzip data (no end of stream)")


def decompress(data: bytes, limit: int) -> bytes:
    """The serialized protobuf: gunzipped when the bytes are gzip, as is otherwise."""
    if not is_gzip(data):
        if len(data) > limit:
            raise ProfileTooLarge(f"profile is larger than the decompressed limit of {limit} bytes")
        return data
    gunzip = BoundedGunzip(limit)
    out = gunzip.feed(data)
    gunzip.finish()
    return out


def parse_profile(raw: bytes) -> profile_pb2.Profile:
    """Decode and check every reference resolves, as pprof's own parser does."""
    if not raw:
        raise ProfileError("empty profile")
    check_wire_counts(raw)
    profile = profile_pb2.Profile()
    try:
        profile.ParseFromString(raw)
    except DecodeError as e:
        raise ProfileError(f"not a pprof protobuf: {e}") from None
    validate(profile, raw)
    return profile


# sample_type, sample, mapping, location, function, string_table, period_type
_PROFILE_ENTRIES = frozenset((1, 2, 3, 4, 5, 6, 11))
_SAMPLE, _LOCATION, _COMMENT = 2, 4, 13
_LABEL, _LINE = 3, 4  # in a sample, in a location
_SAMPLE_NUMBERS = frozenset((1, 2))  # location_id, value


class _Counts:
    __slots__ = ("entries", "numbers", "fields")

    def __init__(self) -> None:
        self.entries = self.numbers = self.fields = 0

    def over(self) -> bool:
        return (self.entries > MAX_WIRE_ENTRIES or self.numbers > MAX_WIRE_NUMBERS
                or self.fields > MAX_WIRE_FIELDS)


def check_wire_counts(raw: bytes) -> tuple[int, int, int]:
    """Refuses, before it is decoded, a profile whose decoding would take far more memory than
    its bytes (MAX_WIRE_ENTRIES, MAX_WIRE_NUMBERS, MAX_WIRE_FIELDS); answers (entries, numbers,
    fields). Only the fields of the profile and of its samples and locations are read, each once,
    and the scan stops past a bound: a few seconds at most, however large the bytes. Wire it
    cannot read ends it (the decoder then words the fault). native/fold/wire.go is the same
    scan, step for step."""
    counts = _Counts()
    _scan(raw, 0, len(raw), None, counts)
    if counts.entries > MAX_WIRE_ENTRIES:
        raise ProfileError(f"profile has too many entries: more than {MAX_WIRE_ENTRIES} samples, locations, lines, "
                           "labels, functions, mappings and strings, more than proftask decodes")
    if counts.numbers > MAX_WIRE_NUMBERS:
        raise ProfileError(f"profile has too many numbers: more than {MAX_WIRE_NUMBERS} location ids, values and "
                           "comments, more than proftask decodes")
    if counts.fields > MAX_WIRE_FIELDS:
        raise ProfileError(f"profile has too many fields: more than {MAX_WIRE_FIELDS} in the profile, its samples "
                           "and its locations, more than proftask decodes")
    return counts.entries, counts.numbers, counts.fields


def _scan(data: bytes, i: int, end: int, inside: int | None, counts: _Counts) -> bool:
    """Counts the fields of data[i:end]: the profile's (inside None) or a sample's or a
    location's (inside _SAMPLE, _LOCATION). False: stopped (a bound passed, or unreadable).
    Counted in locals, kept in counts on return and around a nested scan (a third faster)."""
    depth = 0  # inside unknown groups, whose fields are only skipped
    entries, numbers, fields = counts.entries, counts.numbers, counts.fields
    max_entries, max_numbers, max_fields = MAX_WIRE_ENTRIES, MAX_WIRE_NUMBERS, MAX_WIRE_FIELDS
    complete = False
    try:
        while i < end:
            tag = data[i]
            tag, i = (tag, i + 1) if tag < 0x80 else _varint(data, i)
            field, wire_type = tag >> 3, tag & 7
            fields += 1
            if wire_type == 2:
                size = data[i]
                size, i = (size, i + 1) if size < 0x80 else _varint(data, i)
                if i + size > end:
                    break
                if depth == 0:
                    if inside is None:
                        if field in _PROFILE_ENTRIES:
                            entries += 1
                            if field == _SAMPLE or field == _LOCATION:
                                counts.entries, counts.numbers, counts.fields = entries, numbers, fields
                                nested = _scan(data, i, i + size, field, counts)
                                entries, numbers, fields = counts.entries, counts.numbers, counts.fields
                                if not nested:
                                    break
                        elif field == _COMMENT:
                            numbers += size
                    elif inside == _SAMPLE:
                        if field == _LABEL:
                            entries += 1
                        elif field in _SAMPLE_NUMBERS:
                            numbers += size
                    elif field == _LINE:
                        entries += 1
                i += size
            elif wire_type == 0:
                _, i = _varint(data, i)
                if depth == 0 and (field == _COMMENT if inside is None else
                                   inside == _SAMPLE and field in _SAMPLE_NUMBERS):
                    numbers += 1
            elif wire_type == 1:
                i += 8
            elif wire_type == 5:
                i += 4
            elif wire_type == 3:
                depth += 1
            elif wire_type == 4 and depth > 0:
                depth -= 1
            else:
                break
            if entries > max_entries or numbers > max_numbers or fields > max_fields:
                break
        else:
            complete = i == end
    except IndexError:  # truncated
        pass
    counts.entries, counts.numbers, counts.fields = entries, numbers, fields
    return complete


def _varint(data, i: int) -> tuple[int, int]:
    """The varint at i and the index past it; IndexError when truncated or past 10 bytes."""
    byte = data[i]
    if byte < 0x80:
        return byte, i + 1
    value, shift = byte & 0x7F, 7
    while True:
        i += 1
        byte = data[i]
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i + 1
        shift += 7
        if shift > 63:
            raise IndexError("varint past 10 bytes")


def _unique_ids(kind: str, ids: list[int]) -> set[int]:
    """pprof's own rules: 0 is reserved, and an id names one entry."""
    if 0 in ids:
        raise ProfileError(f"malformed profile: found {kind} with reserved ID=0")
    unique = set(ids)
    if len(unique) != len(ids):
        raise ProfileError(f"malformed profile: duplicate {kind} IDs")
    return unique


def validate(p: profile_pb2.Profile, raw: bytes | None = None) -> None:
    """Raises ProfileError naming the first thing wrong, as pprof's own parser checks. `raw` is
    the serialized profile when the caller has it (else it is serialized again).

    A large profile has ~500k location references: read one by one from the decoded message they
    cost more than decoding it. So the references are read as columns (`_Columns`) and checked
    at once; only when those checks find something is the profile walked entry by entry
    (`_validate_exact`), which names the first fault as before."""
    _check_header(p)
    n_types = len(p.sample_type)
    columns = _checked_columns(p, n_types, p.SerializeToString() if raw is None else raw)
    values, referenced, frames_of, n_lines = columns if columns is not None else (None, None, None, None)
    if columns is None:
        _validate_exact(p)  # raises, unless a false alarm (a field written twice): then the sums
    check_sums_fit(p, n_types, values)
    check_stack_frames(p, referenced, frames_of)
    check_name_bytes(p, n_lines)


def _check_header(p: profile_pb2.Profile) -> Callable[[int, str], None]:
    """Checks the string table and the sample types; answers the check of a string index."""
    n_strings = len(p.string_table)
    if n_strings == 0 or p.string_table[0] != b"":
        raise ProfileError("string_table must start with the empty string")

    def check_str(index: int, what: str) -> None:
        if not 0 <= index < n_strings:
            raise ProfileError(f"{what} refers to string {index}, but the string table has {n_strings}")

    if not p.sample_type:
        raise ProfileError("profile has no sample types")
    if len(p.sample_type) > MAX_SAMPLE_TYPES:
        raise ProfileError(f"profile has {len(p.sample_type)} sample types, more than the {MAX_SAMPLE_TYPES} "
                           "proftask folds")
    for vt in p.sample_type:
        check_str(vt.type, "sample_type.type")
        check_str(vt.unit, "sample_type.unit")
    check_str(p.default_sample_type, "default_sample_type")
    return check_str


@functools.cache
def _columns() -> _Columns:
    return _Columns()


class _Columns:
    """The wire format read with other schemas: a Profile's samples, locations and functions as
    raw bytes, and their concatenation parsed as one message whose fields are all repeated. A
    repeated field of concatenated messages is the concatenation of theirs, so the sample
    references and values come out exact, in order, in one C-level parse. A singular field
    (a function's name index, a line's function id) comes out once per occurrence on the wire:
    zeros are left out and a field written twice shows both values, so those columns are only
    checked for range, never aligned to their messages."""

    def __init__(self):
        f = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(name="proftask_pprof_columns.proto", package="proftask_columns",
                                                   syntax="proto3")

        def message(name: str, fields: list[tuple[str, int, int]]) -> None:
            m = proto.message_type.add(name=name)
            for field_name, number, kind in fields:
                m.field.add(name=field_name, number=number, type=kind, label=f.LABEL_REPEATED)

        message("Parts", [("sample", 2, f.TYPE_BYTES), ("location", 4, f.TYPE_BYTES), ("function", 5, f.TYPE_BYTES)])
        message("Samples", [("location_id", 1, f.TYPE_UINT64), ("value", 2, f.TYPE_INT64), ("label", 3, f.TYPE_BYTES)])
        message("Labels", [("key", 1, f.TYPE_INT64), ("str", 2, f.TYPE_INT64)])
        message("Locations", [("line", 4, f.TYPE_BYTES)])
        message("Lines", [("function_id", 1, f.TYPE_UINT64)])
        message("Functions", [("name", 2, f.TYPE_INT64), ("system_name", 3, f.TYPE_INT64),
                              ("filename", 4, f.TYPE_INT64)])
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        for name in ("Parts", "Samples", "Labels", "Locations", "Lines", "Functions"):
            setattr(self, name, message_factory.GetMessageClass(pool.FindMessageTypeByName(f"proftask_columns.{name}")))

    def parse(self, kind: str, data: bytes):
        message = getattr(self, kind)()
        message.ParseFromString(data)
        return message


def _in_range(column, n: int) -> bool:
    if not len(column):
        return True
    a = np.array(column, dtype=np.int64)
    return bool(a.min() >= 0 and a.max() < n)


def _checked_columns(p: profile_pb2.Profile, n_types: int,
                     raw: bytes) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], int], int] | None:
    """The samples' values [n, n_types], their location ids (all samples' lists, one after the
    other), the locations' _location_frames and their lines' number when every reference
    resolves; None when some check fails (or may: the exact walk decides)."""
    n_strings = len(p.string_table)
    c = _columns()
    try:
        parts = c.parse("Parts", raw)
        samples = c.parse("Samples", b"".join(parts.sample))
        labels = c.parse("Labels", b"".join(samples.label))
        lines = c.parse("Lines", b"".join(c.parse("Locations", b"".join(parts.location)).line))
        fns = c.parse("Functions", b"".join(parts.function))
    except DecodeError:
        return None
    function_ids = [f.id for f in p.function]
    location_ids, location_lines = [], []
    for loc in p.location:  # one walk: each location costs a message object
        location_ids.append(loc.id)
        location_lines.append(len(loc.line))
    for ids in (function_ids, location_ids):
        if 0 in ids or len(set(ids)) != len(ids):
            return None
    if not all(_in_range(col, n_strings) for col in (fns.name, fns.system_name, fns.filename,
                                                     labels.key, labels.str)):
        return None
    line_functions = np.unique(np.array(lines.function_id, dtype=np.uint64))
    line_functions = line_functions[line_functions != 0]
    if not np.isin(line_functions, np.array(function_ids, dtype=np.uint64)).all():
        return None
    referenced = np.array(samples.location_id, dtype=np.uint64)
    if not np.isin(referenced, np.array(location_ids, dtype=np.uint64)).all():
        return None
    n = len(p.sample)
    if len(samples.value) != n * n_types or any(len(s.value) != n_types for s in p.sample):
        return None
    return (np.array(samples.value, dtype=np.int64).reshape(n, n_types), referenced,
            _location_frames(p, location_ids, location_lines), sum(location_lines))


def _validate_exact(p: profile_pb2.Profile) -> None:
    """validate, entry by entry: raises naming the first fault in the profile's order."""
    check_str = _check_header(p)
    n_strings = len(p.string_table)
    # Checked column-wise: a large profile has tens of thousands of functions and locations.
    functions = _unique_ids("function", [f.id for f in p.function])
    for what, indexes in (("name", [f.name for f in p.function]), ("system_name", [f.system_name for f in p.function]),
                          ("filename", [f.filename for f in p.function])):
        if indexes and (min(indexes) < 0 or max(indexes) >= n_strings):
            bad = next(i for i in indexes if not 0 <= i < n_strings)
            raise ProfileError(f"a function {what} refers to string {bad}, but the string table has {n_strings}")
    locations = _unique_ids("location", [loc.id for loc in p.location])
    line_functions = {line.function_id for loc in p.location for line in loc.line}
    line_functions.discard(0)
    if not line_functions <= functions:
        raise ProfileError(f"a location refers to unknown function {min(line_functions - functions)}")
    n_types = len(p.sample_type)
    referenced = np.fromiter(chain.from_iterable(s.location_id for s in p.sample), dtype=np.uint64)
    unknown = ~np.isin(referenced, np.fromiter(locations, dtype=np.uint64, count=len(locations)))
    if unknown.any():
        raise ProfileError(f"a sample refers to unknown location {int(referenced[unknown][0])}")
    for i, s in enumerate(p.sample):
        if len(s.value) != n_types:
            raise ProfileError(f"sample {i} has {len(s.value)} values for {n_types} sample types")
        for label in s.label:
            check_str(label.key, f"sample {i} label key")
            check_str(label.str, f"sample {i} label value")


def check_sums_fit(p: profile_pb2.Profile, n_types: int, values: np.ndarray | None = None) -> None:
    """Every node of the tree sums some of the samples' values in 64 bits, as the tables and the
    tree do. Those sums all fit when the positive values together and the negative ones together
    do; a profile where they do not is refused, since its totals would be wrong (pprof itself
    sums in arbitrary precision)."""
    n = len(p.sample)
    if n == 0:
        return
    if values is None:
        values = np.fromiter(chain.from_iterable(s.value for s in p.sample), dtype=np.int64,
                             count=n * n_types).reshape(n, n_types)
    magnitude = max(int(values.max()), -int(values.min()))
    if magnitude * n <= INT64_MAX:  # the common case: no sum can leave the range
        return
    names = [p.string_table[vt.type].decode("utf-8", "replace") for vt in p.sample_type]
    for t in range(n_types):
        column = values[:, t].tolist()  # Python ints: exact
        beyond = merged_sum_beyond_int64([(sum(v for v in column if v > 0), sum(v for v in column if v < 0))])
        if beyond is not None:
            raise ProfileError(f"the values of sample type {names[t]!r} sum to {beyond}, beyond the 64-bit "
                               f"range of totals ({INT64_MIN}..{INT64_MAX}); refused rather than shown wrong")


def _location_frames(p: profile_pb2.Profile, ids: list[int] | None = None,
                     lines: list[int] | None = None) -> Callable[[np.ndarray], int]:
    """The frames of a list of (known) location ids: each location folds to its lines (the
    calls inlined into it and itself), or to its address when it has none. `ids` and `lines`:
    each location's id and number of lines, when the caller has them."""
    if ids is None or lines is None:
        ids, lines = [loc.id for loc in p.location], [len(loc.line) for loc in p.location]
    id_array = np.array(ids, dtype=np.uint64)
    sizes = np.maximum(np.array(lines, dtype=np.int64), 1)
    if not len(ids):
        return lambda refs: 0
    if int(id_array.max()) < 4 * len(ids) + 1024:  # ids about 1..n, as pprof writes them: a table
        table = np.zeros(int(id_array.max()) + 1, dtype=np.int64)
        table[id_array] = sizes
        return lambda refs: int(table[refs].sum())
    order = np.argsort(id_array)
    return lambda refs: int(sizes[order[np.searchsorted(id_array, refs, sorter=order)]].sum())


def stack_frames(p: profile_pb2.Profile, frames_of: Callable[[np.ndarray], int] | None = None) -> int:
    """The frames the fold makes of a valid profile: those of each distinct location list among
    its samples (samples with the same list are one stack), summed."""
    distinct = {tuple(s.location_id) for s in p.sample}
    return (frames_of or _location_frames(p))(np.fromiter(chain.from_iterable(distinct), dtype=np.uint64))


def check_stack_frames(p: profile_pb2.Profile, referenced: np.ndarray | None = None,
                       frames_of: Callable[[np.ndarray], int] | None = None) -> None:
    """Refuses a profile whose distinct stacks hold more than MAX_STACK_FRAMES frames, or more
    than MAX_FRAME_VALUES frames times its sample types: folding it would take gigabytes.
    `referenced` is every sample's location ids in order, when the caller has them. Cheap: the
    frames of all samples' lists are summed in numpy, an upper bound of the distinct ones; only a
    profile over a bound has its distinct lists counted. `frames_of`: the profile's
    _location_frames, when the caller has it."""
    frames_of = frames_of or _location_frames(p)
    if referenced is None:
        referenced = np.fromiter(chain.from_iterable(s.location_id for s in p.sample), dtype=np.uint64)
    n_types = max(len(p.sample_type), 1)
    per_type = MAX_FRAME_VALUES // n_types  # frames × n_types > MAX_FRAME_VALUES ⇔ frames > this
    if frames_of(referenced) <= min(MAX_STACK_FRAMES, per_type):
        return
    count = stack_frames(p, frames_of)
    if count > MAX_STACK_FRAMES:
        raise ProfileError(f"its stacks hold {count} frames (each distinct list of locations of its samples, "
                           f"inlined calls counted), more than the {MAX_STACK_FRAMES} proftask folds")
    if count > per_type:
        raise ProfileError(f"its stacks hold {count} frames (each distinct list of locations of its samples, "
                           f"inlined calls counted) for each of its {n_types} sample types: {count * n_types} "
                           f"values, more than the {MAX_FRAME_VALUES} proftask folds")


def name_bytes(p: profile_pb2.Profile) -> int:
    """The bytes of the function names of every line of every location (each line counts its
    function's name or system name, the longer; a line without a function counts nothing)."""
    strings = p.string_table
    size = {f.id: max(len(strings[f.name]), len(strings[f.system_name])) for f in p.function}
    return sum(size.get(line.function_id, 0) for loc in p.location for line in loc.line)


def check_name_bytes(p: profile_pb2.Profile, n_lines: int | None = None) -> None:
    """Refuses a profile whose lines name more than MAX_NAME_BYTES bytes of functions (name_bytes):
    its frame names (`function:line`, each distinct line once) would take gigabytes. Cheap: the
    lines (n_lines: all locations' lines, when the caller has them) times the longest string bound
    it; only a profile over the bound is counted exactly."""
    if n_lines is None:
        n_lines = sum(len(loc.line) for loc in p.location)
    if n_lines * max(map(len, p.string_table), default=0) <= MAX_NAME_BYTES:
        return
    count = name_bytes(p)
    if count > MAX_NAME_BYTES:
        raise ProfileError(f"the functions of its locations' lines are named in {count} bytes (each line counts "
                           f"its function's name), more than the {MAX_NAME_BYTES} proftask folds")
