"""L7 policies and rules: Octavia's validation and HAProxy's evaluation, as pure logic.

Octavia renders each listener's L7 policies into its HAProxy ``frontend`` (docs/l7.md has
the derivation from the upstream template). What this module reproduces:

* **Which policies exist in HAProxy**: enabled policies with at least one enabled rule,
  in ``position`` order; a REDIRECT_TO_POOL policy only while its pool is enabled.
* **One ACL per enabled rule**, ANDed in the policy's condition (``if a !b c``), with the
  sample fetch and match method of the rule type and compare type (:func:`acl_line`).
* **HAProxy's order of evaluation**, which is not the position order: every
  ``http-request deny`` (REJECT) runs first, then the ``redirect`` rules
  (REDIRECT_TO_URL and REDIRECT_PREFIX, in position order between themselves), then the
  ``use_backend`` rules (REDIRECT_TO_POOL), then ``default_backend``
  (:func:`evaluate`). HAProxy 2.6 warns about the order when it parses such a
  configuration but accepts it.
* **How HAProxy reads the pattern**: Octavia escapes backslashes and spaces only, so
  HAProxy's line parser still interprets quotes and ``#`` (:func:`haproxy_words`).
* Octavia's validation (:func:`check_rule`, :func:`sanitize_policy`) lives in
  :mod:`lbsim.scenario.l7`, which scenarios use; it is re-exported here.

Nothing here knows about time; :mod:`lbsim.sim.dataplane` calls :class:`Router` for each
request.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from lbsim.scenario.l7 import (
    ACTIONS,
    COMPARE_TYPES,
    L7_LISTENER_PROTOCOLS,
    MAX_POSITION,
    MAX_RULES_PER_POLICY,
    REDIRECT_HTTP_CODES,
    RULE_TYPES,
    L7Error,
    check_rule,
    order_positions,
    sanitize_policy,
)

__all__ = [
    "ACTIONS",
    "COMPARE_TYPES",
    "L7_LISTENER_PROTOCOLS",
    "MAX_POSITION",
    "MAX_RULES_PER_POLICY",
    "REDIRECT_HTTP_CODES",
    "RULE_TYPES",
    "Decision",
    "L7Error",
    "Policy",
    "Request",
    "Router",
    "Rule",
    "acl_line",
    "check_rule",
    "evaluate",
    "haproxy_words",
    "order_positions",
    "policy_line",
    "rendered_policies",
    "rule_matches",
    "sanitize_policy",
]

REJECT = "REJECT"
REDIRECT_TO_URL = "REDIRECT_TO_URL"
REDIRECT_TO_POOL = "REDIRECT_TO_POOL"
REDIRECT_PREFIX = "REDIRECT_PREFIX"


# --------------------------------------------------------------------------------------
# The objects as HAProxy sees them
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    """One L7 rule (``acl`` line)."""

    type: str
    compare_type: str
    value: str
    key: str | None = None
    invert: bool = False
    enabled: bool = True
    name: str = ""

    @cached_property
    def patterns(self) -> tuple[str, ...]:
        """The pattern words HAProxy reads from the rendered value (empty: a parse error)."""
        try:
            return tuple(haproxy_words(escape_value(self.value)))
        except ValueError:
            return ()

    @cached_property
    def _regexes(self) -> tuple[re.Pattern[str], ...]:
        flags = re.IGNORECASE if self.type == "HOST_NAME" else 0
        out = []
        for p in self.patterns:
            try:
                out.append(re.compile(p, flags))
            except re.error:
                continue
        return tuple(out)


@dataclass(frozen=True)
class Policy:
    """One L7 policy of a listener."""

    name: str
    action: str
    position: int = MAX_POSITION
    rules: tuple[Rule, ...] = ()
    redirect_pool: str | None = None
    redirect_url: str | None = None
    redirect_prefix: str | None = None
    redirect_http_code: int | None = None
    enabled: bool = True

    @property
    def active_rules(self) -> tuple[Rule, ...]:
        """The rules Octavia renders: the enabled ones."""
        return tuple(r for r in self.rules if r.enabled)


@dataclass(frozen=True)
class Request:
    """What the L7 rules look at in one HTTP request."""

    host: str | None = None
    path: str = "/"
    headers: Mapping[str, str] = field(default_factory=dict)
    cookies: Mapping[str, str] = field(default_factory=dict)
    ssl_client_cert: bool = False
    ssl_verify_result: int = 0
    ssl_dn: Mapping[str, str] = field(default_factory=dict)

    def header_values(self, name: str) -> list[str]:
        """``req.hdr(name)``: every comma-separated occurrence, header names case-insensitive."""
        lname = name.lower()
        if lname == "host":
            raw = [self.host] if self.host is not None else []
        else:
            raw = [v for k, v in self.headers.items() if k.lower() == lname]
        if lname == "cookie" and self.cookies:
            raw.append("; ".join(f"{k}={v}" for k, v in self.cookies.items()))
        return [part.strip() for v in raw for part in v.split(",")]


@dataclass(frozen=True)
class Decision:
    """What HAProxy does with a request: ``reject`` (403), ``redirect`` (3xx),
    ``pool`` (a policy's backend) or ``default`` (the listener's default backend)."""

    kind: str
    policy: str | None = None
    pool: str | None = None
    code: int = 0
    location: str | None = None


DEFAULT = Decision("default")


# --------------------------------------------------------------------------------------
# HAProxy's configuration words
# --------------------------------------------------------------------------------------


def escape_value(value: str) -> str:
    """``_escape_haproxy_config_string``: backslashes doubled, spaces escaped."""
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


_SIMPLE_ESCAPES = {"\\": "\\", " ": " ", "'": "'", '"': '"', "#": "#", "$": "$", "r": "\r", "n": "\n", "t": "\t"}


def haproxy_words(text: str) -> list[str]:
    """Split a configuration fragment into words as HAProxy 2.6's line parser does.

    Unquoted and double-quoted text handles backslash escapes; single quotes keep
    everything literal; an unquoted ``#`` starts a comment. An unmatched quote is a
    configuration error (ValueError).
    """
    words: list[str] = []
    cur: list[str] = []
    has_word = False
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if quote == "'":
            if c == "'":
                quote = ""
            else:
                cur.append(c)
            i += 1
            continue
        if c == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt in _SIMPLE_ESCAPES:
                cur.append(_SIMPLE_ESCAPES[nxt])
                i += 2
            elif nxt == "x" and re.fullmatch(r"[0-9a-fA-F]{2}", text[i + 2 : i + 4]):
                cur.append(chr(int(text[i + 2 : i + 4], 16)))
                i += 4
            else:
                cur.append(c)
                i += 1
            has_word = True
            continue
        if quote == '"':
            if c == '"':
                quote = ""
            else:
                cur.append(c)
            i += 1
            continue
        if c in "'\"":
            quote = c
            has_word = True
        elif c == "#":
            break
        elif c in " \t":
            if has_word or cur:
                words.append("".join(cur))
            cur, has_word = [], False
        else:
            cur.append(c)
            has_word = True
        i += 1
    if quote:
        raise ValueError(f"unmatched quote in {text!r}")
    if has_word or cur:
        words.append("".join(cur))
    return words


_MATCH = {"REGEX": "-m reg", "STARTS_WITH": "-m beg", "ENDS_WITH": "-m end", "CONTAINS": "-m sub", "EQUAL_TO": "-m str"}


def acl_line(acl: str, rule: Rule) -> str:
    """The ``acl`` line ``l7rule_macro`` renders for ``rule`` under the name ``acl``."""
    match = _MATCH[rule.compare_type]
    value = escape_value(rule.value)
    if rule.type == "HOST_NAME":
        return f"    acl {acl} req.hdr(host) -i {match} {value}"
    if rule.type == "PATH":
        return f"    acl {acl} path {match} {value}"
    if rule.type == "FILE_TYPE":
        # EQUAL_TO renders a bare path_end (``path_end -m str`` does not work, HAProxy #2567)
        return f"    acl {acl} path_end {'' if rule.compare_type == 'EQUAL_TO' else match + ' '}{value}".rstrip()
    if rule.type == "HEADER":
        return f"    acl {acl} req.hdr({rule.key}) {match} {value}"
    if rule.type == "COOKIE":
        return f"    acl {acl} req.cook({rule.key}) {match} {value}"
    if rule.type == "SSL_CONN_HAS_CERT":
        return f"    acl {acl} ssl_c_used"
    if rule.type == "SSL_VERIFY_RESULT":
        return f"    acl {acl} ssl_c_verify eq {value}"
    return f"    acl {acl} ssl_c_s_dn({rule.key}) {match} {value}"


def policy_line(policy: Policy, acls: Sequence[str], backend: str | None) -> str | None:
    """The action line ``l7policy_macro`` renders; None when nothing is rendered
    (REDIRECT_TO_POOL to a disabled pool: ``backend`` None)."""
    cond = " ".join(("!" if r.invert else "") + a for r, a in zip(policy.active_rules, acls, strict=True))
    code = f" code {policy.redirect_http_code}" if policy.redirect_http_code else ""
    if policy.action == REJECT:
        return f"    http-request deny if {cond}"
    if policy.action == REDIRECT_TO_URL:
        return f"    redirect{code} location {policy.redirect_url} if {cond}"
    if policy.action == REDIRECT_PREFIX:
        return f"    redirect{code} prefix {policy.redirect_prefix} if {cond}"
    if backend is None:
        return None
    return f"    use_backend {backend} if {cond}"


# --------------------------------------------------------------------------------------
# Matching and evaluation
# --------------------------------------------------------------------------------------


def _path_only(path: str) -> str:
    """HAProxy's ``path`` fetch: the URI up to the query string."""
    return path.split("?", 1)[0]


