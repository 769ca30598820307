"""L7 routing in simulated time: the request mix of each listener and the per-policy counts.

The data plane asks a frontend's :class:`FrontendRouter` where each request goes when
the frontend has rendered L7 policies (HAProxy parses the request after accepting the
connection, so the decision is made at dispatch, after the CPU and ``maxconn`` stages):

* the request's kind is drawn from the listener's mix (``traffic[].requests``, weights)
  from its own seeded stream, so runs are reproducible and adding L7 leaves every other
  random stream untouched;
* the decision for that kind comes from :class:`lbsim.haproxy.l7.Router` (computed once
  per HAProxy reload);
* REJECT answers 403 and the redirects answer their code at once, from HAProxy itself;
  REDIRECT_TO_POOL hands the request to the policy's backend (a pool that is DOWN answers
  503, as HAProxy does: an L7 policy never falls back to the default pool).

:class:`L7Stats` counts, after warm-up, per listener and policy: requests matched,
redirected, rejected and sent to a pool; ``(default)`` counts those that matched no policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lbsim.haproxy.l7 import Decision, Policy, Request, Router, Rule, rendered_policies
from lbsim.scenario import model as m
from lbsim.sim.distributions import BLOCK, stream
from lbsim.sim.tls import tls_cost_fn

#: the label of requests that matched no policy
DEFAULT_POLICY = "(default)"
#: the request a source without ``requests`` sends: ``GET /`` without a Host header
PLAIN = Request()


def request_of(kind: m.RequestKind) -> Request:
    """The L7 view of one kind of request in a scenario's mix."""
    return Request(
        host=kind.host,
        path=kind.path,
        headers=dict(kind.headers),
        cookies=dict(kind.cookies),
        ssl_client_cert=kind.ssl_client_cert,
        ssl_verify_result=kind.ssl_verify_result,
        ssl_dn=dict(kind.ssl_dn),
    )


def policies_from_attrs(raw: Sequence[Mapping[str, Any]]) -> list[Policy]:
    """:class:`Policy` objects from a listener's ``l7policies`` (scenario dicts, in list
    order), with Octavia's positions: each is inserted at its ``position`` as if created
    one after the other, then numbered 1..n."""
    from lbsim.scenario.l7 import order_positions

    order: list[str] = []
    by_name: dict[str, Mapping[str, Any]] = {}
    for p in raw:
        name = str(p["name"])
        by_name[name] = p
        order = order_positions(order, name, int(p.get("position") or 2147483647))
    out = []
    for pos, name in enumerate(order, 1):
        p = by_name[name]
        rules = tuple(
            Rule(
                type=str(r["type"]),
                compare_type=str(r["compare_type"]),
                value=str(r["value"]),
                key=r.get("key"),
                invert=bool(r.get("invert", False)),
                enabled=bool(r.get("admin_state_up", True)),
                name=str(r.get("name") or f"{name}-rule{i}"),
            )
            for i, r in enumerate(p.get("rules") or [], 1)
        )
        out.append(
            Policy(
                name=name,
                action=str(p["action"]),
                position=pos,
                rules=rules,
                redirect_pool=p.get("redirect_pool"),
                redirect_url=p.get("redirect_url"),
                redirect_prefix=p.get("redirect_prefix"),
                redirect_http_code=p.get("redirect_http_code"),
                enabled=bool(p.get("admin_state_up", True)),
            )
        )
    return out


@dataclass
class PolicyCounts:
    """Requests one policy decided (after warm-up)."""

    action: str
    position: int
    matched: int = 0
    redirected: int = 0
    rejected: int = 0
    to_pool: int = 0


@dataclass
class L7Stats:
    """Per listener and policy counts, kept across HAProxy reloads and failovers."""

    counts: dict[tuple[str, str], PolicyCounts] = field(default_factory=dict)

    def row(self, listener: str, policy: Policy | None) -> PolicyCounts:
        """The counters of ``policy`` (None: the default backend) on ``listener``."""
        key = (listener, DEFAULT_POLICY if policy is None else policy.name)
        c = self.counts.get(key)
        if c is None:
            c = self.counts[key] = (
                PolicyCounts("DEFAULT_POOL", 0) if policy is None else PolicyCounts(policy.action, policy.position)
            )
        elif policy is not None:
            c.action, c.position = policy.action, policy.position
        return c

    def rows(self) -> list[dict[str, Any]]:
        """One dict per (listener, policy), in listener then position order."""
        out = []
        for (li, name), c in sorted(self.counts.items(), key=lambda kv: (kv[0][0], kv[1].position or 2**31)):
            out.append(
                {
                    "listener": li,
                    "policy": name,
                    "position": c.position or "",
                    "action": c.action,
                    "matched": c.matched,
                    "redirected": c.redirected,
                    "rejected": c.rejected,
                    "to_pool": c.to_pool,
                }
            )
        return out


