"""The ``lbsim`` command line.

Exit codes (contract): 0 ran and every expectation held; 1 ran and an expectation
failed; 2 the input is invalid (nothing is written). Problems in scenario files are
printed one per line as ``file:line: field.path: what was expected``, never as a
traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from lbsim import __version__
from lbsim.scenario import ScenarioError, json_schema, load_scenario

EXIT_OK, EXIT_EXPECT, EXIT_INVALID = 0, 1, 2


def _err_console() -> Console:
    return Console(stderr=True, highlight=False, soft_wrap=True)


def _print_problems(err: ScenarioError) -> None:
    console = _err_console()
    for p in err.problems:
        console.print(f"[bold red]error[/]: {p}", markup=True)
    n = len(err.problems)
    console.print(f"{n} problem{'s' if n != 1 else ''} found; nothing was run.")


def cmd_validate(args: argparse.Namespace) -> int:
    """Check scenario files without running them."""
    status = EXIT_OK
    for path in args.scenarios:
        try:
            sc = load_scenario(path)
        except ScenarioError as err:
            _print_problems(err)
            status = EXIT_INVALID
            continue
        print(f"{path}: ok ({sc.name}: {len(sc.loadbalancer.pools)} pools, {len(sc.events)} events, {len(sc.expect)} expectations)")
    return status


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the scenario JSON Schema."""
    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run one scenario and write its result folder."""
    from lbsim.api import run_scenario

    try:
        sc = load_scenario(args.scenario)
    except ScenarioError as err:
        _print_problems(err)
        return EXIT_INVALID
    if args.seed is not None:
        sc = sc.model_copy(update={"seed": args.seed})
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S')}"
    console = _err_console()
    show_progress = console.is_terminal and not args.quiet
    t_start = time.perf_counter()
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(
            TextColumn("[bold]simulating[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(sc.name, total=1.0)
            result = run_scenario(
                sc,
                base_dir=Path(args.scenario).resolve().parent,
                log_requests=args.log_requests,
                progress=lambda f: bar.update(task, completed=f),
                scenario_yaml=Path(args.scenario).read_text(encoding="utf-8"),
            )
    else:
        result = run_scenario(
            sc,
            base_dir=Path(args.scenario).resolve().parent,
            log_requests=args.log_requests,
            scenario_yaml=Path(args.scenario).read_text(encoding="utf-8"),
        )
    wall = time.perf_counter() - t_start
    result.save(out)
    _print_summary(result.summary, out, wall)
    if not result.passed:
        _print_expectations(result.expectations)
        return EXIT_EXPECT
    if len(result.expectations):
        print(f"all {len(result.expectations)} expectations held")
    return EXIT_OK


def _fmt_s(x: Any) -> str:
    if x is None:
        return "-"
    return f"{x * 1000:.1f} ms"


def _print_summary(s: dict[str, Any], out: Path, wall: float) -> None:
    console = Console(highlight=False)
    t = Table(title=f"lbsim {s['scenario']} (seed {s['seed']}, {s['duration']:g} s simulated in {wall:.1f} s)")
    t.add_column("metric")
    t.add_column("value", justify="right")
    t.add_row("requests", f"{s['requests']:,}")
    t.add_row("ok", f"{s['ok']:,}")
    errs = ", ".join(f"{k}: {v:,}" for k, v in s["errors"].items()) or "none"
    t.add_row("errors", errs)
    avail = s.get("availability")
    t.add_row("availability", "-" if avail is None else f"{avail * 100:.3f} %")
    t.add_row("throughput", f"{s['throughput']:.1f} req/s" if s["throughput"] is not None else "-")
    lat = s["latency"]
    t.add_row("latency mean / p50", f"{_fmt_s(lat['mean'])} / {_fmt_s(lat['p50'])}")
    t.add_row("latency p95 / p99", f"{_fmt_s(lat['p95'])} / {_fmt_s(lat['p99'])}")
    console.print(t)
    console.print(f"results: {out}")


def _print_expectations(df: Any) -> None:
    console = Console(highlight=False)
    t = Table(title="expectations", show_lines=False)
    for col in ("time", "object_type", "name", "field", "expected", "found", "result"):
        t.add_column(col)
    for r in df.itertuples(index=False):
        style = "green" if r.result == "pass" else "bold red"
        t.add_row(str(r.time), r.object_type, r.name, r.field, r.expected, str(r.found), f"[{style}]{r.result}[/]")
    console.print(t)
    n = int((df["result"] == "fail").sum())
    console.print(f"[bold red]{n} expectation{'s' if n != 1 else ''} failed[/]")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(prog="lbsim", description="Discrete-event digital twin of OpenStack Octavia.")
    p.add_argument("--version", action="version", version=f"lbsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a scenario and write its result folder")
    r.add_argument("scenario")
    r.add_argument("--out", help="result folder (default results/<name>-<timestamp>)")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument("--log-requests", action="store_true", help="also write requests.parquet (one row per request)")
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("scenarios", nargs="+")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("schema", help="print the scenario JSON Schema")
    s.set_defaults(func=cmd_schema)
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lbsim`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted; no result folder was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
