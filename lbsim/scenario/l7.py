"""Scenario objects for L7 routing: listener ``l7policies`` with ``rules``, and the request
mix a traffic source sends (what the rules look at).

Field names, defaults and ranges are Octavia 19's (``octavia/api/v2/types/l7policy.py``
and ``l7rule.py``); the single-object checks and their messages are Octavia's
(``octavia/common/validate.py``: :func:`check_rule`, :func:`sanitize_policy`,
:func:`order_positions`), shared with the API twin through the control plane. The
checks that need the whole scenario (the redirect pool exists, its protocol fits the
listener, the listener protocol supports L7) are :func:`check_l7`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from lbsim.scenario.base import Name, _Strict

PathT = tuple[str | int, ...]
Found = tuple[PathT, str]

REJECT = "REJECT"
REDIRECT_TO_URL = "REDIRECT_TO_URL"
REDIRECT_TO_POOL = "REDIRECT_TO_POOL"
REDIRECT_PREFIX = "REDIRECT_PREFIX"
#: ``SUPPORTED_L7POLICY_ACTIONS``
ACTIONS = (REJECT, REDIRECT_TO_URL, REDIRECT_TO_POOL, REDIRECT_PREFIX)
#: ``SUPPORTED_L7RULE_TYPES``
RULE_TYPES = (
    "HOST_NAME",
    "PATH",
    "FILE_TYPE",
    "HEADER",
    "COOKIE",
    "SSL_CONN_HAS_CERT",
    "SSL_VERIFY_RESULT",
    "SSL_DN_FIELD",
)
#: ``SUPPORTED_L7RULE_COMPARE_TYPES``
COMPARE_TYPES = ("REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO")
#: ``SUPPORTED_L7POLICY_REDIRECT_HTTP_CODES``
REDIRECT_HTTP_CODES = (301, 302, 303, 307, 308)
#: ``MIN_POLICY_POSITION`` / ``MAX_POLICY_POSITION`` (the default: append)
MIN_POSITION = 1
MAX_POSITION = 2147483647
#: ``MAX_L7RULES_PER_L7POLICY`` (HAProxy failed to parse more, says Octavia's comment)
MAX_RULES_PER_POLICY = 50
#: the amphora driver's ``VALID_L7POLICY_LISTENER_PROTOCOLS``
L7_LISTENER_PROTOCOLS = ("HTTP", "TERMINATED_HTTPS")

# octavia/common/constants.py character classes (RFC 7230 / 6265)
_HEADER_NAME = re.compile(r"\A[a-zA-Z0-9!#$%&'*+-.^_`|~]+\Z")
_COOKIE_VALUE = re.compile(r"\A[a-zA-Z0-9!#$%&'()*+-./:<=>?@[\]^_`{|}~]+\Z")
_HEADER_VALUE = re.compile(r"\A[a-zA-Z0-9!\"#$%&'()*+,-./:;<=>?@[\]^_`{|}~\\]+\Z")
_QUOTED_HEADER_VALUE = re.compile(r"\A\"[a-zA-Z0-9 \t!\"#$%&'()*+,-./:;<=>?@[\]^_`{|}~\\]*\"\Z")
#: octavia-lib ``DISTINGUISHED_NAME_FIELD_REGEX`` (field names such as CN, OU, emailAddress)
_DN_FIELD = re.compile(r"^([a-zA-Z][A-Za-z0-9-]*)$")
_INVALID_URL_CHARS = re.compile(r"[\x00-\x20\x7f-\x9f]")


class L7Error(ValueError):
    """An L7 policy or rule Octavia refuses; ``str()`` is Octavia's message."""


# --------------------------------------------------------------------------------------
# Octavia's validation
# --------------------------------------------------------------------------------------


