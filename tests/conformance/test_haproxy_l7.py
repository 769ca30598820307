"""L7 routing against a real HAProxy: the configuration lbsim renders for a listener with
L7 policies is loaded into HAProxy 2.6 on loopback, a request mix is replayed through it,
and every answer must be the decision :func:`lbsim.haproxy.l7.evaluate` predicts: the
same pool (the backend server answers with its member name), the same 403 for REJECT,
the same redirect code and ``Location`` for REDIRECT_TO_URL / REDIRECT_PREFIX.

The policies are deliberately out of HAProxy's order (a pool switch at position 1, a
REJECT after a redirect), use every HTTP rule type and compare type, inverted rules,
disabled rules and policies, and the request mix covers case, ports in Host, query
strings, comma-separated header values, missing headers and cookies.
"""

from __future__ import annotations

import random
import socket
from pathlib import Path
from typing import Any

import pytest

from lbsim.haproxy import l7
from lbsim.haproxy.config import LoopbackPlan, render
from lbsim.scenario import model as m

from .haproxy_harness import LOOPBACK, BackendServer, HAProxy, record_fidelity, require_haproxy

pytestmark = pytest.mark.haproxy


def _rule(t: str, c: str, v: str, key: str | None = None, **kw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"type": t, "compare_type": c, "value": v, **kw}
    if key is not None:
        out["key"] = key
    return out


POLICIES: list[dict[str, Any]] = [
    {"name": "api-host", "redirect_pool": "api", "rules": [_rule("HOST_NAME", "EQUAL_TO", "api.example.com")]},
    {
        "name": "img-files",
        "redirect_pool": "img",
        "rules": [
            _rule("FILE_TYPE", "REGEX", r"\.(png|jpe?g)$"),
            _rule("PATH", "STARTS_WITH", "/private", invert=True),
        ],
    },
    {"name": "gif", "redirect_pool": "img", "rules": [_rule("FILE_TYPE", "EQUAL_TO", "gif")]},
    {
        "name": "moved",
        "redirect_url": "https://new.example.com/moved",
        "redirect_http_code": 308,
        "rules": [_rule("PATH", "EQUAL_TO", "/old")],
    },
    {"name": "deny-admin", "action": "REJECT", "rules": [_rule("PATH", "CONTAINS", "admin")]},
    {
        "name": "beta",
        "redirect_pool": "beta",
        "rules": [_rule("COOKIE", "EQUAL_TO", "v2", "channel"), _rule("HOST_NAME", "ENDS_WITH", ".example.com")],
    },
    {
        "name": "to-https",
        "redirect_prefix": "https://secure.example.com",
        "rules": [_rule("HEADER", "EQUAL_TO", "http", "X-Proto")],
    },
    {"name": "bots", "action": "REJECT", "rules": [_rule("HEADER", "REGEX", "^(curl|wget)/", "User-Agent")]},
    {
        "name": "tenant",
        "redirect_pool": "beta",
        "position": 2,
        "rules": [_rule("HEADER", "STARTS_WITH", "t-", "X-Tenant"), _rule("PATH", "ENDS_WITH", "/")],
    },
    {"name": "quoted", "action": "REJECT", "rules": [_rule("HEADER", "EQUAL_TO", '"two words"', "X-Q")]},
    {"name": "hash", "redirect_pool": "beta", "rules": [_rule("HEADER", "EQUAL_TO", "a#b", "X-H")]},
    {
        "name": "off",
        "action": "REJECT",
        "admin_state_up": False,
        "rules": [_rule("PATH", "STARTS_WITH", "/")],
    },
    {
        "name": "half-off",
        "action": "REJECT",
        "rules": [_rule("PATH", "STARTS_WITH", "/api"), _rule("HOST_NAME", "CONTAINS", "zzz", admin_state_up=False)],
    },
]

HOSTS = [
    "api.example.com",
    "API.Example.COM",
    "www.example.com",
    "api.example.com:8080",
    "shop.example.com",
    "other.net",
]
PATHS = [
    "/",
    "/index.html",
    "/img/a.png",
    "/img/b.JPG",
    "/x/c.jpeg?size=2",
    "/private/p.png",
    "/old",
    "/old?x=1",
    "/admin",
    "/a/admin/b",
    "/api/v1/",
    "/anim.gif",
    "/tenant/",
    "/api",
]
HEADER_SETS: list[dict[str, str]] = [
    {},
    {"X-Proto": "http"},
    {"X-Proto": "https"},
    {"User-Agent": "curl/8.0"},
    {"User-Agent": "Mozilla/5.0 curl/8"},
    {"X-Tenant": "t-42"},
    {"X-Q": "two words"},
    {"X-Q": '"two words"'},
    {"X-H": "a"},
    {"X-H": "a#b"},
    {"X-Tenant": "x, t-7"},
    {"x-proto": "http"},
]
COOKIE_SETS: list[dict[str, str]] = [{}, {"channel": "v2"}, {"channel": "v1"}, {"other": "1", "channel": "v2"}]


