"""Digest of every bundled scenario's result files, to show that a change kept outputs identical.

Usage::

    python tools/outputs_digest.py > before.txt     # on the old commit
    python tools/outputs_digest.py > after.txt      # on the new one
    diff before.txt after.txt                       # empty: byte-identical

Each scenario under ``scenarios/`` is run with ``lbsim run`` into a temporary folder, and
the SHA-256 of each result file in :data:`FILES` (all but the manifest, which has times)
is printed, one line per file. A scenario that does not run prints its exit code.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
from pathlib import Path

FILES = (
    "summary.json", "members.csv", "transitions.csv", "status.json", "timeseries.csv",
    "latency.csv", "api.csv", "expectations.csv", "incidents.csv", "stats.csv",
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", default="scenarios", help="folder of scenarios (default: scenarios)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        for i, scenario in enumerate(sorted(Path(args.root).rglob("*.yaml"))):
            out = Path(tmp) / str(i)
            rc = subprocess.run(
                [sys.executable, "-m", "lbsim.cli", "run", str(scenario), "--out", str(out), "--quiet"],
                capture_output=True,
                check=False,
            ).returncode
            if rc not in (0, 1):
                print(f"{scenario}: exit {rc}")
                continue
            for name in FILES:
                f = out / name
                digest = hashlib.sha256(f.read_bytes()).hexdigest() if f.is_file() else "missing"
                print(f"{digest}  {scenario}:{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
