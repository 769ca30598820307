"""The ``lbsim`` command line: ``run``, ``validate``, ``schema``, ``check``, ``status``.

Exit codes (contract): 0 ran and every expectation held; 1 ran and an expectation
failed; 2 the input is invalid (nothing is written). Problems in scenario files are
printed one per line as ``file:line: field.path: what was expected``, never as a
traceback.

``lbsim check PATH...`` runs scenario files (or every ``*.yaml``/``*.yml`` under a
folder) as a regression suite: one line per scenario, the failing expectations under a
failing one, optionally a JUnit XML report. Exit 2 if any file is invalid (the valid ones
still run), else 1 if any expectation failed or a run crashed, else 0.

``lbsim status RESULT_DIR [--at T]`` prints the status tree of a finished run at time
T, rebuilt from ``transitions.csv``, ``scenario.yaml`` and ``api.csv``; at the end of the
run it is byte-for-byte the run's ``status.json``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import importlib.util
import json
import os
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lbsim._version import __version__
from lbsim.cli.console import cell, err_console, error_line, out_console, warning_line
from lbsim.results import junit

if TYPE_CHECKING:  # the loader pulls in pydantic: imported where used, so --help stays fast
    from lbsim.scenario.loader import ScenarioError

EXIT_OK, EXIT_EXPECT, EXIT_INVALID = 0, 1, 2


def _err_console() -> Console:
    return err_console()


def _print_problems(err: ScenarioError) -> None:
    console = _err_console()
    for p in err.problems:
        console.print(error_line(p))
    n = len(err.problems)
    console.print(f"{n} problem{'s' if n != 1 else ''} found; nothing was run.")


def cmd_validate(args: argparse.Namespace) -> int:
    """Check scenario files without running them."""
    from lbsim.scenario.loader import ScenarioError, load_scenario, scenario_warnings

    status = EXIT_OK
    for path in args.scenarios:
        try:
            sc = load_scenario(path)
        except ScenarioError as err:
            _print_problems(err)
            status = EXIT_INVALID
            continue
        print(
            f"{path}: ok ({sc.name}: {plural(len(sc.loadbalancer.pools), 'pool')}, "
            f"{plural(len(sc.events), 'event')}, {plural(len(sc.expect), 'expectation')})"
        )
        _print_warnings([str(w) for w in scenario_warnings(sc, _text_of(path), path)])
    return status


def plural(n: int, word: str) -> str:
    """``1 pool``, ``2 pools``."""
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def _text_of(path: str) -> str | None:
    """The scenario file's text (already read once by the loader), for warning lines."""
    from lbsim.scenario.loader import MAX_FILE_BYTES, ScenarioError, read_text_file

    try:
        return read_text_file(Path(path), MAX_FILE_BYTES)
    except ScenarioError:
        return None


def _print_warnings(lines: list[str]) -> None:
    console = err_console()
    for line in lines:
        console.print(warning_line(line))