def _scenario() -> m.Scenario:
    pools = []
    for k, name in enumerate(("web", "api", "img", "beta")):
        member = {"name": f"{name}-1", "address": f"10.0.{k}.1", "protocol_port": 80}
        pools.append({"name": name, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "members": [member]})
    return m.Scenario.model_validate(
        {
            "name": "l7conf",
            "duration": 1,
            "loadbalancer": {
                "name": "lb",
                "listeners": [
                    {
                        "name": "http",
                        "protocol": "HTTP",
                        "protocol_port": 80,
                        "default_pool": "web",
                        "l7policies": POLICIES,
                    }
                ],
                "pools": pools,
            },
        }
    )


def _requests(n: int, seed: int = 13) -> list[l7.Request]:
    rng = random.Random(seed)
    out = [l7.Request(host=h, path=p) for h in HOSTS[:3] for p in PATHS]
    while len(out) < n:
        out.append(
            l7.Request(
                host=rng.choice(HOSTS),
                path=rng.choice(PATHS),
                headers=rng.choice(HEADER_SETS),
                cookies=rng.choice(COOKIE_SETS),
            )
        )
    return out


def _send(port: int, req: l7.Request, timeout: float = 10.0) -> tuple[int, str, str]:
    """One request with the request's Host, headers and cookies: (status, Location, body)."""
    lines = [f"GET {req.path} HTTP/1.1", f"Host: {req.host}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in req.headers.items()]
    if req.cookies:
        lines.append("Cookie: " + "; ".join(f"{k}={v}" for k, v in req.cookies.items()))
    data = b""
    with socket.create_connection((LOOPBACK, port), timeout=timeout) as s:
        s.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while chunk := s.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    head_lines = head.decode(errors="replace").split("\r\n")
    status = int(head_lines[0].split(" ", 2)[1])
    location = next((h.split(":", 1)[1].strip() for h in head_lines[1:] if h.lower().startswith("location:")), "")
    return status, location, body.decode(errors="replace")


def _expected(decision: l7.Decision) -> tuple[int, str, str]:
    if decision.kind == "reject":
        return 403, "", ""
    if decision.kind == "redirect":
        return decision.code, decision.location or "", ""
    pool = decision.pool if decision.kind == "pool" else "web"
    return 200, "", f"{pool}-1"


def test_l7_routing_matches_haproxy(tmp_path: Path) -> None:
    binary = require_haproxy()
    sc = _scenario()
    li = sc.loadbalancer.listeners[0]
    policies = l7.rendered_policies(l7.scenario_policies(li))
    members = [mem.name for p in sc.loadbalancer.pools for mem in p.members]
    servers = [BackendServer(name).start() for name in members]
    try:
        ports = {s.name: s.port for s in servers}

        def cfg(port: int, sock: Path) -> str:
            plan = LoopbackPlan(listener_ports={"http": port}, member_ports=ports, stats_socket=str(sock))
            return render(sc, loopback=True, plan=plan, ids="name")

        requests = _requests(240)
        mismatches = []
        with HAProxy(render=cfg, binary=binary) as hap:
            for req in requests:
                status, location, body = _send(hap.port, req)
                got = (status, location, body.strip() if status == 200 else "")  # HAProxy's own pages aside
                want = _expected(l7.evaluate(policies, req))
                if got != want:
                    mismatches.append((req, want, got))
    finally:
        for s in servers:
            s.stop()
    kinds = {l7.evaluate(policies, r).kind for r in requests}
    record_fidelity(
        suite="haproxy",
        case="l7-routing",
        title="L7 routing decisions (pool, 403, redirect code and Location) for a request mix",
        metric="requests decided differently",
        twin="0",
        haproxy=str(len(mismatches)),
        worst=str(len(mismatches)),
        tolerance="0",
        ok=not mismatches,
    )
    assert kinds == {"reject", "redirect", "pool", "default"}  # the mix exercises every outcome
    decided = {l7.evaluate(policies, r).policy for r in requests}
    assert {"quoted", "hash", "bots", "tenant", "beta", "img-files", "gif", "moved", "to-https"} <= decided
    assert not mismatches, "\n".join(f"{r}: lbsim {w}, HAProxy {g}" for r, w, g in mismatches[:10])
