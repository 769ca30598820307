"""``lbsim serve``: the twin behind Octavia's v2 API on loopback, and ``lbsim ctl``, its remote.

``lbsim serve [SCENARIO] [--host 127.0.0.1] [--port 9876] [--speed X] [--record DIR]`` loads
the scenario's load balancer (or starts an empty cloud), prints the two environment
variables that point the ``openstack`` CLI at it, and serves until Ctrl-C; with ``--record``
the session (every accepted API call and control, with its simulated time) is saved as a
result folder whose ``scenario.yaml`` replays it with ``lbsim run``.

``lbsim ctl`` drives the twin's own controls (``/lbsim/v1``) on the endpoint in
``OS_ENDPOINT`` (or ``--endpoint``): member faults, amphora failure or partition, client
traffic, the clock, a status snapshot, metrics, saving the session.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Any

DEFAULT_PORT = 9876
DEFAULT_ENDPOINT = f"http://127.0.0.1:{DEFAULT_PORT}"


# ------------------------------------------------------------------ serve


def _cmd_serve(args: argparse.Namespace) -> int:
    """Build the Twin (from the scenario, if any), the clock and the app; serve until stopped."""
    import logging

    import uvicorn

    from lbsim.server.app import create_app
    from lbsim.server.clock import SimClock
    from lbsim.server.octavia.backend import Cloud
    from lbsim.server.twin import Twin

    if args.speed < 0:
        print("error: --speed must be >= 0 (0: the clock only moves with `lbsim ctl clock advance`)", file=sys.stderr)
        return 2
    scenario = None
    base_dir = None
    if args.scenario:
        from lbsim.scenario.loader import ScenarioError, load_scenario

        try:
            scenario = load_scenario(args.scenario)
        except ScenarioError as err:
            for p in err.problems:
                print(f"error: {p}", file=sys.stderr)
            return 2
        base_dir = Path(args.scenario).resolve().parent
    if args.record:
        record = Path(args.record)
        if record.exists() and (not record.is_dir() or any(record.iterdir())):
            print(f"error: --record {record}: exists and is not an empty folder", file=sys.stderr)
            return 2
    twin = Twin(scenario, seed=args.seed, base_dir=base_dir)
    cloud = Cloud(twin, SimClock(args.speed))
    app = create_app(cloud)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    class _Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if not self.started:
                return
            port = args.port
            for server in getattr(self, "servers", []):
                for sock in server.sockets:
                    port = sock.getsockname()[1]
            host = f"[{args.host}]" if ":" in args.host else args.host
            print(f"export OS_AUTH_TYPE=none OS_ENDPOINT=http://{host}:{port}", flush=True)
            print(
                f"# lbsim serve: Octavia v2 API twin on http://{host}:{port} (speed x{args.speed:g}); "
                f"live page http://{host}:{port}/lbsim/ui; Ctrl-C stops",
                file=sys.stderr,
                flush=True,
            )

    config = uvicorn.Config(app, host=args.host, port=args.port, log_level="warning", access_log=False, lifespan="on")
    server = _Server(config)
    app.state.server = server  # the live page's event streams end when it should exit (Ctrl-C)
    with contextlib.suppress(KeyboardInterrupt):  # a second Ctrl-C during shutdown
        server.run()
    if args.record:
        out = twin.save(Path(args.record))
        print(f"session saved to {out} (replay: lbsim run {Path(out) / 'scenario.yaml'})", file=sys.stderr)
    return 0 if server.started else 1


# -------------------------------------------------------------------- ctl


class CtlError(Exception):
    """A control request failed: the message is what the user sees."""


def call(endpoint: str, method: str, path: str, body: Any = None, *, raw: bool = False) -> Any:
    """One request to the twin; Octavia-style faults become :class:`CtlError`."""
    import urllib.error  # http.client and email load here: ``lbsim --help`` stays fast
    import urllib.request

    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(endpoint.rstrip("/") + path, data=data, method=method)
    req.add_header("Accept", "application/json")
    if data is not None:
        req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            text = resp.read().decode()
            rid = resp.headers.get("x-openstack-request-id", "")
    except urllib.error.HTTPError as err:
        text = err.read().decode(errors="replace")
        try:
            msg = json.loads(text).get("faultstring", text)
        except (ValueError, AttributeError):
            msg = text
        raise CtlError(
            f"{msg} (HTTP {err.code}) (Request-ID: {err.headers.get('x-openstack-request-id', '')})"
        ) from None
    except (urllib.error.URLError, OSError) as err:
        reason = getattr(err, "reason", err)
        raise CtlError(f"cannot reach the twin at {endpoint}: {reason} (is `lbsim serve` running?)") from None
    del rid
    if raw:
        return text
    return json.loads(text) if text else None


def _print(args: argparse.Namespace, data: Any) -> None:
    if getattr(args, "json", False) or not isinstance(data, dict):
        print(json.dumps(data, indent=2))
        return
    for k, v in data.items():
        print(f"{k}: {json.dumps(v) if isinstance(v, dict | list) else v}")


def _label(obj: dict[str, Any]) -> str:
    return str(obj.get("name") or obj.get("id"))


def _statuses(obj: dict[str, Any]) -> str:
    return f"{obj.get('provisioning_status')} {obj.get('operating_status')}"


def _status_text(data: dict[str, Any]) -> str:
    lines = [
        f"t={data['clock']['now']:.1f}s speed x{data['clock']['speed']:g}{' paused' if data['clock']['paused'] else ''}"
    ]
    for entry in data.get("loadbalancers", []):
        lb = entry["loadbalancer"]
        haproxy = entry.get("haproxy", {})
        lines.append(f"loadbalancer {lb['name'] or lb['id']}: {lb['provisioning_status']} {lb['operating_status']}")
        for lst in lb.get("listeners", []):
            lines.append(
                f"  listener {lst['name'] or lst['id']}: {lst['provisioning_status']} {lst['operating_status']}"
            )
            for pool in lst.get("pools", []):
                lines.append(
                    f"    pool {pool['name'] or pool['id']}: {pool['provisioning_status']} {pool['operating_status']}"
                )
                for m in pool.get("members", []):
                    hp = haproxy.get(m["id"], "")
                    lines.append(
                        f"      member {m['name'] or m['id']} {m['address']}:{m['protocol_port']}: "
                        f"{m['provisioning_status']} {m['operating_status']}" + (f"  (HAProxy: {hp})" if hp else "")
                    )
    return "\n".join(lines)


def _cmd_ctl(args: argparse.Namespace) -> int:
    endpoint = args.endpoint or os.environ.get("OS_ENDPOINT") or DEFAULT_ENDPOINT
    try:
        data = _ctl_request(args, endpoint)
    except CtlError as err:
        print(str(err), file=sys.stderr)
        return 1
    if args.what == "metrics":
        sys.stdout.write(str(data))
    elif args.what == "status" and not args.json:
        print(_status_text(data))
    else:
        _print(args, data)
    return 0


def _ctl_request(args: argparse.Namespace, endpoint: str) -> Any:
    from urllib.parse import quote

    what = args.what
    if what == "member":
        body: dict[str, Any] = {"behaviour": args.behaviour}
        if args.status is not None:
            body["status"] = args.status
        if args.factor is not None:
            body["factor"] = args.factor
        return call(endpoint, "PUT", f"/lbsim/v1/members/{quote(args.member, safe='')}/behaviour", body)
    if what == "amphora":
        amp = quote(args.amphora, safe="")
        if args.action == "fail":
            return call(endpoint, "POST", f"/lbsim/v1/amphorae/{amp}/fail", {})
        return call(endpoint, "PUT", f"/lbsim/v1/amphorae/{amp}/partition", {"partitioned": args.action == "partition"})
    if what == "traffic":
        rate = None if args.rate in ("stop", "off", "0") else _positive(args.rate)
        return call(endpoint, "PUT", f"/lbsim/v1/listeners/{quote(args.listener, safe='')}/traffic", {"rate": rate})
    if what == "clock":
        if args.action in (None, "show"):
            return call(endpoint, "GET", "/lbsim/v1/clock")
        if args.action in ("pause", "resume"):
            return call(endpoint, "POST", f"/lbsim/v1/clock/{args.action}", {})
        if args.value is None:
            raise CtlError(f"`lbsim ctl clock {args.action}` needs a number")
        value = _positive(args.value, allow_zero=True)
        if args.action == "advance":
            return call(endpoint, "POST", "/lbsim/v1/clock/advance", {"seconds": value})
        return call(endpoint, "PUT", "/lbsim/v1/clock/speed", {"speed": value})
    if what == "status":
        return call(endpoint, "GET", "/lbsim/v1/status")
    if what == "metrics":
        return call(endpoint, "GET", "/lbsim/v1/metrics", raw=True)
    if what == "save":
        return call(endpoint, "POST", "/lbsim/v1/save", {"folder": str(Path(args.folder).resolve())})
    raise CtlError(f"unknown control {what!r}")


def _positive(text: str, *, allow_zero: bool = False) -> float:
    try:
        value = float(text)
    except ValueError:
        raise CtlError(f"expected a number, got {text!r}") from None
    if not (value > 0 or (allow_zero and value == 0)) or value == float("inf"):
        raise CtlError(f"expected a {'non-negative' if allow_zero else 'positive'} number, got {text!r}")
    return value


# --------------------------------------------------------------- register


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``serve``, ``ctl`` and ``import`` to ``lbsim``'s sub-parsers."""
    from lbsim.cli import octavia_import

    p = subparsers.add_parser(
        "serve",
        help="serve the twin behind Octavia's v2 API (drive it with the openstack CLI)",
        description=(
            "Run the twin live and serve OpenStack Octavia's v2 API on a loopback endpoint, so that the real "
            "`openstack loadbalancer ...` commands (and openstacksdk) drive it. Prints "
            "`export OS_AUTH_TYPE=none OS_ENDPOINT=...`; Ctrl-C stops. Without SCENARIO the cloud is empty."
        ),
    )
    p.add_argument("scenario", nargs="?", metavar="SCENARIO", help="the load balancers to start with")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT}; 0: any free port)")
    p.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per wall second (default 1; 60: a minute a second; 0: manual clock)",
    )
    p.add_argument(
        "--record", metavar="DIR", help="save the session to DIR on exit (result folder + replayable scenario)"
    )
    p.add_argument("--seed", type=int, default=None, help="random seed (default: the scenario's, else 0)")
    p.set_defaults(func=_cmd_serve)

    c = subparsers.add_parser(
        "ctl",
        help="drive a running `lbsim serve`: faults, traffic, clock, status, metrics, save",
        description="Controls of the simulated world that Octavia's API does not have, sent to the endpoint in "
        "OS_ENDPOINT (or --endpoint).",
    )
    c.add_argument("--endpoint", help=f"the twin's URL (default $OS_ENDPOINT, else {DEFAULT_ENDPOINT})")
    c.add_argument("--json", action="store_true", help="print the answer as JSON")
    cs = c.add_subparsers(dest="what", required=True, metavar="CONTROL")
    m = cs.add_parser("member", help="set a member's behaviour: healthy, refuse, hang, error, slow")
    m.add_argument("member", help="member id or name")
    m.add_argument("behaviour", choices=("healthy", "refuse", "hang", "error", "slow"))
    m.add_argument("--status", type=int, help="HTTP status an 'error' member answers (default 500)")
    m.add_argument("--factor", type=float, help="service-time multiplier of a 'slow' member (default 10)")
    a = cs.add_parser("amphora", help="fail an amphora, or cut/restore its network")
    a.add_argument("amphora", help="amphora id (see `openstack loadbalancer amphora list`)")
    a.add_argument("action", choices=("fail", "partition", "heal"))
    t = cs.add_parser("traffic", help="client traffic into a listener: RATE requests/s (Poisson), or 'stop'")
    t.add_argument("listener", help="listener id or name")
    t.add_argument("rate", help="requests per second, or 'stop'")
    k = cs.add_parser("clock", help="show the clock; advance SECONDS; pause; resume; speed X")
    k.add_argument("action", nargs="?", choices=("show", "advance", "pause", "resume", "speed"))
    k.add_argument("value", nargs="?", help="seconds (advance) or speed")
    cs.add_parser("status", help="status trees with HAProxy's view of each member")
    cs.add_parser("metrics", help="Prometheus metrics of the simulated traffic")
    s = cs.add_parser("save", help="save the session so far (result folder + replayable scenario)")
    s.add_argument("folder")
    c.set_defaults(func=_cmd_ctl)

    octavia_import.register(subparsers)