def _samples(rule: Rule, req: Request) -> list[str] | None:
    """The sample values the rule's fetch returns; None when the fetch finds nothing."""
    t = rule.type
    if t == "HOST_NAME":
        vals = req.header_values("host")
        return vals or None
    if t in ("PATH", "FILE_TYPE"):
        return [_path_only(req.path)]
    if t == "HEADER":
        vals = req.header_values(rule.key or "")
        return vals or None
    if t == "COOKIE":
        v = req.cookies.get(rule.key or "")
        return None if v is None else [v]
    if t == "SSL_DN_FIELD":
        v = req.ssl_dn.get(rule.key or "")
        return None if v is None or not req.ssl_client_cert else [v]
    return None


def _match_one(rule: Rule, sample: str) -> bool:
    ctype = rule.compare_type
    if rule.type == "FILE_TYPE" and ctype == "EQUAL_TO":
        ctype = "ENDS_WITH"  # bare path_end
    if ctype == "REGEX":
        return any(rx.search(sample) for rx in rule._regexes)
    fold = rule.type == "HOST_NAME"
    s = sample.lower() if fold else sample
    for p in rule.patterns:
        p = p.lower() if fold else p
        if (
            (ctype == "EQUAL_TO" and s == p)
            or (ctype == "STARTS_WITH" and s.startswith(p))
            or (ctype == "ENDS_WITH" and s.endswith(p))
            or (ctype == "CONTAINS" and p in s)
        ):
            return True
    return False


