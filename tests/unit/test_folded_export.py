"""The folded export's lines: one frame between each `;`, one stack a line, whatever the names;
and the speedscope export, the same file for the same stacks."""
import itertools
import json

from proftask.core.exports import to_folded, to_speedscope

GENERIC = "main.Work[go.shape.struct { A int; B string }]"  # a Go 1.18+ generic, as pprof names it


def _frames_by_line(text: str) -> list[tuple[list[str], int]]:
    """As flamegraph.pl and speedscope read a folded file."""
    out = []
    for line in text.splitlines():
        stack, value = line.rsplit(" ", 1)
        out.append((stack.split(";"), int(value)))
    return out


def test_a_go_generic_name_holding_a_semicolon_stays_one_frame():
    text = to_folded([(["runtime.main", "main.main", GENERIC], 10_000_000)])
    assert _frames_by_line(text) == [(["runtime.main", "main.main", "main.Work[go.shape.struct { A int, B string }]"],
                                      10_000_000)]


def test_a_name_with_a_line_break_stays_on_its_line_and_every_value_is_kept():
    text = to_folded([(["main.main", "evil\nmain.fake;x 99"], 5), (["main.main"], 7)])
    assert _frames_by_line(text) == [(["main.main"], 7), (["main.main", "evil main.fake,x 99"], 5)]
    assert sum(v for _, v in _frames_by_line(text)) == 12


def test_a_frame_holding_a_semicolon_is_not_two_frames_and_lookalikes_are_one_line():
    # one frame "a;b" and two frames a, b: two lines, not one line of 3 (the `;` joined them)
    assert _frames_by_line(to_folded([(["a;b"], 1), (["a", "b"], 2)])) == [(["a,b"], 1), (["a", "b"], 2)]
    # "a;b" and "a,b" are one line: the format cannot tell them apart
    assert _frames_by_line(to_folded([(["a;b"], 1), (["a,b"], 2)])) == [(["a,b"], 3)]


def test_a_speedscope_export_of_the_same_stacks_in_another_order_is_the_same_file():
    """The stacks come in the order of the query's rows, which changes from one request to the
    next on a large profile: the file's frames and samples changed with it."""
    stacks = [(["main", "a", "x"], 3), (["main", "b"], 5), (["main", "a"], 2), (["main", "a", "x"], 4), (["c"], 1)]
    docs = {json.dumps(to_speedscope("t", "cpu/nanoseconds", order)) for order in itertools.permutations(stacks)}
    assert len(docs) == 1
    (doc,) = docs
    assert json.loads(doc)["profiles"][0]["weights"] == [1, 2, 3, 4, 5]