class RequestMix:
    """A listener's request kinds and the seeded draw of the next one."""

    def __init__(self, kinds: Sequence[Request], weights: Sequence[float], rng: np.random.Generator):
        self.kinds = list(kinds)
        w = np.asarray(weights, dtype=float)
        self._p = w / w.sum()
        self._rng = rng
        self._buf: list[int] = []
        self._pos = 0

    def next(self) -> int:
        """Index of the next request's kind."""
        if len(self.kinds) == 1:
            return 0
        if self._pos >= len(self._buf):
            self._buf = self._rng.choice(len(self.kinds), size=BLOCK, p=self._p).tolist()
            self._pos = 0
        k = self._buf[self._pos]
        self._pos += 1
        return int(k)


class L7Context:
    """The run's request-level state: L7 request mixes by listener and their statistics,
    and the TLS cost of each listener's connections (:mod:`lbsim.sim.tls`)."""

    def __init__(self, scenario: m.Scenario, seed: int, base_dir: Any = None):
        self.stats = L7Stats()
        self.seed = seed
        flavor = scenario.loadbalancer.flavor
        self.tls_cost = flavor.tls if flavor is not None else None
        self.tls_reuse: dict[str, float] = {}
        for src in scenario.traffic:
            self.tls_reuse.setdefault(src.listener, src.tls_session_reuse)
        self._tls_fns: dict[tuple[Any, ...], Any] = {}
        self.idle: dict[str, IdleGate] = {}
        for src in scenario.traffic:
            if src.idle_clients is not None and src.listener not in self.idle:
                self.idle[src.listener] = IdleGate(src.idle_clients, seed, src.listener, base_dir)
        self.mixes: dict[str, RequestMix] = {}
        for src in scenario.traffic:
            if src.listener in self.mixes or not src.requests:
                continue
            self.mixes[src.listener] = RequestMix(
                [request_of(k) for k in src.requests],
                [k.weight for k in src.requests],
                stream(seed, f"l7:{src.listener}"),
            )

    def tls_for(self, cp: Any, li: Any, sizes: tuple[int, int] | None) -> Any:
        """The TLS CPU-time function of a listener's frontend (None: no TLS work, or no
        flavor, i.e. unlimited CPU). Kept across reloads so its random stream continues."""
        if self.tls_cost is None:
            return None
        terminated = li.attrs.get("protocol") == "TERMINATED_HTTPS"
        pool_name = li.attrs.get("default_pool")
        pool = cp.get("pool", str(pool_name)) if pool_name else None
        reencrypt = bool(pool is not None and pool.attrs.get("tls_enabled"))
        req, resp = sizes or (300, 3000)
        key = (li.name, terminated, reencrypt, req, resp)
        if key not in self._tls_fns:
            self._tls_fns[key] = tls_cost_fn(
                self.tls_cost, terminated, reencrypt, self.tls_reuse.get(li.name, 0.0), req, resp, self.seed, li.name
            )
        return self._tls_fns[key]

    def router(
        self, listener: str, policies: Sequence[Policy], backends: Mapping[str, Any], timeout_client: float = 50.0
    ) -> FrontendRouter | None:
        """The router for a listener's frontend after a render; None without policies
        and without idle clients."""
        gate = self.idle.get(listener)
        if not policies and gate is None:
            return None
        mix = self.mixes.get(listener)
        return FrontendRouter(listener, policies, mix, backends, self.stats, gate, timeout_client)