def cmd_schema(args: argparse.Namespace) -> int:
    """Print the scenario JSON Schema."""
    from lbsim.scenario.loader import json_schema

    print(json.dumps(json_schema(), indent=2))
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    """Run one scenario and write its result folder."""
    from lbsim.api import run_scenario
    from lbsim.scenario.loader import ScenarioError, load_scenario, scenario_warnings

    try:
        sc = load_scenario(args.scenario)
    except ScenarioError as err:
        _print_problems(err)
        return EXIT_INVALID
    if args.seed is not None:
        sc = sc.model_copy(update={"seed": args.seed})
    base_dir = Path(args.scenario).resolve().parent
    if args.log_requests:  # one row per request in memory: may not fit where the run does
        from lbsim.scenario.cost import check_cost
        from lbsim.scenario.errors import Problem, format_path

        over = check_cost(sc, base_dir, log_requests=True)
        if over:
            path, msg = over[0]
            where = f"{format_path(path)} (with --log-requests)"
            _print_problems(ScenarioError([Problem(args.scenario, None, where, msg)]))
            return EXIT_INVALID
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    out = Path(args.out) if args.out else Path("results") / f"{sc.name}-{stamp}"
    console = _err_console()
    problem = _unwritable(out)
    if problem is not None:
        console.print(error_line(f"--out {out}: {problem}; nothing was run."))
        return EXIT_INVALID
    text = _text_of(args.scenario) or ""
    _print_warnings([str(w) for w in scenario_warnings(sc, text, args.scenario)])
    show_progress = console.is_terminal and not args.quiet
    if not args.quiet:
        _announce_cost(console, sc, base_dir, show_progress)
    if args.engine == "compiled":
        from lbsim.sim.compiled import available, scenario_coverage

        why = scenario_coverage(sc) or (None if available() else "numba is not installed")
        if why is not None:
            console.print(error_line(f"--engine compiled cannot run {args.scenario}: {why}"))
            return EXIT_INVALID
    run_scenario = functools.partial(run_scenario, engine=args.engine)
    t_start = time.perf_counter()
    if show_progress:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        with Progress(
            TextColumn("[bold]simulating[/] {task.description}"),
            BarColumn(),
            TextColumn("{task.percentage:>3.0f}%"),
            TimeElapsedColumn(),
            TextColumn("left"),
            TimeRemainingColumn(),
            console=console,
            transient=True,
        ) as bar:
            task = bar.add_task(cell(sc.name), total=1.0)
            result = run_scenario(
                sc,
                base_dir=base_dir,
                log_requests=args.log_requests,
                progress=lambda f: bar.update(task, completed=f),
                scenario_yaml=text,
            )
    else:
        result = run_scenario(sc, base_dir=base_dir, log_requests=args.log_requests, scenario_yaml=text)
    wall = time.perf_counter() - t_start
    try:
        result.save(out)
    except OSError as exc:
        console.print(error_line(f"could not write {out}: {exc.strerror or exc}"))
        return EXIT_INVALID
    _print_summary(result.summary, out, wall, result.api_calls)
    n_pre = len(scenario_warnings(sc))  # printed above; the rest come from the run itself
    _print_warnings(list(result.summary.get("warnings", []))[n_pre:])
    if not result.passed:
        _print_expectations(result.expectations)
        return EXIT_EXPECT
    if len(result.expectations):
        print(f"all {len(result.expectations)} expectations held")
    return EXIT_OK


def _unwritable(out: Path) -> str | None:
    """Why a result folder could not be created at ``out`` (None when it can)."""
    if out.exists() and not out.is_dir():
        return "exists and is not a folder"
    parent = out.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is not a folder"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable"
    return None


#: a run estimated to take longer than this (wall seconds) is announced before it starts
LONG_RUN = 30.0


def _announce_cost(console: Console, sc: Any, base_dir: Path, bar: bool) -> None:
    """Say how long a long run will take, before it starts (the bar then shows the ETA)."""
    from lbsim.scenario.cost import describe_time, estimate

    est = estimate(sc, base_dir)
    if est.seconds >= LONG_RUN:
        what = "a progress bar shows the time left" if bar else "run in a terminal for a progress bar"
        console.print(
            f"this run is long: about {est.units:,.0f} simulation steps, roughly {describe_time(est.seconds)} ({what})"
        )


def _fmt_s(x: Any) -> str:
    """A latency (given in seconds) as people read it: ``12.3 ms``; from 10 s up in seconds
    (``44.1 s``, not ``44147.7 ms``). The unit is always printed."""
    if x is None:
        return "-"
    return f"{x:,.1f} s" if x >= 10 else f"{x * 1000:.1f} ms"


def _print_summary(s: dict[str, Any], out: Path, wall: float, api: Any = None) -> None:
    console = out_console()
    t = Table(
        title=f"lbsim {cell(s['scenario'])} (seed {s['seed']}, "
        f"{s['duration']:g} s simulated in {wall:.1f} s)"
    )
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
    if api is not None and len(api):
        codes = api["code"].astype(int)
        refused = codes[codes >= 400].value_counts().sort_index()
        detail = ", ".join(f"{code}: {n}" for code, n in refused.items())
        accepted = f"{len(api) - int(refused.sum()):,} accepted"
        note = f"{accepted}; refused {detail}" if detail else accepted
        t.add_row("API calls", f"{len(api):,} ({note})")
    console.print(t)
    console.print(f"results: {cell(out)}")


