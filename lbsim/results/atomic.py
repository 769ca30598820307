"""Replacing a folder atomically: the new one is complete before it takes the old one's place.

:func:`swap_into_place` exchanges a finished temporary folder with the target in one
``renameat2(RENAME_EXCHANGE)`` call on Linux (two renames elsewhere), then removes the old
contents, so that a kill at any moment leaves a complete folder at the target, the old or
the new. Temporary folders are named ``.NAME.lbsim-tmp-PID-...``; :func:`clean_stale`
removes those whose process is gone, so an interrupted save leaves nothing behind for long.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
from pathlib import Path


def umask() -> int:
    """The process's umask (read without changing it for long)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temp_prefix(out: Path) -> str:
    """The name prefix of temporary folders that will become ``out``."""
    return f".{out.name}.lbsim-tmp-"


def clean_stale(out: Path) -> None:
    """Remove temporary folders of earlier saves to ``out`` whose process has ended."""
    prefix = temp_prefix(out)
    for p in out.parent.glob(f"{glob.escape(prefix)}*"):
        pid_text = p.name[len(prefix) :].split("-", 1)[0]
        if not pid_text.isdigit() or not p.is_dir():
            continue
        pid = int(pid_text)
        if pid == os.getpid() or pid_alive(pid):
            continue  # still being written
        shutil.rmtree(p, ignore_errors=True)


def pid_alive(pid: int) -> bool:
    """True when process ``pid`` exists and is not a zombie (a killed writer that nobody
    reaped yet holds no folder open)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no procfs: trust kill(0)
    return stat.rsplit(")", 1)[-1].split()[0] not in ("Z", "X")


def swap_into_place(new: Path, out: Path) -> None:
    """Put the complete folder ``new`` at ``out``; the previous ``out`` (if any) is removed."""
    if not out.exists():
        os.replace(new, out)
        return
    if _rename_exchange(new, out):
        shutil.rmtree(new, ignore_errors=True)  # ``new`` now holds the old folder
        return
    old = Path(tempfile.mkdtemp(prefix=f"{temp_prefix(out)}{os.getpid()}-old-", dir=out.parent))
    os.rmdir(old)
    os.replace(out, old)
    os.replace(new, out)
    shutil.rmtree(old, ignore_errors=True)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux ``renameat2(RENAME_EXCHANGE)``); False if unavailable."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    rc = renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange)
    return bool(rc == 0)