def rule_matches(rule: Rule, req: Request) -> bool:
    """Whether the rule's ACL (with ``!`` when inverted) is true for the request.

    A fetch that finds nothing (no such header or cookie) makes the ACL false, so its
    inverted form is true.
    """
    if rule.type == "SSL_CONN_HAS_CERT":
        hit = req.ssl_client_cert
    elif rule.type == "SSL_VERIFY_RESULT":
        hit = req.ssl_client_cert and str(req.ssl_verify_result) in rule.patterns
    else:
        samples = _samples(rule, req)
        hit = samples is not None and any(_match_one(rule, s) for s in samples)
    return hit != rule.invert


def rendered_policies(policies: Iterable[Policy], pool_enabled: Callable[[str], bool] | None = None) -> list[Policy]:
    """The policies that appear in the frontend, in position order: enabled, at least one
    enabled rule, and for REDIRECT_TO_POOL an enabled pool."""
    out = []
    for p in sorted(policies, key=lambda p: p.position):
        if not p.enabled or not p.active_rules:
            continue
        if p.action == REDIRECT_TO_POOL and (
            p.redirect_pool is None or (pool_enabled is not None and not pool_enabled(p.redirect_pool))
        ):
            continue
        out.append(p)
    return out


_PHASE = {REJECT: 0, REDIRECT_TO_URL: 1, REDIRECT_PREFIX: 1, REDIRECT_TO_POOL: 2}


