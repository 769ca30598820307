"""``lbsim scaling RESULT_DIR``: a run's scaling decisions, its summary blocks and the figure."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

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

    import pandas as pd  # pandas and matplotlib load here: ``lbsim --help`` stays fast

    from lbsim.figures.scaling import figure_from_folder
    from lbsim.results.manifest import ResultFolderError, read_json_object, read_table, verify

    folder = Path(args.result_dir)
    try:
        verify(folder)
        if not (folder / "scaling.csv").is_file():
            raise ResultFolderError(
                f"{folder}: no scaling.csv (not a result folder of a scenario with autoscaling)"
            )
        columns = ["time", "pool", "action", "from", "to", "reason", "outcome"]
        df = read_table(folder, "scaling.csv", columns, ["time"], keep_default_na=False)
        summary = read_json_object(folder, "summary.json")
    except ResultFolderError as err:
        print(f"lbsim scaling: {err}", file=sys.stderr)
        return 2
    decisions = df[df["action"].isin(["scale_out", "scale_in", "hold"])]
    with pd.option_context("display.max_rows", None, "display.width", 200, "display.max_colwidth", 90):
        print(decisions[columns].rename(columns={"time": "time (s)"}).to_string(index=False))
    for key in ("autoscaling", "slo"):
        if key in summary:
            print(f"{key}: {json.dumps(summary[key], indent=2)}")
    if args.figure:
        from lbsim.figures.plots import save_png

        try:
            fig = figure_from_folder(folder, args.pool)
        except (ResultFolderError, FileNotFoundError) as err:
            print(f"lbsim scaling: {err}", file=sys.stderr)
            return 2
        save_png(fig, Path(args.figure))
        print(f"figure: {args.figure}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m lbsim.cli.scaling RESULT_DIR [--figure PNG]``."""
    p = argparse.ArgumentParser(prog="python -m lbsim.cli.scaling", description=cmd_scaling.__doc__)
    _arguments(p)
    return cmd_scaling(p.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

