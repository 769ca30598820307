#!/usr/bin/env python3
"""Regenerate the README's "Fidelity" table: the twin's figures beside real HAProxy's.

One command does it all (needs ``haproxy`` on the PATH)::

    python tools/fidelity_table.py --write README.md

It runs the real-HAProxy conformance suite (``pytest -m haproxy tests/conformance``)
with ``LBSIM_FIDELITY_OUT`` pointing at a JSON-lines file, to which every conformance
test appends what it measured (``record_fidelity`` in
``tests/conformance/haproxy_harness.py``: case, metric, the twin's figure, HAProxy's
figure, the largest difference, the tolerance, agreed or not). It then renders those rows
as a Markdown table, printed on stdout, and with ``--write FILE`` puts it between the
``<!-- fidelity-table:start -->`` and ``<!-- fidelity-table:end -->`` lines of FILE
(nothing else in the file changes; the markers must exist).

Rows marked ``detail`` (one per generated timing case of
``test_haproxy_health_generated.py``) are left out of the table, which shows the generated
suites' summary rows with their counts instead; a line below the table counts them.

Other uses: ``--from-json FILE`` renders an existing JSON-lines file without running
anything; ``--json FILE`` keeps the measured rows; arguments after ``--`` go to pytest
(e.g. ``-- -k health``). The exit status is pytest's (0 when every case agreed or is a
known, strict-xfail disagreement), or 2 for a usage error.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
START = "<!-- fidelity-table:start -->"
END = "<!-- fidelity-table:end -->"
ENV = "LBSIM_FIDELITY_OUT"
COLUMNS = ("Case", "Compared", "Twin", "HAProxy", "Worst Δ", "Tolerance", "Result")


def read_rows(path: Path) -> list[dict[str, Any]]:
    """The JSON-lines rows of a conformance run, in the order they were written."""
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}:{n}: not JSON: {exc.msg}") from None
        if not isinstance(row, dict):
            raise ValueError(f"{path}:{n}: expected a JSON object")
        rows.append(row)
    return rows


def _cell(value: Any) -> str:
    """A table cell: text with pipes escaped and line breaks flattened."""
    if value is None:
        return ""
    if isinstance(value, float):
        text = f"{value:.3f}"
    else:
        text = str(value)
    return text.replace("|", "\\|").replace("\n", " ")


def render_table(rows: list[dict[str, Any]], haproxy: str = "", when: str = "") -> str:
    """The Markdown table (with a one-line provenance note) for ``rows``."""
    lines = []
    if haproxy or when:
        lines.append(
            f"Measured {when} against {haproxy}; regenerate with `python tools/fidelity_table.py --write README.md`."
        )
        lines.append("")
    lines.append("| " + " | ".join(COLUMNS) + " |")
    lines.append("|" + "|".join("---" for _ in COLUMNS) + "|")
    detail = [r for r in rows if r.get("detail")]
    rows = [r for r in rows if not r.get("detail")]
    for r in rows:
        case = f"**{r.get('case', '')}** {r.get('title', '')}".strip()
        if r.get("faults"):
            case += f" (faults: {r['faults']})"
        result = "agrees" if r.get("ok") else "**differs**"
        cells = (case, r.get("metric"), r.get("twin"), r.get("haproxy"), r.get("worst"), r.get("tolerance"), result)
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    agreed = sum(1 for r in rows if r.get("ok"))
    lines.append("")
    lines.append(f"{agreed} of {len(rows)} comparisons agree within tolerance.")
    if detail:
        ok = sum(1 for r in detail if r.get("ok"))
        lines.append(
            f"The generated suites' rows above summarise {len(detail)} per-case comparisons "
            f"({ok} agree; `--json FILE` keeps them all)."
        )
    return "\n".join(lines) + "\n"


def replace_block(text: str, table: str) -> str:
    """``text`` with the lines between the start and end markers replaced by ``table``."""
    if START not in text or END not in text or text.index(START) > text.index(END):
        raise ValueError(f"the file needs the lines {START} and {END} (in that order)")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}\n{table}{END}{tail}"


def haproxy_version() -> str:
    """First line of ``haproxy -v``, shortened to ``HAProxy x.y.z``."""
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    try:
        out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return "HAProxy (version unknown)"
    words = out.split()
    return f"HAProxy {words[2]}" if len(words) > 2 else out.strip()


def run_suite(out: Path, pytest_args: list[str]) -> int:
    """Run the real-HAProxy conformance suite, appending its figures to ``out``."""
    env = dict(os.environ, **{ENV: str(out)})
    cmd = [sys.executable, "-m", "pytest", "-m", "haproxy", "-p", "no:cacheprovider", "tests/conformance", *pytest_args]
    print("running:", " ".join(cmd), file=sys.stderr)
    # pytest talks on stderr: stdout is kept for the table
    return subprocess.run(cmd, cwd=ROOT, env=env, stdout=sys.stderr, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    """Command line entry point (see the module docstring)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1 :]
    p = argparse.ArgumentParser(description="Regenerate the README Fidelity table from a real-HAProxy run.")
    p.add_argument("--from-json", type=Path, metavar="FILE", help="render these rows; do not run the suite")
    p.add_argument("--json", type=Path, metavar="FILE", help="also keep the measured rows in FILE")
    p.add_argument("--write", type=Path, metavar="FILE", help="replace the table between the markers in FILE")
    args = p.parse_args(argv)

    status = 0
    if args.from_json is not None:
        source = args.from_json
    else:
        tmp = Path(tempfile.mkdtemp(prefix="lbsim-fidelity-"))
        source = tmp / "fidelity.jsonl"
        source.touch()
        status = run_suite(source, extra)
    try:
        rows = read_rows(source)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.json is not None and args.json != source:
        shutil.copyfile(source, args.json)
    if args.from_json is None:
        shutil.rmtree(source.parent, ignore_errors=True)
    if not rows:
        print("error: the run recorded no figures (is haproxy installed?)", file=sys.stderr)
        return status or 1
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    table = render_table(rows, haproxy_version(), when)
    if args.write is not None:
        try:
            text = args.write.read_text(encoding="utf-8")
            args.write.write_text(replace_block(text, table), encoding="utf-8")
        except (OSError, ValueError) as exc:
            print(f"error: {args.write}: {exc}", file=sys.stderr)
            return 2
        print(f"wrote the table ({len(rows)} rows) into {args.write}", file=sys.stderr)
    else:
        sys.stdout.write(table)
    return status


if __name__ == "__main__":
    sys.exit(main())