def evaluate(policies: Sequence[Policy], req: Request) -> Decision:
    """HAProxy's decision for ``req`` given the rendered ``policies`` (position order).

    ``http-request deny`` rules run before ``redirect`` rules, which run before
    ``use_backend`` rules; within each kind the configuration (position) order holds, and
    the first whose condition is true wins.
    """
    for phase in (0, 1, 2):
        for p in policies:
            if _PHASE[p.action] != phase:
                continue
            if all(rule_matches(r, req) for r in p.active_rules):
                if p.action == REJECT:
                    return Decision("reject", p.name, code=403)
                if p.action == REDIRECT_TO_POOL:
                    return Decision("pool", p.name, pool=p.redirect_pool)
                code = p.redirect_http_code or 302
                if p.action == REDIRECT_TO_URL:
                    return Decision("redirect", p.name, code=code, location=p.redirect_url)
                # ``redirect prefix``: the prefix, then the request's whole path and query
                return Decision("redirect", p.name, code=code, location=(p.redirect_prefix or "") + req.path)
    return DEFAULT


class Router:
    """A frontend's L7 decisions for a finite request mix, computed once per render.

    ``kinds`` are the request templates of the traffic mix; :meth:`decide` is a list
    look-up on the hot path.
    """

    __slots__ = ("decisions", "policies")

    def __init__(self, policies: Sequence[Policy], kinds: Sequence[Request]):
        self.policies = list(policies)
        self.decisions = [evaluate(self.policies, k) for k in kinds]

    def decide(self, kind: int) -> Decision:
        """The decision for request template ``kind``."""
        return self.decisions[kind]


# --------------------------------------------------------------------------------------
# Rendering a scenario listener (lbsim.haproxy.config calls these)
# --------------------------------------------------------------------------------------


def scenario_policies(li: Any) -> list[Policy]:
    """A scenario listener's policies as :class:`Policy` objects, numbered as Octavia
    numbers them (each inserted at its ``position`` in list order, then 1..n)."""
    order: list[str] = []
    by_name = {}
    for p in li.l7policies:
        by_name[p.name] = p
        order = order_positions(order, p.name, p.position)
    out = []
    for pos, name in enumerate(order, 1):
        p = by_name[name]
        rules = tuple(
            Rule(r.type, r.compare_type, r.value, r.key, r.invert, r.admin_state_up, rname)
            for r, rname in zip(p.rules, p.rule_names(), strict=True)
        )
        out.append(
            Policy(
                name,
                p.action,
                pos,
                rules,
                p.redirect_pool,
                p.redirect_url,
                p.redirect_prefix,
                p.redirect_http_code,
                p.admin_state_up,
            )
        )
    return out


def listener_l7_pools(li: Any, pools: Mapping[str, Any]) -> list[str]:
    """``Listener.pools`` beyond the default pool: redirect pools of enabled policies that
    have rules, first use first, enabled pools only (those get a backend)."""
    out: list[str] = []
    for p in scenario_policies(li):
        name = p.redirect_pool
        pool = pools.get(name) if name else None
        usable = name and p.enabled and p.rules and pool is not None and pool.admin_state_up
        if usable and name != li.default_pool and name not in out:
            out.append(str(name))
    return out


def frontend_lines(
    li: Any,
    pools: Mapping[str, Any],
    acl_name: Callable[[str], str],
    backend_name: Callable[[str], str],
) -> list[str]:
    """The ``acl``/action lines of a scenario listener's frontend, in position order.

    ``acl_name`` maps a rule's name to its ACL name (Octavia: the rule id),
    ``backend_name`` a pool's name to the listener's backend for it.
    """
    out: list[str] = []

    def enabled(name: str) -> bool:
        pool = pools.get(name)
        return pool is not None and bool(pool.admin_state_up)

    for p in rendered_policies(scenario_policies(li)):
        if p.action == REDIRECT_TO_POOL and not enabled(str(p.redirect_pool)):
            continue
        acls = [acl_name(r.name) for r in p.active_rules]
        out += [acl_line(a, r) for a, r in zip(acls, p.active_rules, strict=True)]
        line = policy_line(p, acls, backend_name(p.redirect_pool) if p.redirect_pool else None)
        if line is not None:
            out.append(line)
    return out
