"""Command-line experiments: ``lbsim sweep``, ``compare``, ``plan`` and ``report``.

:func:`register` adds the subcommands to ``lbsim``'s parser (``lbsim.cli.main`` calls it);
``python -m lbsim.cli.experiments ...`` runs them on their own.

Exit codes follow ``lbsim run``: 0 done; 2 invalid input (a scenario problem, a bad
``--set`` value or SLO, an unsupported option), reported one line per problem before
anything runs; 1 the command ran but its goal was not reached (``plan`` found no member
count meeting the SLOs, ``sweep --strict`` saw an expectation fail, or a run crashed).
Interrupted experiments keep every finished run: rerunning the same command resumes.
"""

from __future__ import annotations

import argparse
import hashlib
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lbsim.cli.console import err_console, out_console
from lbsim.cli.main import positive_int

EXIT_OK, EXIT_GOAL, EXIT_INVALID = 0, 1, 2


def _err() -> Console:
    return err_console()


def _out() -> Console:
    console = out_console()
    if not console.is_terminal:  # a pipe or file: do not squeeze tables into 80 columns
        console = out_console(width=200)
    return console


def _short(label: str) -> str:
    """The last two parts of a parameter path, for table headings."""
    parts = [p for p in label.split(".") if not p.isdigit()]
    return ".".join(parts[-2:]) if len(parts) > 2 else label


def _problems(lines: list[str], nothing_ran: bool = True) -> int:
    console = _err()
    for line in lines:
        console.print(f"[bold red]error[/]: {escape(line)}")
    if nothing_ran:
        n = len(lines)
        console.print(f"{n} problem{'s' if n != 1 else ''} found; nothing was run.")
    return EXIT_INVALID


