"""Request types of the Octavia v2 API: which fields a POST or PUT accepts, their
constraints and defaults, validated with WSME's wording.

Each resource has a POST and a PUT field table (Octavia's ``*POST``/``*PUT`` WSME types):
a PUT accepts fewer fields (``vip_address`` or ``protocol`` cannot change), and a field outside
the table is "Unknown attribute for argument ...". Values are converted the way WSME converts
JSON (numeric strings become integers: the CLI sends ``"connection_limit": "1000"``) and then
checked; a conversion failure names the whole argument, a check failure names the field.
"""

from __future__ import annotations

import ipaddress
import re
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from lbsim.scenario.unset import HTTP_MONITOR_DEFAULTS
from lbsim.scenario.unset import UNSET_DEFAULTS as SIM_UNSET_DEFAULTS
from lbsim.server.octavia.errors import invalid_input, unknown_attributes

# Octavia's limits (octavia/common/constants.py).
MAX_TIMEOUT = 24 * 24 * 60 * 60 * 1000
MIN_PORT, MAX_PORT = 1, 65535
LISTENER_PROTOCOLS = ("HTTP", "HTTPS", "TCP", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS")
POOL_PROTOCOLS = ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP", "UDP", "SCTP")
LB_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
SP_TYPES = ("SOURCE_IP", "APP_COOKIE", "HTTP_COOKIE")
HM_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH")
CLIENT_AUTH = ("NONE", "OPTIONAL", "MANDATORY")
ALPN = ("http/1.0", "http/1.1", "h2")
EXPECTED_CODES = re.compile(r"^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$")
COOKIE_NAME = re.compile(r"^[^\s,;\\]+$")
DOMAIN_NAME = re.compile(r"^(?=^.{1,254}$)(^(?:(?!\d+\.|-)[a-zA-Z0-9_\-]{1,63}(?<!-)\.?)+(?:[a-zA-Z]{2,})$)")
URL_PATH = re.compile(r"^/[\w\-./~%!$&'()*+,;=:@]*(\?[\w\-./~%!$&'()*+,;=:@?]*)?$")
_TRUE = {"true", "1", "yes", "y", "on", "t"}
_FALSE = {"false", "0", "no", "n", "off", "f"}


class _Convert(Exception):
    """A JSON value could not be converted to the field's type (WSME names the argument)."""


@dataclass(frozen=True)
class F:
    """One field of a request type.

    ``kind``: str, int, bool, uuid, ip, enum, float_enum, url_path, cidr_list, uuid_list,
    str_list, alpn_list, dict, sp (session persistence, a nested type), list (raw).
    """

    kind: str
    mandatory: bool = False
    default: Any = None
    has_default: bool = False
    minimum: int | None = None
    maximum: int | None = None
    max_length: int | None = None
    min_length: int | None = None
    pattern: re.Pattern[str] | None = None
    choices: tuple[Any, ...] = ()


def d(kind: str, default: Any, **kw: Any) -> F:
    """A field with a WSME default (filled in on POST when absent)."""
    return F(kind, default=default, has_default=True, **kw)


S255 = F("str", max_length=255)
TAGS = F("str_list", max_length=255)
TIMEOUT = F("int", minimum=0, maximum=MAX_TIMEOUT)
PORT = F("int", minimum=MIN_PORT, maximum=MAX_PORT)
RETRIES = F("int", minimum=1, maximum=10)

LB_POST: dict[str, F] = {
    "name": S255,
    "description": S255,
    "admin_state_up": d("bool", True),
    "vip_address": F("ip"),
    "vip_port_id": F("uuid"),
    "vip_subnet_id": F("uuid"),
    "vip_network_id": F("uuid"),
    "vip_qos_policy_id": F("uuid"),
    "vip_sg_ids": F("uuid_list"),
    "additional_vips": d("list", []),
    "project_id": F("str", max_length=36),
    "listeners": d("list", []),
    "pools": d("list", []),
    "provider": F("str", max_length=64),
    "tags": TAGS,
    "flavor_id": F("uuid"),
    "availability_zone": S255,
    "vip_vnic_type": F("str"),
}
LB_PUT: dict[str, F] = {
    "name": S255,
    "description": S255,
    "vip_qos_policy_id": F("uuid"),
    "admin_state_up": F("bool"),
    "vip_sg_ids": F("uuid_list"),
    "tags": TAGS,
}

LISTENER_POST: dict[str, F] = {
    "name": S255,
    "description": S255,
    "admin_state_up": d("bool", True),
    "protocol": F("enum", mandatory=True, choices=LISTENER_PROTOCOLS),
    "protocol_port": F(**{**PORT.__dict__, "mandatory": True}),
    "connection_limit": d("int", -1, minimum=-1),
    "default_tls_container_ref": S255,
    "sni_container_refs": F("str_list", max_length=255),
    "project_id": F("str", max_length=36),
    "default_pool_id": F("uuid"),
    "default_pool": F("list"),
    "l7policies": d("list", []),
    "insert_headers": F("dict"),
    "loadbalancer_id": F("uuid", mandatory=True),
    "timeout_client_data": TIMEOUT,
    "timeout_member_connect": TIMEOUT,
    "timeout_member_data": TIMEOUT,
    "timeout_tcp_inspect": TIMEOUT,
    "tags": TAGS,
    "client_ca_tls_container_ref": S255,
    "client_authentication": d("enum", "NONE", choices=CLIENT_AUTH),
    "client_crl_container_ref": S255,
    "allowed_cidrs": F("cidr_list"),
    "tls_ciphers": F("str", max_length=2048),
    "tls_versions": F("str_list", max_length=32),
    "alpn_protocols": F("alpn_list"),
    "hsts_max_age": F("int", minimum=0),
    "hsts_include_subdomains": d("bool", False),
    "hsts_preload": d("bool", False),
}
LISTENER_PUT: dict[str, F] = {
    k: F(**{**v.__dict__, "mandatory": False, "has_default": False, "default": None})
    for k, v in LISTENER_POST.items()
    if k not in ("protocol", "protocol_port", "project_id", "default_pool", "l7policies", "loadbalancer_id")
}

POOL_POST: dict[str, F] = {
    "name": S255,
    "description": S255,
    "admin_state_up": d("bool", True),
    "listener_id": F("uuid"),
    "loadbalancer_id": F("uuid"),
    "protocol": F("enum", mandatory=True, choices=POOL_PROTOCOLS),
    "lb_algorithm": F("enum", mandatory=True, choices=LB_ALGORITHMS),
    "session_persistence": F("sp"),
    "project_id": F("str", max_length=36),
    "healthmonitor": F("list"),
    "members": F("list"),
    "tags": TAGS,
    "tls_container_ref": S255,
    "ca_tls_container_ref": S255,
    "crl_container_ref": S255,
    "tls_enabled": d("bool", False),
    "tls_ciphers": F("str", max_length=2048),
    "tls_versions": F("str_list", max_length=32),
    "alpn_protocols": F("alpn_list"),
}
POOL_PUT: dict[str, F] = {
    k: F(**{**v.__dict__, "mandatory": False, "has_default": False, "default": None})
    for k, v in POOL_POST.items()
    if k not in ("listener_id", "loadbalancer_id", "protocol", "project_id", "healthmonitor", "members")
}

SP_POST: dict[str, F] = {
    "type": F("enum", mandatory=True, choices=SP_TYPES),
    "cookie_name": d("str", None, max_length=255, pattern=COOKIE_NAME),
    "persistence_timeout": d("int", None),
    "persistence_granularity": d("ip", None),
}
SP_PUT: dict[str, F] = {**SP_POST, "type": F("enum", choices=SP_TYPES)}

MEMBER_POST: dict[str, F] = {
    "name": S255,
    "admin_state_up": d("bool", True),
    "address": F("ip", mandatory=True),
    "protocol_port": F(**{**PORT.__dict__, "mandatory": True}),
    "weight": d("int", 1, minimum=0, maximum=256),
    "backup": d("bool", False),
    "subnet_id": F("uuid"),
    "project_id": F("str", max_length=36),
    "monitor_port": d("int", None, minimum=MIN_PORT, maximum=MAX_PORT),
    "monitor_address": d("ip", None),
    "tags": TAGS,
    "request_sriov": d("bool", False),
}
MEMBER_PUT: dict[str, F] = {
    "name": S255,
    "admin_state_up": F("bool"),
    "weight": F("int", minimum=0, maximum=256),
    "backup": F("bool"),
    "monitor_port": PORT,
    "monitor_address": F("ip"),
    "tags": TAGS,
}

HM_POST: dict[str, F] = {
    "name": S255,
    "type": F("enum", mandatory=True, choices=HM_TYPES),
    "delay": F("int", mandatory=True, minimum=0),
    "timeout": F("int", mandatory=True, minimum=0),
    "max_retries_down": d("int", 3, minimum=1, maximum=10),
    "max_retries": F(**{**RETRIES.__dict__, "mandatory": True}),
    "http_method": F("enum", choices=HTTP_METHODS),
    "url_path": F("url_path"),
    "expected_codes": F("str", pattern=EXPECTED_CODES),
    "admin_state_up": d("bool", True),
    "project_id": F("str", max_length=36),
    "pool_id": F("uuid", mandatory=True),
    "tags": TAGS,
    "http_version": F("float_enum", choices=(1.0, 1.1)),
    "domain_name": F("str", min_length=1, max_length=255, pattern=DOMAIN_NAME),
}
HM_PUT: dict[str, F] = {
    k: F(**{**v.__dict__, "mandatory": False, "has_default": False, "default": None})
    for k, v in HM_POST.items()
    if k not in ("type", "project_id", "pool_id")
}

#: kind -> (WSME argument name of POST/PUT, root key, POST table, PUT table)
REQUEST_TYPES: Mapping[str, tuple[str, str, dict[str, F], dict[str, F]]] = {
    "loadbalancer": ("load_balancer", "loadbalancer", LB_POST, LB_PUT),
    "listener": ("listener_", "listener", LISTENER_POST, LISTENER_PUT),
    "pool": ("pool_", "pool", POOL_POST, POOL_PUT),
    "member": ("member_", "member", MEMBER_POST, MEMBER_PUT),
    "healthmonitor": ("health_monitor_", "healthmonitor", HM_POST, HM_PUT),
}


def parse_body(kind: str, op: str, body: Any, *, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Validate a POST (``op="create"``) or PUT (``"update"``) body of ``kind``.

    Returns the inner object with values converted; on create the WSME defaults are filled
    in, on update only the fields sent are returned (``None`` for ``unset``). ``extra`` adds
    keys the URL supplies (a member's ``pool_id``) before the mandatory check."""
    argname, root, post, put = REQUEST_TYPES[kind]
    table = post if op == "create" else put
    if not isinstance(body, dict):
        raise invalid_input(argname, body, "Value should be a JSON object")
    unknown = [k for k in body if k != root]
    if unknown:
        raise unknown_attributes(argname, unknown)
    inner = body.get(root)
    if inner is None:
        inner = {}
    if not isinstance(inner, dict):
        raise invalid_input(argname, body, f"Value should be a JSON object: {root}")
    inner = {**inner, **(extra or {})}
    try:
        return _convert_object(inner, table, f"{argname}.{root}", op == "create")
    except _Convert as err:
        raise invalid_input(argname, body, str(err)) from None


def parse_member_batch(body: Any, pool_id: str) -> list[dict[str, Any]]:
    """Validate a batch member update (``PUT /pools/{id}/members``): ``{"members": [...]}``."""
    if not isinstance(body, dict):
        raise invalid_input("members_", body, "Value should be a JSON object")
    unknown = [k for k in body if k != "members"]
    if unknown:
        raise unknown_attributes("members_", unknown)
    members = body.get("members")
    if members is None:
        members = []
    if not isinstance(members, list):
        raise invalid_input("members_", body, "Value should be a list")
    out = []
    for item in members:
        if not isinstance(item, dict):
            raise invalid_input("members_", body, "Value should be a JSON object")
        try:
            out.append(
                _convert_object(
                    {**item, "pool_id": pool_id}, {**MEMBER_POST, "pool_id": F("uuid")}, "members_.members", True
                )
            )
        except _Convert as err:
            raise invalid_input("members_", body, str(err)) from None
    return out


def _convert_object(value: dict[str, Any], table: Mapping[str, F], path: str, create: bool) -> dict[str, Any]:
    unknown = [k for k in value if k not in table]
    if unknown:
        raise unknown_attributes(path, unknown)
    out: dict[str, Any] = {}
    for name in sorted(table):
        spec = table[name]
        if name in value:
            raw = value[name]
            out[name] = None if raw is None else _convert(name, spec, raw, path, create)
        elif spec.mandatory and create:
            raise invalid_input(name, None, "Mandatory field missing.")
        elif create and spec.has_default:
            default = spec.default
            out[name] = list(default) if isinstance(default, list) else default
    return {k: out[k] for k in sorted(out, key=lambda k: list(table).index(k))}


def _convert(name: str, spec: F, raw: Any, path: str, create: bool) -> Any:
    kind = spec.kind
    if kind == "bool":
        return _to_bool(raw)
    if kind == "int":
        value = _to_int(raw)
        if spec.minimum is not None and value < spec.minimum:
            raise invalid_input(name, raw, f"Value should be greater or equal to {spec.minimum}")
        if spec.maximum is not None and value > spec.maximum:
            raise invalid_input(name, raw, f"Value should be lower or equal to {spec.maximum}")
        return value
    if kind in ("str", "uuid", "ip", "enum", "url_path"):
        if not isinstance(raw, str):
            raise invalid_input(name, raw, f"Wrong type. Expected '{str}', got '{type(raw)}'")
        return _check_text(name, spec, raw)
    if kind == "float_enum":
        try:
            number = float(raw)
        except (TypeError, ValueError):
            raise _Convert(f"could not convert {type(raw).__name__} to float: {raw!r}") from None
        if number not in spec.choices:
            raise invalid_input(name, raw, "Value should be one of: " + ", ".join(map(str, spec.choices)))
        return number
    if kind in ("str_list", "uuid_list", "cidr_list", "alpn_list"):
        if not isinstance(raw, list):
            raise _Convert(f"Value should be a list: {name}")
        item = {"str_list": "str", "uuid_list": "uuid", "cidr_list": "cidr", "alpn_list": "alpn"}[kind]
        return [_list_item(name, item, spec, v) for v in raw]
    if kind == "dict":
        if not isinstance(raw, dict) or not all(isinstance(v, str) and len(v) <= 255 for v in raw.values()):
            raise _Convert(f"Value should be a JSON object of strings: {name}")
        return {str(k): v for k, v in raw.items()}
    if kind == "sp":
        if not isinstance(raw, dict):
            raise _Convert(f"Value should be a JSON object: {name}")
        return _convert_object(raw, SP_POST if create else SP_PUT, f"{path}.{name}", create)
    if not isinstance(raw, list):  # "list": nested create trees, accepted only when empty
        raise _Convert(f"Value should be a list: {name}")
    return raw


def _list_item(name: str, item: str, spec: F, v: Any) -> Any:
    if not isinstance(v, str):
        raise invalid_input(name, v, f"Wrong type. Expected '{str}', got '{type(v)}'")
    if item == "uuid":
        return _check_text(name, F("uuid"), v)
    if item == "cidr":
        try:
            return ipaddress.ip_network(v, strict=False).with_prefixlen
        except ValueError:
            raise invalid_input(name, v, "Value should be IPv4 or IPv6 CIDR format") from None
    if item == "alpn":
        if v not in ALPN:
            raise invalid_input(name, v, "Value should be a valid ALPN protocol ID")
        return v
    if spec.max_length is not None and len(v) > spec.max_length:
        raise invalid_input(name, v, f"Value should have a maximum character requirement of {spec.max_length}")
    return v


def _check_text(name: str, spec: F, raw: str) -> str:
    kind = spec.kind
    if kind == "uuid":
        try:
            uuid.UUID(raw)
        except ValueError:
            raise invalid_input(name, raw, "Value should be UUID format") from None
        return raw
    if kind == "ip":
        try:
            ipaddress.ip_address(raw)
        except ValueError:
            raise invalid_input(name, raw, "Value should be IPv4 or IPv6 format") from None
        return raw
    if kind == "enum":
        if raw not in spec.choices:
            raise invalid_input(name, raw, "Value should be one of: " + ", ".join(spec.choices))
        return raw
    if kind == "url_path":
        if not URL_PATH.match(raw):
            raise invalid_input(name, raw, "Value must be a valid URL Path string")
        return raw
    if spec.min_length is not None and len(raw) < spec.min_length:
        raise invalid_input(name, raw, f"Value should have a minimum character requirement of {spec.min_length}")
    if spec.max_length is not None and len(raw) > spec.max_length:
        raise invalid_input(name, raw, f"Value should have a maximum character requirement of {spec.max_length}")
    if spec.pattern is not None and not spec.pattern.match(raw):
        raise invalid_input(name, raw, f"Value should match the pattern {spec.pattern.pattern}")
    return raw


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Convert(f"Value not an unambiguous boolean: {raw}")


def _to_int(raw: Any) -> int:
    if isinstance(raw, bool):
        return int(raw)
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw != raw or raw in (float("inf"), float("-inf")):
            raise _Convert(f"cannot convert float {raw} to integer")
        return int(raw)
    if isinstance(raw, str):
        try:
            return int(raw)
        except ValueError:
            raise _Convert(f"invalid literal for int() with base 10: {raw!r}") from None
    raise _Convert(f"int() argument must be a string, a bytes-like object or a real number, not '{type(raw).__name__}'")


#: What ``unset`` (a field sent as null on PUT) restores, per kind: the simulation's table
#: (:data:`lbsim.scenario.unset.UNSET_DEFAULTS`, Octavia's ``_set_default_on_none``) plus the
#: DB defaults of the fields only the API keeps.
_API_ONLY_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "loadbalancer": {"name": "", "description": "", "tags": []},
    "listener": {
        "name": "",
        "description": "",
        "tags": [],
        "insert_headers": {},
        "sni_container_refs": [],
        "client_authentication": "NONE",
    },
    "pool": {"name": "", "description": "", "tags": []},
    "member": {"name": "", "tags": []},
    "healthmonitor": {"name": "", "tags": []},
}
UNSET_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    kind: {**extra, **SIM_UNSET_DEFAULTS.get(kind, {})} for kind, extra in _API_ONLY_DEFAULTS.items()
}

#: The HTTP health monitor's defaults (``_validate_create_hm`` and ``_set_default_on_none``).
HM_HTTP_DEFAULTS: Mapping[str, str] = HTTP_MONITOR_DEFAULTS

Checker = Callable[[dict[str, Any]], None]
