"""The shared oracle (../shared/tools/pprof_oracle.py, `go tool pprof -raw` folded into a tree),
loaded as a module, with two adjustments that leave its semantics alone:

- `go tool pprof -raw` output is cached per file, so one file is decoded by Go once per run;
- `line` granularity: Go ≥ 1.2x prints `file:line:column`, and the oracle's LINE pattern takes
  the column for the line (every frame becomes `fn:0`). `oracle_tree(..., fixed_lines=True)`
  parses `file:line[:column]` instead; with False it is the oracle exactly as shipped.
"""
from __future__ import annotations

import functools
import importlib.util
import pathlib
import re
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
CONFORMANCE = SHARED / "conformance"
ORACLE_PATH = SHARED / "tools" / "pprof_oracle.py"

FIXED_LINE = re.compile(r"^(.*?)\s*(\S*?):(-?\d+|\?\?)(?::-?\d+)? s=-?\d+(?:\(.*\))?$")


def require_conformance() -> pathlib.Path:
    if not CONFORMANCE.is_dir() or not ORACLE_PATH.exists():
        pytest.fail(f"the conformance corpus is missing at {CONFORMANCE}: the conformance tier needs ../shared (a checkout of the project's shared folder beside this repository)", pytrace=False)
    return CONFORMANCE


@functools.cache
def _raw(path: str) -> bytes:
    return subprocess.run(["go", "tool", "pprof", "-raw", path], capture_output=True, check=True).stdout


class _CachedRun:
    @staticmethod
    def run(args, **kwargs):
        return subprocess.CompletedProcess(args, 0, stdout=_raw(args[-1]), stderr=b"")


@functools.lru_cache(maxsize=2)
def _oracle_module(fixed_lines: bool):
    spec = importlib.util.spec_from_file_location(f"pprof_oracle_{fixed_lines}", ORACLE_PATH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.subprocess = _CachedRun
    if fixed_lines:
        module.LINE = FIXED_LINE
    return module


def oracle_tree(paths, sample_type=None, granularity="function", fixed_lines=True) -> dict:
    return _oracle_module(fixed_lines).tree([str(p) for p in paths], sample_type, granularity)


def raw_sample_types(path) -> list[str]:
    text = _raw(str(path)).decode("utf-8", "replace").splitlines()
    return [t.removesuffix("[dflt]") for t in text[text.index("Samples:") + 1].split()]


# Files go tool pprof can fold; edge cases with their own expectations are listed apart.
def oracle_files() -> list[pathlib.Path]:
    base = require_conformance()
    files = sorted((base / "go").iterdir()) + [base / "large" / "pprof-large.cpu.pb.gz"]
    files += [base / "edge" / n for n in ("parca-empty-sample-type.pb.gz", "parca-no-python.pb.gz",
                                          "parca-stripped-cpu.pprof", "pprof-go.nomappings.crash.pb.gz",
                                          "pyroscope-heap.uncompressed.pb", "pyroscope-no_addr_no_line.pb.gz",
                                          "pyroscope-profile.uncompressed")]
    files += sorted((base / "other").iterdir())
    return files