class FrontendRouter:
    """One frontend's L7 routing: decision per request kind, backends by pool name."""

    __slots__ = ("backends", "gate", "listener", "mix", "router", "stats", "timeout_client")

    def __init__(
        self,
        listener: str,
        policies: Sequence[Policy],
        mix: RequestMix | None,
        backends: Mapping[str, Any],
        stats: L7Stats,
        gate: IdleGate | None = None,
        timeout_client: float = 50.0,
    ):
        self.listener = listener
        self.mix = mix
        self.router = Router(policies, mix.kinds if mix is not None else [PLAIN])
        self.backends = backends
        self.stats = stats
        self.gate = gate
        self.timeout_client = timeout_client

    def decide(self, dp: Any, fe: Any, t0: float, src: Any, port: int) -> Decision | None:
        """What HAProxy does with the request of this connection: None while the request
        has not arrived yet (an idle client; the data plane is called back), else the
        decision, counted in the statistics after warm-up."""
        if self.gate is not None and self.gate.hold(dp, fe, t0, src, port, self.timeout_client):
            return None
        d = self.router.decide(self.mix.next() if self.mix is not None else 0)
        if t0 >= dp.warmup and self.router.policies:
            policy = next((p for p in self.router.policies if p.name == d.policy), None)
            c = self.stats.row(self.listener, policy)
            c.matched += 1
            if d.kind == "reject":
                c.rejected += 1
            elif d.kind == "redirect":
                c.redirected += 1
            else:
                c.to_pool += 1
        return d


def frontend_router(
    ctx: L7Context | None, listener: str, raw: Any, backends: Mapping[str, Any], timeout_client_ms: Any = 50000
) -> tuple[FrontendRouter | None, list[str]]:
    """The router of a listener's frontend after an HAProxy (re)load, and the pools its
    policies add to the listener (they get a ``<pool>:<listener>`` backend).

    ``raw`` is the listener's ``l7policies`` (dicts); ``backends`` the enabled pools'
    backends by pool name (a REDIRECT_TO_POOL to any other pool is not rendered).
    """
    if ctx is None or (not raw and listener not in ctx.idle):
        return None, []
    policies = rendered_policies(policies_from_attrs(raw or []), pool_enabled=lambda p: p in backends)
    pools = sorted({p.redirect_pool for p in policies if p.redirect_pool is not None})
    timeout = float(timeout_client_ms if timeout_client_ms is not None else 50000) / 1000.0
    return ctx.router(listener, policies, backends, timeout), pools


class IdleGate:
    """Idle clients of one listener (:mod:`lbsim.scenario.idle`): which connections wait
    before sending, for how long, and HAProxy's 408 when the wait passes ``timeout client``."""

    def __init__(self, spec: Any, seed: int, listener: str, base_dir: Any = None):
        from lbsim.sim.distributions import make_sampler

        self.fraction = float(spec.fraction)
        self._uni = stream(seed, f"idle:{listener}")
        self._idle = make_sampler(spec.idle, stream(seed, f"idle-time:{listener}"), base_dir)
        self._buf: list[float] = []
        self._pos = 0
        self.ready: set[tuple[float, Any, int]] = set()
        self.cut = 0
        self.dp: Any = None

    def _u(self) -> float:
        if self._pos >= len(self._buf):
            self._buf = self._uni.random(BLOCK).tolist()
            self._pos = 0
        u = self._buf[self._pos]
        self._pos += 1
        return float(u)

    def hold(self, dp: Any, fe: Any, t0: float, src: Any, port: int, timeout: float) -> bool:
        """True when the connection's request is not there yet: the data plane is called
        back when it arrives (``dispatch``) or when HAProxy gives up (408)."""
        key = (t0, src, port)
        if key in self.ready:  # the request arrived: go on
            self.ready.discard(key)
            return False
        if self._u() >= self.fraction:
            return False
        idle = float(self._idle())
        self.dp = dp
        if idle >= timeout:
            self.cut += 1
            dp.env.call_later(timeout, self._cut, fe, key)
        else:
            self.ready.add(key)
            dp.env.call_later(idle, self._arrived, fe, key)
        return True

    def _cut(self, fe: Any, key: tuple[float, Any, int]) -> None:
        t0, src, port = key
        self.dp.finish((t0, src, port, None, -1, self.dp.env._now, fe, 0, False), -1, "408")

    def _arrived(self, fe: Any, key: tuple[float, Any, int]) -> None:
        self.dp.dispatch(fe, *key)
