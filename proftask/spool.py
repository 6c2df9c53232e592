"""Where file-mode uploads are spooled (memoryParserEnabled: false): a directory proftask owns,
files named with the pid of the process that writes them. A process killed mid-upload cannot
remove its file; the next start removes every file whose process is gone, and never a file of
a live proftask process sharing the directory."""
from __future__ import annotations

import os
import pathlib
import re
import tempfile

PREFIX = "proftask-upload-"
SUFFIX = ".pprof"
_NAME = re.compile(re.escape(PREFIX) + r"(\d+)-.*" + re.escape(SUFFIX) + "$")

_directory: pathlib.Path | None = None  # None: the system's temporary directory (no server start)


def use_directory(directory: pathlib.Path) -> list[pathlib.Path]:
    """Spool into directory from now on (created if missing); returns the stale files removed."""
    global _directory
    directory.mkdir(parents=True, exist_ok=True)
    _directory = directory
    return remove_stale(directory)


def create_file() -> tuple[int, str]:
    """A new spool file, open for writing: (fd, path), as tempfile.mkstemp."""
    return tempfile.mkstemp(prefix=f"{PREFIX}{os.getpid()}-", suffix=SUFFIX, dir=_directory)


def remove_stale(directory: pathlib.Path) -> list[pathlib.Path]:
    removed = []
    for path in directory.glob(f"{PREFIX}*{SUFFIX}"):
        m = _NAME.match(path.name)
        if m and not _proftask_alive(int(m.group(1))):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


def _proftask_alive(pid: int) -> bool:
    """A running (not zombie) proftask process: a pid reused by another program does not count."""
    proc = pathlib.Path(f"/proc/{pid}")
    try:
        state = (proc / "stat").read_text().rsplit(")", 1)[1].split()[0]
        cmdline = (proc / "cmdline").read_bytes()
    except (OSError, IndexError):
        return False
    return state != "Z" and b"proftask" in cmdline
