"""Load-balancer and listener statistics as Octavia's API reports them (§6.2).

Octavia keeps one statistics row per (listener, amphora). Every heartbeat adds its
deltas to ``bytes_in``, ``bytes_out``, ``total_connections`` and ``request_errors`` and
overwrites ``active_connections`` with the current gauge. A listener's statistics sum its
rows; ``active_connections`` counts only rows of amphorae that are ALLOCATED, while the
cumulative counters of deleted or failed-over amphorae still count. A load balancer's
statistics are the sum of its listeners'. lbsim records every row update in
``stats.csv``; this module answers "what would the API show at time T".
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lbsim.cli.main import seconds

if TYPE_CHECKING:  # pandas and the result modules load where used: ``lbsim --help`` stays fast
    import pandas as pd

    from lbsim.octavia.timeline import Timeline

FIELDS = ("bytes_in", "bytes_out", "active_connections", "total_connections", "request_errors")


def stats_at(stats: pd.DataFrame, timeline: Timeline, at: float, listener: str | None = None) -> dict[str, int]:
    """Octavia's statistics at time ``at``: of one listener, or of the load balancer."""
    rows = stats[stats["time"] <= at]
    if listener is not None:
        rows = rows[rows["listener"] == listener]
    latest = rows.groupby(["listener", "amphora"], sort=True).tail(1)
    out = {f: 0 for f in FIELDS}
    for rec in latest.to_dict("records"):
        for f in ("bytes_in", "bytes_out", "total_connections", "request_errors"):
            out[f] += int(rec[f])
        if timeline.value_at("amphora", str(rec["amphora"]), "provisioning_status", at) == "ALLOCATED":
            out["active_connections"] += int(rec["active_connections"])
    return out


def cmd_stats(args: argparse.Namespace) -> int:
    """``lbsim stats RESULT_DIR [--at T] [--listener NAME] [--json]``."""
    from lbsim.octavia.timeline import Timeline
    from lbsim.results.folder import TRANSITION_COLUMNS
    from lbsim.results.manifest import ResultFolderError, read_duration, read_json_object, read_table, verify

    folder = Path(args.result_dir)
    try:
        verify(folder, ["stats.csv", "transitions.csv", "summary.json"])
        needed = [folder / "stats.csv", folder / "transitions.csv", folder / "summary.json"]
        missing = [p.name for p in needed if not p.is_file()]
        if missing:
            raise ResultFolderError(f"{folder}: not a complete result folder (missing {', '.join(missing)})")
        duration = read_duration(folder, read_json_object(folder, "summary.json"))
        at = duration if args.at is None else args.at
        if not 0 <= at <= duration:
            raise ResultFolderError(f"--at {at:g} is outside the run: pick a time between 0 and {duration:g} s")
        stats = read_table(folder, "stats.csv", ["time", "listener", "amphora", *FIELDS], ["time", *FIELDS])
        stats["listener"] = stats["listener"].astype(str)
        if args.listener is not None and args.listener not in set(stats["listener"]):
            known = ", ".join(sorted(set(stats["listener"]))) or "none"
            raise ResultFolderError(f"no listener named {args.listener!r} (listeners: {known})")
        transitions = read_table(folder, "transitions.csv", TRANSITION_COLUMNS, ["time"], keep_default_na=False)
    except ResultFolderError as err:
        print(f"lbsim stats: {err}", file=sys.stderr)
        return 2
    timeline = Timeline.from_frame(transitions)
    result = stats_at(stats, timeline, at, args.listener)
    if args.json:
        print(json.dumps({"stats": result}, indent=2))
        return 0
    width = max(len(f) for f in FIELDS)
    border = f"+-{'-' * width}-+-{'-' * 12}-+"
    print(border)
    print(f"| {'Field':<{width}} | {'Value':<12} |")
    print(border)
    for f in sorted(FIELDS):
        print(f"| {f:<{width}} | {result[f]:<12} |")
    print(border)
    return 0


def register(sub: Any) -> None:
    """Add the ``stats`` subcommand to the ``lbsim`` parser."""
    p = sub.add_parser(
        "stats",
        help="print `openstack loadbalancer stats show` (or listener stats) of a result folder at a time",
    )
    p.add_argument("result_dir", metavar="RESULT_DIR")
    p.add_argument("--at", type=seconds, metavar="T", help="simulated time in seconds (default: end of the run)")
    p.add_argument("--listener", metavar="NAME", help="a listener's statistics instead of the load balancer's")
    p.add_argument("--json", action="store_true", help="print the API's JSON body instead of the table")
    p.set_defaults(func=cmd_stats)
