"""``lbsim scaling RESULT_DIR``: a run's scaling decisions, its summary blocks and the figure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import pandas as pd

from lbsim.figures.scaling import figure_from_folder

# --------------------------------------------------------------------------------------
# Command line: ``python -m lbsim.cli.scaling RESULT_DIR`` (or ``lbsim scaling`` when wired)
# --------------------------------------------------------------------------------------


def register(sub: Any) -> None:
    """Add ``lbsim scaling RESULT_DIR [--figure PNG] [--pool P]`` to the CLI's subparsers."""
    p = sub.add_parser("scaling", help="print a run's scaling decisions and draw member count over time")
    _arguments(p)
    p.set_defaults(func=cmd_scaling)


def _arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("result_dir", metavar="RESULT_DIR")
    p.add_argument("--figure", metavar="PNG", help="write the member-count figure here")
    p.add_argument("--pool", help="pool to draw (default: the first autoscaled pool)")


def cmd_scaling(args: argparse.Namespace) -> int:
    """Print ``scaling.csv`` decisions and the summary's autoscaling and SLO blocks."""
    import json

    folder = Path(args.result_dir)
    path = folder / "scaling.csv"
    if not path.is_file():
        print(f"{folder}: no scaling.csv (not a result folder of a scenario with autoscaling)", file=sys.stderr)
        return 2
    df = pd.read_csv(path, keep_default_na=False)
    decisions = df[df["action"].isin(["scale_out", "scale_in", "hold"])]
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 90):
        print(decisions[["time", "pool", "action", "from", "to", "reason", "outcome"]].to_string(index=False))
    summary = json.loads((folder / "summary.json").read_text(encoding="utf-8"))
    for key in ("autoscaling", "slo"):
        if key in summary:
            print(f"{key}: {json.dumps(summary[key], indent=2)}")
    if args.figure:
        from lbsim.figures.plots import save_png

        save_png(figure_from_folder(folder, args.pool), Path(args.figure))
        print(f"figure: {args.figure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m lbsim.cli.scaling RESULT_DIR [--figure PNG]``."""
    p = argparse.ArgumentParser(prog="python -m lbsim.cli.scaling", description=cmd_scaling.__doc__)
    _arguments(p)
    return cmd_scaling(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