def _print_expectations(df: Any) -> None:
    console = out_console()
    t = Table(title="expectations", show_lines=False)
    for col in ("time (s)", "object_type", "name", "field", "expected", "found", "result"):
        t.add_column(col)
    for r in df.itertuples(index=False):
        style = "green" if r.result == "pass" else "bold red"
        t.add_row(
            cell(r.time),
            cell(r.object_type),
            cell(r.name),
            cell(r.field),
            cell(r.expected),
            cell(r.found),
            f"[{style}]{r.result}[/]",
        )
    console.print(t)
    n = int((df["result"] == "fail").sum())
    console.print(f"[bold red]{n} expectation{'s' if n != 1 else ''} failed[/]")


# ----------------------------------------------------------------------------- check


@dataclass
class ScenarioCheck:
    """The outcome of one scenario file under ``lbsim check`` (picklable for ``--jobs``).

    ``outcome`` is ``pass``, ``fail`` (an expectation did not hold), ``invalid`` (the file
    does not load) or ``error`` (the run itself raised). ``failures`` holds one
    ``(when, object_type, name, field, expected, found)`` row per failing expectation;
    ``problems`` the messages of an invalid file or a crash.
    """

    path: str
    name: str
    outcome: str
    passed: int = 0
    total: int = 0
    wall: float = 0.0
    failures: list[tuple[str, str, str, str, str, str]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def collect_scenarios(paths: list[str]) -> tuple[list[Path], list[str]]:
    """Scenario files named by ``paths``: files as given, folders searched recursively for
    ``*.yaml`` and ``*.yml`` (hidden folders skipped), each file once, in sorted order
    per folder. Returns the files and the paths that do not exist."""
    files: list[Path] = []
    missing: list[str] = []
    seen: set[Path] = set()
    for raw in paths:
        p = Path(raw)
        if p.is_dir():
            found = sorted(
                f
                for pattern in ("*.yaml", "*.yml")
                for f in p.rglob(pattern)
                if f.is_file() and not any(part.startswith(".") for part in f.relative_to(p).parts)
            )
        elif p.exists():
            found = [p]
        else:
            missing.append(raw)
            continue
        for f in found:
            key = f.resolve()
            if key not in seen:
                seen.add(key)
                files.append(f)
    return files, missing


def check_scenario_file(path: str, out: str | None = None) -> ScenarioCheck:
    """Load and run one scenario file as a regression test (optionally saving its results)."""
    from lbsim.api import run_scenario
    from lbsim.scenario.loader import ScenarioError, load_scenario

    t0 = time.perf_counter()
    try:
        sc = load_scenario(path)
    except ScenarioError as err:
        return ScenarioCheck(
            path,
            Path(path).stem,
            "invalid",
            wall=time.perf_counter() - t0,
            problems=[str(p) for p in err.problems],
        )
    try:
        result = run_scenario(
            sc,
            base_dir=Path(path).resolve().parent,
            scenario_yaml=Path(path).read_text(encoding="utf-8"),
        )
        if out is not None:
            result.save(Path(out))
    except Exception as exc:  # a crash is reported as that scenario's error, not ours
        return ScenarioCheck(
            path,
            sc.name,
            "error",
            total=len(sc.expect),
            wall=time.perf_counter() - t0,
            problems=[f"{type(exc).__name__}: {exc}"],
        )
    wall = time.perf_counter() - t0
    df = result.expectations
    failures = [
        (str(r.time), str(r.object_type), str(r.name), str(r.field), str(r.expected), str(r.found))
        for r in df.itertuples(index=False)
        if r.result != "pass"
    ]
    total = len(df)
    return ScenarioCheck(
        path, sc.name, "fail" if failures else "pass", total - len(failures), total, wall, failures
    )


def _check_star(job: tuple[str, str | None]) -> ScenarioCheck:
    return check_scenario_file(*job)


def _result_dirs(files: list[Path], out: str | None) -> list[str | None]:
    """One result folder per scenario under ``out`` (named after the file, made unique)."""
    if out is None:
        return [None] * len(files)
    used: set[str] = set()
    dirs: list[str | None] = []
    for f in files:
        name, k = f.stem, 1
        while name in used:
            k += 1
            name = f"{f.stem}-{k}"
        used.add(name)
        dirs.append(str(Path(out) / name))
    return dirs


def _describe_failure(row: tuple[str, str, str, str, str, str]) -> str:
    when, kind, name, fld, expected, found = row
    prefix = f"within {when}" if when.startswith("[") else f"at {when}"
    return f"{prefix}: {kind} {name} {fld}: expected {expected}, found {found}"


def _print_check_line(console: Console, r: ScenarioCheck) -> None:
    label = {
        "pass": "[bold green]PASS   [/]",
        "fail": "[bold red]FAIL   [/]",
        "invalid": "[bold red]INVALID[/]",
        "error": "[bold red]ERROR  [/]",
    }[r.outcome]
    counts = f"{r.passed}/{r.total}" if r.outcome in ("pass", "fail") else "-"
    console.print(
        f"{label} {escape(r.name):<32} {counts:>7}  {r.wall:6.1f} s  [dim]{escape(r.path)}[/]"
    )
    for row in r.failures:
        console.print(f"        [red]✗[/] {escape(_describe_failure(row))}")
    for problem in r.problems:
        console.print(f"        [red]{escape(problem)}[/]")


def _junit_cases(results: list[ScenarioCheck]) -> list[junit.Case]:
    cases = []
    for r in results:
        classname = "lbsim." + Path(r.path).with_suffix("").as_posix().replace("/", ".").lstrip(".")
        if r.outcome == "fail":
            n = len(r.failures)
            cases.append(
                junit.Case(
                    r.name,
                    classname,
                    r.wall,
                    failure=f"{n} of {r.total} expectation{'s' if r.total != 1 else ''} failed",
                    detail="\n".join(_describe_failure(row) for row in r.failures),
                )
            )
        elif r.outcome in ("invalid", "error"):
            what = "invalid scenario file" if r.outcome == "invalid" else "the run failed"
            cases.append(
                junit.Case(r.name, classname, r.wall, error=what, detail="\n".join(r.problems))
            )
        else:
            cases.append(junit.Case(r.name, classname, r.wall))
    return cases


def cmd_check(args: argparse.Namespace) -> int:
    """Run scenario files as a regression suite."""
    console = out_console(soft_wrap=True)
    files, missing = collect_scenarios(args.paths)
    results: list[ScenarioCheck] = [
        ScenarioCheck(m, Path(m).name or m, "invalid", problems=[f"{m}: no such file or folder"])
        for m in missing
    ]
    for r in results:
        _print_check_line(console, r)
    if not files and not missing:
        _err_console().print("[bold red]error[/]: no scenario files (*.yaml) found")
        return EXIT_INVALID
    t0 = time.perf_counter()
    jobs = list(zip((str(f) for f in files), _result_dirs(files, args.out), strict=True))
    n_jobs = max(1, min(args.jobs, len(jobs)))
    if n_jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        from lbsim.experiments.common import die_with_parent

        with ProcessPoolExecutor(max_workers=n_jobs, initializer=die_with_parent, initargs=(os.getpid(),)) as pool:
            for r in pool.map(_check_star, jobs):
                _print_check_line(console, r)
                results.append(r)
    else:
        for job in jobs:
            r = _check_star(job)
            _print_check_line(console, r)
            results.append(r)
    wall = time.perf_counter() - t0
    counts = {
        k: sum(1 for r in results if r.outcome == k) for k in ("pass", "fail", "invalid", "error")
    }
    parts = [f"{counts['pass']} passed", f"{counts['fail']} failed"]
    if counts["invalid"]:
        parts.append(f"{counts['invalid']} invalid")
    if counts["error"]:
        parts.append(f"{counts['error']} crashed")
    style = "bold green" if counts["pass"] == len(results) else "bold red"
    n = len(results)
    console.print(
        f"[{style}]{n} scenario{'s' if n != 1 else ''}: {', '.join(parts)}[/] in {wall:.1f} s"
    )
    if args.junit:
        junit.write(Path(args.junit), _junit_cases(results))
        console.print(f"JUnit report: {escape(str(args.junit))}")
    if counts["invalid"]:
        return EXIT_INVALID
    if counts["fail"] or counts["error"]:
        return EXIT_EXPECT
    return EXIT_OK


# ---------------------------------------------------------------------------- status


def cmd_status(args: argparse.Namespace) -> int:
    """Print the status tree of a result folder at a time (default: the end of the run)."""
    from lbsim.results.folder import ResultFolderError, status_tree_from_folder

    try:
        tree = status_tree_from_folder(Path(args.result_dir), args.at)
    except ResultFolderError as err:
        _err_console().print(error_line(err))
        return EXIT_INVALID
    if args.osc:
        # python-octaviaclient's `status show` prints the value of "statuses" with
        # jsonutils.dumps(..., indent=4) (octaviaclient/osc/v2/load_balancer.py).
        print(json.dumps(tree["statuses"], indent=4))
    else:
        print(json.dumps(tree, indent=2))  # as status.json is written
    return EXIT_OK


def seconds(value: str) -> float:
    """argparse type: a simulated time in seconds."""
    try:
        t = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a time in seconds, got {value!r}") from None
    if t != t:  # NaN
        raise argparse.ArgumentTypeError("expected a time in seconds, got NaN")
    return t


def positive_int(value: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    p = argparse.ArgumentParser(
        prog="lbsim", description="Discrete-event digital twin of OpenStack Octavia."
    )
    p.add_argument("--version", action="version", version=f"lbsim {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="run a scenario and write its result folder")
    r.add_argument("scenario")
    r.add_argument("--out", help="result folder (default results/<name>-<timestamp>)")
    r.add_argument("--seed", type=int, help="override the scenario's seed")
    r.add_argument(
        "--log-requests",
        action="store_true",
        help="also write requests.parquet (one row per request)",
    )
    r.add_argument("--quiet", action="store_true", help="no progress bar")
    r.add_argument(
        "--engine",
        choices=("auto", "exact", "compiled"),
        default="auto",
        help="data plane: the compiled one where it applies and pays (auto), never (exact), or always "
        "(compiled; an error when the scenario has faults or other features it does not cover); "
        "results are identical",
    )
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check scenario files without running them")
    v.add_argument("scenarios", nargs="+")
    v.set_defaults(func=cmd_validate)

    s = sub.add_parser("schema", help="print the scenario JSON Schema")
    s.set_defaults(func=cmd_schema)

    c = sub.add_parser(
        "check",
        help="run scenarios as a regression suite (exit 0 all held, 1 a failure, 2 invalid input)",
    )
    c.add_argument("paths", nargs="+", metavar="PATH", help="scenario files or folders of *.yaml")
    c.add_argument("--junit", metavar="FILE", help="also write a JUnit XML report")
    c.add_argument(
        "--jobs", "-j", type=positive_int, default=1, metavar="N", help="run N scenarios at once"
    )
    c.add_argument("--out", metavar="DIR", help="also save each run's result folder under DIR")
    c.set_defaults(func=cmd_check)

    st = sub.add_parser(
        "status", help="print `openstack loadbalancer status show` of a result folder at a time"
    )
    st.add_argument("result_dir", metavar="RESULT_DIR")
    st.add_argument(
        "--at", type=seconds, metavar="T", help="simulated time in seconds (default: end of the run)"
    )
    st.add_argument(
        "--osc",
        action="store_true",
        help="print as python-octaviaclient does (the 'statuses' value, indent 4)",
    )
    st.set_defaults(func=cmd_status)
    for module in PLUGIN_MODULES:
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module).register(sub)
    return p


#: modules that add their own subcommands through ``register(subparsers)``
PLUGIN_MODULES = (
    "lbsim.cli.experiments",
    "lbsim.cli.haproxy_config",
    "lbsim.cli.stats",
    "lbsim.cli.scaling",
    "lbsim.cli.serve",
)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``lbsim`` console script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted; no result folder was written", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lbsim status DIR | head`: the reader left, not an error of ours
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except OSError as exc:  # an output path that cannot be written (--output, --figure, --junit, ...)
        where = f"{exc.filename}: " if exc.filename else ""
        err_console().print(error_line(f"{where}{exc.strerror or exc}"))
        return EXIT_INVALID
    except MemoryError:
        err_console().print(error_line("out of memory; see docs/limits.md (LBSIM_MAX_MEMORY, shorter runs)"))
        return EXIT_INVALID


if __name__ == "__main__":
    sys.exit(main())
