"""``lbsim haproxy-config SCENARIO [--loopback]``: the haproxy.cfg Octavia would render."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _cmd(args: argparse.Namespace) -> int:
    """``lbsim haproxy-config SCENARIO [--loopback]``: print the rendered configuration."""
    from lbsim.haproxy.config import loopback_plan, render  # (pydantic: not for --help)
    from lbsim.scenario.loader import ScenarioError, load_scenario

    try:
        sc = load_scenario(args.scenario)
    except ScenarioError as err:
        for p in err.problems:
            print(f"error: {p}", file=sys.stderr)
        return 2
    plan = None
    if args.loopback:
        try:
            plan = loopback_plan(sc, args.base_port, args.stats_socket)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    text = render(sc, args.loopback, plan=plan, ids="name" if args.names else "uuid")
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
    else:
        sys.stdout.write(text)
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``haproxy-config`` subcommand to ``lbsim``'s sub-parsers."""
    p = subparsers.add_parser(
        "haproxy-config",
        help="print the HAProxy configuration Octavia would render on the amphora",
        description=(
            "Print the haproxy.cfg that Octavia 19's amphora driver renders for the scenario's "
            "load balancer. With --loopback, addresses become 127.0.0.1 (listener i on "
            "BASE_PORT+i, member j on BASE_PORT+100+j, monitor ports on BASE_PORT+200+j) and "
            "an admin stats socket is added, so that `haproxy -f FILE -db` runs it as is."
        ),
    )
    p.add_argument("scenario", metavar="SCENARIO")
    p.add_argument("--loopback", action="store_true", help="127.0.0.1 addresses and a stats socket")
    p.add_argument("--base-port", type=int, default=20000, help="first loopback port (default 20000)")
    p.add_argument("--stats-socket", help="stats socket path (default /tmp/lbsim-<name>.sock)")
    p.add_argument("--names", action="store_true", help="use lbsim names instead of Octavia-style uuid5 ids")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=_cmd)
