"""`proftask analyze --format folded -o -` into a terminal: the names of a profile reach the
screen escaped, and a binary pprof is not written to it."""
from __future__ import annotations

import argparse
import io
import sys

from proftask.client.analyze_command import cmd_analyze

FOLDED = b"main.main;main.evil\x1b]0;owned\x07 12\n"


class _Server:
    """The server's answer to an export: what the command writes."""

    def get_bytes(self, path: str, **params) -> bytes:
        return FOLDED if params["format"] == "folded" else b"\x1f\x8b\x08\x00\x1b[2J"


def _run(fmt: str, tty: bool, monkeypatch) -> tuple[int, bytes]:
    out = io.BytesIO()
    stdout = io.TextIOWrapper(out)
    monkeypatch.setattr(stdout, "isatty", lambda: tty)
    monkeypatch.setattr(sys, "stdout", stdout)
    args = argparse.Namespace(task_id="t", format=fmt, output="-", instances=None, sample_type=None,
                              granularity="function")
    code = cmd_analyze(_Server(), args)
    stdout.flush()
    return code, out.getvalue()


def test_a_folded_export_on_a_terminal_is_escaped_and_through_a_pipe_as_the_server_wrote_it(monkeypatch):
    assert _run("folded", True, monkeypatch) == (0, b"main.main;main.evil\\x1b]0;owned\\x07 12\n")
    assert _run("folded", False, monkeypatch) == (0, FOLDED)


def test_a_pprof_export_is_not_written_to_a_terminal(monkeypatch, capsys):
    assert _run("pprof", True, monkeypatch) == (2, b"")
    assert _run("pprof", False, monkeypatch)[1].startswith(b"\x1f\x8b")
