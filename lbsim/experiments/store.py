"""The run store: every finished run written atomically under a key that hashes its inputs."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from lbsim.experiments.common import LOG_NAME
from lbsim.results.atomic import pid_alive

# --------------------------------------------------------------------------------------
# The store
# --------------------------------------------------------------------------------------


class RunStore:
    """Finished runs, one JSON file per key, written atomically; plus a log of executions."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        """Where the record for ``key`` lives."""
        return self.folder / f"{key}.json"

    def has(self, key: str) -> bool:
        """True when the run is stored."""
        return self.path(key).is_file()

    def get(self, key: str) -> dict[str, Any]:
        """The stored record."""
        return dict(json.loads(self.path(key).read_text(encoding="utf-8")))

    def keys(self) -> list[str]:
        """Every stored key."""
        return sorted(p.stem for p in self.folder.glob("*.json"))

    def put(self, record: dict[str, Any]) -> bool:
        """Store a record (temporary file + rename); False when it was already there.

        The log line is appended after the rename, so each logged key is a run that was
        simulated and stored; a kill between the two leaves a stored, unlogged run.
        """
        key = record["key"]
        target = self.path(key)
        if target.exists():
            return False
        tmp = self.folder / f".{key}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(record, allow_nan=False), encoding="utf-8")
        os.replace(tmp, target)
        line = json.dumps(
            {
                "key": key,
                "seed": record["seed"],
                "pid": record.get("pid"),
                "wall": round(float(record.get("wall", 0.0)), 4),
            }
        )
        fd = os.open(self.folder / LOG_NAME, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\n").encode())
        finally:
            os.close(fd)
        return True

    def executed(self) -> list[str]:
        """Keys in the execution log, one per simulated run, in order."""
        log = self.folder / LOG_NAME
        if not log.is_file():
            return []
        return [json.loads(line)["key"] for line in log.read_text().splitlines() if line.strip()]

    def clean_stale(self, max_age: float = 60.0) -> int:
        """Remove temporary files left by killed writers; returns how many.

        A temporary file lives for milliseconds (write, then rename), so one whose
        writer is gone (no such process, or a zombie) or that is older than ``max_age``
        seconds is debris of a killed run.
        """
        n = 0
        now = time.time()
        for tmp in self.folder.glob(".*.tmp"):
            try:
                pid = int(tmp.name.rsplit(".", 2)[-2])
                stale = not pid_alive(pid) or now - tmp.stat().st_mtime > max_age
            except (ValueError, OSError):
                continue
            if stale:
                tmp.unlink(missing_ok=True)
                n += 1
        return n