def _regex_problem(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as e:
        return f"Unable to parse regular expression: {e}"
    return None


def check_rule(rule_type: str, compare_type: str, key: str | None, value: str | None) -> str | None:
    """``validate.l7rule_data``: None when Octavia accepts the rule, else the message.

    The message is the inner one; the API wraps it as ``Error parsing L7Rule: <msg>``
    (``L7RuleValidation``, HTTP 400).
    """
    if rule_type not in RULE_TYPES:
        return "Invalid L7 Rule: invalid rule type"
    if compare_type not in COMPARE_TYPES:
        return f"Invalid input for field/attribute compare_type. Value: '{compare_type}'."
    if not value:
        return "Invalid L7 Rule: L7 rule type requires a value"
    string_ops = ("STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO")
    if rule_type in ("HEADER", "COOKIE"):
        if not key:
            return "Invalid L7 Rule: L7 rule type requires a key"
        if not _HEADER_NAME.match(key):
            return "Invalid characters in key"
        if compare_type == "REGEX":
            return _regex_problem(value)
        pattern_ok = (
            _HEADER_VALUE.match(value) or _QUOTED_HEADER_VALUE.match(value)
            if rule_type == "HEADER"
            else _COOKIE_VALUE.match(value)
        )
        if not pattern_ok:
            return f"Invalid characters in {'header' if rule_type == 'HEADER' else 'cookie'} value"
        return None
    if rule_type in ("HOST_NAME", "PATH") or (rule_type == "FILE_TYPE" and compare_type in ("REGEX", "EQUAL_TO")):
        if compare_type == "REGEX":
            return _regex_problem(value)
        if rule_type == "FILE_TYPE" or compare_type in string_ops:
            if not (_HEADER_VALUE.match(value) or _QUOTED_HEADER_VALUE.match(value)):
                return "Invalid characters in comparison value"
            return None
    if rule_type == "FILE_TYPE":
        return "Invalid L7 Rule: invalid comparison type for rule type"
    return _check_ssl_rule(rule_type, compare_type, key, value)


def _check_ssl_rule(rule_type: str, compare_type: str, key: str | None, value: str) -> str | None:
    """``validate_l7rule_ssl_types``."""
    msg: str | None = None
    if rule_type == "SSL_CONN_HAS_CERT":
        if key:
            msg = f'L7rule type {rule_type} does not use the "key" field.'
        elif value.lower() != "true":
            msg = f"L7rule value {value} is not a boolean True string."
        elif compare_type != "EQUAL_TO":
            msg = f"L7rule type {rule_type} only supports the EQUAL_TO compare type."
    elif rule_type == "SSL_VERIFY_RESULT":
        if key:
            msg = f'L7rule type {rule_type} does not use the "key" field.'
        elif not value.isdigit():
            msg = f"L7rule type {rule_type} needs a int value, which is >= 0"
        elif compare_type != "EQUAL_TO":
            msg = f"L7rule type {rule_type} only supports the EQUAL_TO compare type."
    else:  # SSL_DN_FIELD
        if compare_type == "REGEX" and (problem := _regex_problem(value)):
            return problem
        if not key or not value:
            msg = f"L7rule type {rule_type} needs to specify a key and a value."
        elif not _DN_FIELD.match(key):
            msg = "Invalid L7rule distinguished name field."
    return None if msg is None else f"Invalid L7 Rule: {msg}"


def check_url(url: str) -> str | None:
    """``validate.url`` (scheme http/https and a host required): None or the message."""
    bad = f"Not a valid URL: {url}"
    if _INVALID_URL_CHARS.search(url):
        return bad
    try:
        parts = urlsplit(url)
    except ValueError:
        return bad
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return bad
    return None


def sanitize_policy(policy: Mapping[str, Any], create: bool = False) -> dict[str, Any]:
    """``validate.sanitize_l7policy_api_args``: the action/redirect fields made consistent.

    Raises :class:`L7Error` with Octavia's message. A redirect field implies its action
    (``redirect_pool`` → REDIRECT_TO_POOL, ``redirect_url`` → REDIRECT_TO_URL,
    ``redirect_prefix`` → REDIRECT_PREFIX) and clears the others; URL and prefix redirects
    default ``redirect_http_code`` to 302; REJECT clears every redirect field.
    """
    p = dict(policy)
    action = p.get("action")
    if "action" in p:
        if action == REJECT:
            p["redirect_url"] = None
            p["redirect_pool"] = None
        elif action == REDIRECT_TO_URL:
            if not p.get("redirect_url"):
                raise L7Error("Invalid L7 Policy arguments: redirect_url must not be None")
            p["redirect_pool"] = None
        elif action == REDIRECT_TO_POOL:
            if not p.get("redirect_pool"):
                raise L7Error("Invalid L7 Policy arguments: redirect_pool_id or redirect_pool must not be None")
            p["redirect_url"] = None
        elif action == REDIRECT_PREFIX:
            if not p.get("redirect_prefix"):
                raise L7Error("Invalid L7 Policy arguments: redirect_prefix must not be None")
        else:
            raise L7Error(f"Invalid L7 Policy action specified: {action}")
    if p.get("redirect_pool") and (p.get("redirect_url") or p.get("redirect_prefix")):
        raise L7Error(
            "Invalid L7 Policy arguments: Cannot specify redirect_pool_id and redirect_url or "
            "redirect_prefix at the same time"
        )
    if p.get("redirect_pool"):
        p.update(action=REDIRECT_TO_POOL, redirect_url=None, redirect_prefix=None, redirect_http_code=None)
    for fld, act in (("redirect_url", REDIRECT_TO_URL), ("redirect_prefix", REDIRECT_PREFIX)):
        if p.get(fld):
            if (problem := check_url(str(p[fld]))) is not None:
                raise L7Error(problem)
            other = "redirect_prefix" if fld == "redirect_url" else "redirect_url"
            p.update({"action": act, "redirect_pool": None, other: None})
            if not p.get("redirect_http_code"):
                p["redirect_http_code"] = 302
    if create and "action" not in p:
        raise L7Error("Invalid L7 Policy action specified: None")
    code = p.get("redirect_http_code")
    if code is not None and code not in REDIRECT_HTTP_CODES:
        raise L7Error(
            f"Invalid input for field/attribute redirect_http_code. Value: '{code}'. "
            f"Value should be one of: {', '.join(str(c) for c in REDIRECT_HTTP_CODES)}"
        )
    return p


def order_positions(names: Sequence[str], moved: str | None = None, position: int | None = None) -> list[str]:
    """The listener's policies after Octavia's renumbering (``ordering_list``, count from 1).

    ``names`` is the current order (positions 1..n). A new policy is appended and, when
    its ``position`` is smaller than the new count, moved there (create); an existing one
    is popped and reinserted at ``position`` (update). Positions past the end append.
    Deleting a policy renumbers the rest, which is just ``names`` without it.
    """
    order = [n for n in names if n != moved]
    if moved is None:
        return order
    at = len(order) if position is None else min(max(position, MIN_POSITION) - 1, len(order))
    order.insert(at, moved)
    return order


MAX_RULES = MAX_RULES_PER_POLICY
#: ``VALID_LISTENER_POOL_PROTOCOL_MAP`` for the L7 listener protocols
L7_POOL_PROTOCOLS = {"HTTP": ("HTTP", "PROXY", "PROXYV2"), "TERMINATED_HTTPS": ("HTTP", "PROXY", "PROXYV2")}

RuleType = Literal[
    "HOST_NAME", "PATH", "FILE_TYPE", "HEADER", "COOKIE", "SSL_CONN_HAS_CERT", "SSL_VERIFY_RESULT", "SSL_DN_FIELD"
]
CompareType = Literal["REGEX", "STARTS_WITH", "ENDS_WITH", "CONTAINS", "EQUAL_TO"]
Action = Literal["REJECT", "REDIRECT_TO_URL", "REDIRECT_TO_POOL", "REDIRECT_PREFIX"]
_NoCrLf = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[^\r\n]*$")]


class L7Rule(_Strict):
    """An L7 rule: one condition of its policy (all rules of a policy must hold)."""

    name: Name | None = Field(default=None, description="lbsim: a name for API events (default <policy>-rule<i>)")
    type: RuleType
    compare_type: CompareType
    key: _NoCrLf | None = None
    value: _NoCrLf
    invert: bool = False
    admin_state_up: bool = True

    @model_validator(mode="after")
    def _octavia(self) -> L7Rule:
        problem = check_rule(self.type, self.compare_type, self.key, self.value)
        if problem is not None:
            raise ValueError(f"Error parsing L7Rule: {problem}")
        return self


class L7Policy(_Strict):
    """An L7 policy of a listener (``action`` on requests matching all its ``rules``)."""

    name: Name
    action: Action
    position: Annotated[int, Field(ge=1, le=MAX_POSITION)] = MAX_POSITION
    redirect_pool: Name | None = None
    redirect_url: Annotated[str, Field(max_length=255)] | None = None
    redirect_prefix: Annotated[str, Field(max_length=255)] | None = None
    redirect_http_code: Literal[301, 302, 303, 307, 308] | None = None
    admin_state_up: bool = True
    rules: Annotated[list[L7Rule], Field(max_length=MAX_RULES)] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _sanitize(cls, data: Any) -> Any:
        # Octavia's sanitize_l7policy_api_args: a redirect field implies its action and
        # clears the others; URL/prefix redirects default to 302; REJECT clears all.
        if not isinstance(data, Mapping):
            return data
        fixed = sanitize_policy(data, create=True)
        return {k: v for k, v in fixed.items() if k in data or v is not None}

    def rule_names(self) -> list[str]:
        """Each rule's name: its own, or ``<policy>-rule<i>`` (1-based)."""
        return [r.name or f"{self.name}-rule{i}" for i, r in enumerate(self.rules, 1)]


class RequestKind(_Strict):
    """One kind of request in a traffic source's mix, sent with probability ∝ ``weight``."""

    weight: Annotated[float, Field(gt=0)] = 1.0
    host: Annotated[str, Field(max_length=255)] | None = Field(default=None, description="Host header (none: absent)")
    path: Annotated[str, Field(min_length=1, max_length=2048, pattern=r"^/[^\s]*$")] = "/"
    headers: dict[str, str] = Field(default_factory=dict)
    cookies: dict[str, str] = Field(default_factory=dict)
    ssl_client_cert: bool = Field(default=False, description="the client presented a certificate (TLS listeners)")
    ssl_verify_result: Annotated[int, Field(ge=0)] = 0
    ssl_dn: dict[str, str] = Field(default_factory=dict, description="client certificate subject fields")

    @model_validator(mode="after")
    def _names(self) -> RequestKind:
        for k in [*self.headers, *self.cookies]:
            if not re.match(r"\A[a-zA-Z0-9!#$%&'*+-.^_`|~]+\Z", k):
                raise ValueError(f"invalid header or cookie name {k!r}")
        return self


def check_l7(listeners: list[Any], pools: Mapping[str, Any], lpath: PathT) -> Iterator[Found]:
    """Whole-scenario L7 checks, each with its field path and Octavia's message."""
    policy_names: dict[str, PathT] = {}
    rule_names: dict[str, PathT] = {}
    for i, li in enumerate(listeners):
        here = (*lpath, "listeners", i, "l7policies")
        for j, pol in enumerate(li.l7policies):
            ppath = (*here, j)
            if pol.name in policy_names:
                yield (*ppath, "name"), f"duplicate L7 policy name {pol.name!r}"
            policy_names.setdefault(pol.name, ppath)
            for k, rname in enumerate(pol.rule_names()):
                if rname in rule_names:
                    yield (*ppath, "rules", k, "name"), f"duplicate L7 rule name {rname!r}"
                rule_names.setdefault(rname, (*ppath, "rules", k))
            if li.protocol == "PROMETHEUS":
                yield (*ppath,), "Protocol PROMETHEUS listeners cannot have child objects."
                continue
            if li.protocol not in L7_LISTENER_PROTOCOLS:
                yield (
                    (*ppath,),
                    (
                        f"Provider 'amphora' does not support a requested option: "
                        f"{li.protocol} protocol listeners do not support L7 policies"
                    ),
                )
                continue
            if pol.action != "REDIRECT_TO_POOL" or pol.redirect_pool is None:
                continue
            pool = pools.get(pol.redirect_pool)
            if pool is None:
                yield (*ppath, "redirect_pool"), f"Pool {pol.redirect_pool} not found."
            elif pool.protocol not in L7_POOL_PROTOCOLS[li.protocol]:
                yield (
                    (*ppath, "redirect_pool"),
                    (
                        f"Validation failure: The pool protocol '{pool.protocol}' is invalid while the "
                        f"listener protocol is '{li.protocol}'."
                    ),
                )


def check_mixes(traffic: list[Any]) -> Iterator[Found]:
    """Traffic sources on one listener share its request mix: a second, different
    ``requests`` list would be ignored, so it is an error."""
    first: dict[str, tuple[int, Any]] = {}
    for i, src in enumerate(traffic):
        if not src.requests:
            continue
        seen = first.setdefault(src.listener, (i, src.requests))
        if seen[0] != i and seen[1] != src.requests:
            yield (
                ("traffic", i, "requests"),
                f"listener {src.listener!r} already has a request mix (traffic[{seen[0]}]); "
                "sources on one listener share it: give it once or make them equal",
            )