def _fraction(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1, got {value!r}") from None
    if not 0.0 < x < 1.0:
        raise argparse.ArgumentTypeError(f"expected a number between 0 and 1 (exclusive), got {value}")
    return x


def _rate(value: str) -> float:
    try:
        x = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected requests per second, got {value!r}") from None
    if not (x > 0 and math.isfinite(x)):
        raise argparse.ArgumentTypeError(f"expected a positive rate, got {value}")
    return x


def _dask_address(value: str) -> str:
    if value == "local" or "://" in value or ":" in value:
        return value
    raise argparse.ArgumentTypeError(
        f"expected 'local' or a scheduler address such as tcp://10.0.0.5:8786, got {value!r}"
    )


def _load(path: str) -> tuple[Any, str] | int:
    from lbsim.scenario.loader import ScenarioError, load_scenario  # pydantic: not for --help

    try:
        sc = load_scenario(path)
    except ScenarioError as err:
        return _problems([str(p) for p in err.problems])
    return sc, Path(path).read_text(encoding="utf-8")


def _default_out(kind: str, name: str, *parts: Any) -> Path:
    """A stable folder per experiment, so that rerunning the same command resumes it."""
    digest = hashlib.sha256("|".join(str(p) for p in parts).encode()).hexdigest()[:8]
    return Path("results") / f"{kind}-{name}-{digest}"


def _engine_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", help="output folder (default results/<kind>-<name>-<hash>; reruns resume)")
    p.add_argument(
        "--jobs", "-j", type=positive_int, metavar="N", help="parallel runs (default: every core; 1 = serial)"
    )
    p.add_argument(
        "--dask",
        type=_dask_address,
        metavar="ADDRESS",
        help="run on Dask: 'local' (a LocalCluster on 127.0.0.1) or a scheduler address tcp://HOST:PORT",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")


def _progress_enabled(args: argparse.Namespace) -> bool:
    return not args.quiet and _err().is_terminal


def _ci(mean: float, lo: float, hi: float, scale: float = 1.0, unit: str = "") -> str:
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return "-"
    if lo is None or math.isnan(lo):
        return f"{mean * scale:.4g}{unit}"
    return f"{mean * scale:.4g} [{lo * scale:.4g}, {hi * scale:.4g}]{unit}"


def _engine_error(exc: Exception) -> int:
    return _problems([f"cannot start the engine: {type(exc).__name__}: {exc}"], nothing_ran=False)


def _interrupted(out: Path) -> int:
    _err().print(
        f"interrupted; finished runs are stored in {escape(str(out))}/store -- rerun the same command to resume"
    )
    return 130


def _run_guarded(out: Path, body: Callable[[], int]) -> int:
    from lbsim.experiments.design import OverrideError
    from lbsim.experiments.engines import RunFailed

    try:
        return body()
    except OverrideError as err:
        return _problems(err.problems)
    except RunFailed as err:
        _err().print(f"[bold red]error[/]: {escape(str(err))}")
        _err().print(f"the other runs are stored in {escape(str(out))}/store; rerunning retries the failed ones")
        return EXIT_GOAL
    except KeyboardInterrupt:
        return _interrupted(out)
    except ImportError as exc:  # --dask without dask.distributed installed
        return _engine_error(RuntimeError(f"{exc}; install it with: pip install 'dask[distributed]'"))
    except OSError as exc:  # e.g. a Dask scheduler that cannot be reached
        return _engine_error(exc)


# ------------------------------------------------------------------------------ sweep


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run a scenario over a parameter grid with replications; write run and point tables."""
    from lbsim.experiments.design import OverrideError, Point, design, grid, parse_set, scenario_hash
    from lbsim.experiments.engines import Engine
    from lbsim.experiments.sweep import rich_progress, run_design

    loaded = _load(args.scenario)
    if isinstance(loaded, int):
        return loaded
    sc, text = loaded
    base_dir = Path(args.scenario).resolve().parent
    try:
        overrides = [parse_set(s) for s in args.set or []]
        points = grid(overrides) if overrides else [Point(0, {}, {})]
        d = design(sc, points, args.replications, base_dir=base_dir, crn=args.crn)
    except OverrideError as err:
        return _problems(err.problems)
    out = (
        Path(args.out)
        if args.out
        else _default_out("sweep", sc.name, scenario_hash(sc, base_dir), args.set, args.replications, args.crn)
    )
    console = _out()
    engine = Engine(jobs=args.jobs, dask=args.dask)
    console.print(
        f"sweep {escape(sc.name)}: {len(points)} grid point{'s' if len(points) != 1 else ''} × "
        f"{args.replications} replications = {len(d.specs)} runs on {engine.describe()}"
    )

    def body() -> int:
        with engine, rich_progress("sweep", _progress_enabled(args)) as progress:
            res = run_design(
                d, out=out, engine=engine, progress=progress, confidence=args.confidence, scenario_text=text
            )
        _print_points(console, res, args.confidence)
        console.print(
            f"{len(res.runs)} runs: {res.executed} simulated, {res.reused} reused from the store\n"
            f"tables: {escape(str(out))}/runs.parquet (.csv), points.parquet (.csv); "
            f"report: lbsim report {escape(str(out))}"
        )
        failed = int((res.runs["expectations_held"] == 0).sum())
        if failed:
            console.print(f"[yellow]expectations failed in {failed} of {len(res.runs)} runs[/]")
            if args.strict:
                return EXIT_GOAL
        return EXIT_OK

    return _run_guarded(out, body)


def _print_points(console: Console, res: Any, confidence: float) -> None:
    t = Table(title=f"per grid point: mean [{confidence:.0%} CI]")
    t.add_column("point", justify="right")
    for lab in res.labels:
        t.add_column(escape(_short(lab)))
    for col in ("n", "p99 latency", "mean latency", "error rate", "throughput", "expectations held"):
        t.add_column(col, justify="right")
    incidents = _incident_columns(res)
    for name, _ in incidents:
        t.add_column(name, justify="right")
    r: dict[Any, Any]
    for r in res.points.to_dict("records"):
        held = f"{int(r['expectations_held_passes'])}/{int(r['n'])}" if "expectations_held_passes" in r else "-"
        t.add_row(
            str(r["point"]),
            *[escape(str(r[lab])) for lab in res.labels],
            str(r["n"]),
            _ci(r["latency_p99_mean"], r["latency_p99_ci_lo"], r["latency_p99_ci_hi"], 1000, " ms"),
            _ci(r["latency_mean_mean"], r["latency_mean_ci_lo"], r["latency_mean_ci_hi"], 1000, " ms"),
            _ci(r["error_rate_mean"], r["error_rate_ci_lo"], r["error_rate_ci_hi"]),
            _ci(r["throughput_mean"], r["throughput_ci_lo"], r["throughput_ci_hi"], 1, "/s"),
            held,
            *[_ci(r[f"{m}_mean"], r[f"{m}_ci_lo"], r[f"{m}_ci_hi"], 1, " s") for _, m in incidents],
        )
    console.print(t)


#: swept knobs that move how fast a fault is seen: their tables show the detection times
_DETECTION_KNOBS = ("healthmonitor", "heartbeat", "health_check_interval", "octavia.")


def _incident_columns(res: Any) -> list[tuple[str, str]]:
    """(heading, metric) of the incident delays to show: when a swept knob is a monitor or
    heartbeat setting, each incident's HAProxy detection and API-visible delay (s)."""
    if not any(k in lab for lab in res.labels for k in _DETECTION_KNOBS):
        return []
    out = []
    for col in res.points.columns:
        if col.startswith("incident_") and col.endswith("_mean"):
            metric = col[: -len("_mean")]
            _, idx, what = metric.split("_", 2)
            if {f"{metric}_ci_lo", f"{metric}_ci_hi"} <= set(res.points.columns):
                out.append((f"incident {idx} {'detected' if what == 'detect' else 'API visible'} (s)", metric))
    return out


# ---------------------------------------------------------------------------- compare


def cmd_compare(args: argparse.Namespace) -> int:
    """Compare balancing algorithms on the same traffic and faults."""
    from lbsim.experiments.compare import algorithm_points, compare, parse_algorithms
    from lbsim.experiments.design import OverrideError, design, scenario_hash
    from lbsim.experiments.engines import Engine
    from lbsim.experiments.sweep import rich_progress

    loaded = _load(args.scenario)
    if isinstance(loaded, int):
        return loaded
    sc, text = loaded
    base_dir = Path(args.scenario).resolve().parent
    try:
        algos = parse_algorithms(args.algorithms)
        design(sc, algorithm_points(sc, algos, args.pool), args.replications, base_dir=base_dir, crn=True)
    except OverrideError as err:
        return _problems(err.problems)
    out = (
        Path(args.out)
        if args.out
        else _default_out("compare", sc.name, scenario_hash(sc, base_dir), algos, args.pool, args.replications)
    )
    console = _out()
    engine = Engine(jobs=args.jobs, dask=args.dask)
    console.print(
        f"compare {escape(sc.name)}: {', '.join(algos)} × {args.replications} replications "
        f"(same seeds for every algorithm) on {engine.describe()}"
    )

    def body() -> int:
        with engine, rich_progress("compare", _progress_enabled(args)) as progress:
            cmp = compare(
                sc,
                algos,
                replications=args.replications,
                pools=args.pool,
                out=out,
                engine=engine,
                base_dir=base_dir,
                confidence=args.confidence,
                progress=progress,
                scenario_text=text,
            )
        t = Table(title=f"{sc.name}: mean [{args.confidence:.0%} CI] over {args.replications} replications")
        side = cmp.side_by_side()
        for col in side.columns:
            t.add_column(col, justify="left" if col == "metric" else "right")
        for row in side.itertuples(index=False):
            t.add_row(*[escape(str(v)) for v in row])
        console.print(t)
        rank = cmp.ranking()
        order = []
        rec: dict[Any, Any]
        for rec in rank.to_dict("records"):
            sep = "" if rec["separated_from_next"] is None else (" <" if rec["separated_from_next"] else " ≈")
            order.append(f"{rec['algorithm']}{sep}")
        console.print("p99 ranking (< : intervals do not overlap, ≈ : they do): " + " ".join(order))
        for rec in cmp.paired().to_dict("records"):
            verdict = "significant" if rec["significant"] else "not significant"
            console.print(
                f"  {rec['algorithm']} - {rec['baseline']} p99 (paired): {rec['diff_mean'] * 1000:+.2f} ms "
                f"[{rec['diff_ci_lo'] * 1000:+.2f}, {rec['diff_ci_hi'] * 1000:+.2f}] ({verdict})"
            )
        console.print(
            f"tables and figures: {escape(str(out))} (comparison.csv, ranking.csv, paired.csv, "
            f"latency-cdf.png, p99.png, member-load.png, error-rate.png)"
        )
        return EXIT_OK

    return _run_guarded(out, body)


# ------------------------------------------------------------------------------- plan


def cmd_plan(args: argparse.Namespace) -> int:
    """Find the fewest members (or amphora vCPUs) meeting every SLO with the requested confidence."""
    from lbsim.experiments.design import scenario_hash
    from lbsim.experiments.engines import Engine
    from lbsim.experiments.plan import NOT_YET, PlanError, parse_slo, plan
    from lbsim.experiments.sweep import rich_progress

    if args.vary in NOT_YET:
        return _problems([NOT_YET[args.vary]])
    loaded = _load(args.scenario)
    if isinstance(loaded, int):
        return loaded
    sc, _text = loaded
    base_dir = Path(args.scenario).resolve().parent
    try:
        slos = [parse_slo(s) for s in args.slo]
    except PlanError as err:
        return _problems([str(err)])
    out = (
        Path(args.out)
        if args.out
        else _default_out(
            "plan",
            sc.name,
            scenario_hash(sc, base_dir),
            args.slo,
            args.vary,
            args.pool,
            args.peak_rate,
            args.replications,
            args.confidence,
        )
    )
    console = _out()
    engine = Engine(jobs=args.jobs, dask=args.dask)
    console.print(
        f"plan {escape(sc.name)}: fewest {_unit(args.vary)} meeting "
        f"{', '.join(s.text for s in slos)} "
        f"(upper {args.confidence:.0%} CI bound, {args.replications} replications per count) on {engine.describe()}"
    )

    def body() -> int:
        try:
            with engine, rich_progress("plan", _progress_enabled(args)) as progress:
                res = plan(
                    sc,
                    slos,
                    vary=args.vary,
                    pool=args.pool,
                    peak_rate_rps=args.peak_rate,
                    replications=args.replications,
                    confidence=args.confidence,
                    max_members=args.max_members,
                    out=out,
                    engine=engine,
                    base_dir=base_dir,
                    progress=progress,
                    log=lambda line: console.print(f"  {escape(line)}"),
                )
        except PlanError as err:
            return _problems([str(err)])
        if res.answer is None:
            console.print(f"[bold red]{escape(res.message)}[/]")
            return EXIT_GOAL
        console.print(f"[bold green]{escape(res.message)}[/] (peak {res.peak_rate:g} req/s)")
        t = Table(title=f"margins at {res.answer} {_unit(res.vary)}")
        for col in ("SLO", "mean", f"{args.confidence:.0%} CI", "threshold", "margin"):
            t.add_column(col, justify="right")
        for r in res.margins().itertuples(index=False):
            t.add_row(
                escape(str(r.slo)),
                f"{r.mean:.4g}",
                f"[{r.ci_lo:.4g}, {r.ci_hi:.4g}]",
                f"{r.threshold:g}",
                f"{r.margin:.4g} ({r.relative_margin:.1%})",
            )
        console.print(t)
        console.print(f"tables and figures: {escape(str(out))} (plan.csv, margins.csv, plan-*.png)")
        return EXIT_OK

    return _run_guarded(out, body)


# ----------------------------------------------------------------------------- report


def cmd_report(args: argparse.Namespace) -> int:
    """Write a self-contained HTML report (and its PNGs) for a result or experiment folder."""
    from lbsim.report.html import ReportError, build_report

    try:
        html = build_report(Path(args.folder), Path(args.out) if args.out else None)
    except ReportError as err:
        return _problems([str(err)], nothing_ran=False)
    pngs = sorted(p.name for p in html.parent.glob("*.png"))
    _out().print(f"report: {escape(str(html))}\nfigures: {', '.join(pngs)}")
    return EXIT_OK


# --------------------------------------------------------------------------- register


def _unit(vary: str) -> str:
    """What a plan counts, for messages."""
    return {"members": "members", "flavor": "vCPUs"}.get(vary, vary)


def register(sub: Any) -> None:
    """Add ``sweep``, ``compare``, ``plan`` and ``report`` to ``lbsim``'s subparsers."""
    s = sub.add_parser(
        "sweep",
        help="run a scenario over a parameter grid with replications (tables with confidence intervals)",
        description="Run SCENARIO at every combination of the --set values, --replications times each. "
        "Seeds derive from the scenario content, the grid point and the replication; finished runs are "
        "stored, so rerunning the same command resumes.",
    )
    s.add_argument("scenario", metavar="SCENARIO")
    s.add_argument(
        "--set",
        action="append",
        metavar="PATH=V1,V2,...",
        help="a scenario path and its values, e.g. loadbalancer.pools.0.lb_algorithm=ROUND_ROBIN,LEAST_CONNECTIONS "
        "or traffic.0.arrival.rate=100,200 (repeat for a grid)",
    )
    s.add_argument("--replications", "-r", type=positive_int, default=5, metavar="N", help="runs per grid point")
    s.add_argument("--crn", action="store_true", help="common random numbers: the same seeds at every grid point")
    s.add_argument("--confidence", type=_fraction, default=0.95, help="confidence level of the intervals")
    s.add_argument("--strict", action="store_true", help="exit 1 if an expectation failed in any run")
    _engine_args(s)
    s.set_defaults(func=cmd_sweep)

    c = sub.add_parser(
        "compare",
        help="compare balancing algorithms on identical traffic and faults",
        description="Run SCENARIO once per algorithm and replication with the same seeds for every algorithm.",
    )
    c.add_argument("scenario", metavar="SCENARIO")
    c.add_argument(
        "--algorithms",
        default="ROUND_ROBIN,LEAST_CONNECTIONS,SOURCE_IP",
        metavar="A,B,...",
        help="algorithms to compare (default ROUND_ROBIN,LEAST_CONNECTIONS,SOURCE_IP)",
    )
    c.add_argument("--replications", "-r", type=positive_int, default=10, metavar="N")
    c.add_argument("--pool", action="append", metavar="NAME", help="pools to change (default: every pool)")
    c.add_argument("--confidence", type=_fraction, default=0.95)
    _engine_args(c)
    c.set_defaults(func=cmd_compare)

    pl = sub.add_parser(
        "plan",
        help="find the fewest members (or amphora vCPUs) that meet SLOs with a given confidence",
        description="Clone the pool's first member (or add amphora vCPUs with --vary flavor) until every --slo "
        "holds at the upper confidence bound.",
    )
    pl.add_argument("scenario", metavar="SCENARIO")
    pl.add_argument(
        "--slo",
        action="append",
        required=True,
        metavar="SLO",
        help="e.g. 'p99<0.25', 'p99<250ms', 'mean<0.1', 'errors<0.001', 'availability>=99.9%%' (repeatable)",
    )
    pl.add_argument(
        "--vary",
        default="members",
        choices=["members", "flavor", "topology", "autoscaling.max_members", "autoscaling.min_members"],
        help="what to size: members (clones of the pool's first member), flavor (amphora vCPUs), or an "
        "autoscaling policy's bound (autoscaling.max_members / autoscaling.min_members)",
    )
    pl.add_argument("--pool", metavar="NAME", help="pool to size (default: the first)")
    pl.add_argument("--peak-rate", type=_rate, metavar="R", help="scale traffic to this combined peak rate (req/s)")
    pl.add_argument("--replications", "-r", type=positive_int, default=5, metavar="N")
    pl.add_argument("--confidence", type=_fraction, default=0.95)
    pl.add_argument("--max-members", type=positive_int, default=200, metavar="N", help="give up above this count")
    _engine_args(pl)
    pl.set_defaults(func=cmd_plan)

    r = sub.add_parser(
        "report",
        help="write a self-contained HTML report of a result or experiment folder",
        description="Writes report.html (figures embedded) and the PNGs into FOLDER/report (or --out).",
    )
    r.add_argument("folder", metavar="RESULT_OR_EXPERIMENT_DIR")
    r.add_argument("--out", metavar="DIR", help="where to write report.html and the PNGs")
    r.set_defaults(func=cmd_report)


def main(argv: list[str] | None = None) -> int:
    """Run one experiment subcommand (``python -m lbsim.cli.experiments sweep ...``)."""
    p = argparse.ArgumentParser(prog="lbsim", description="lbsim experiments")
    register(p.add_subparsers(dest="command", required=True))
    args = p.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
