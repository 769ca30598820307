"""Pydantic models of the v2 API, for the OpenAPI description only.

Requests are validated by :mod:`lbsim.server.octavia.types` (WSME's rules and wording), so
these models describe rather than enforce: request models are built from the same field
tables, response models list what :mod:`lbsim.server.octavia.shapes` returns.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, create_model

from lbsim.server.octavia.types import REQUEST_TYPES, SP_POST, F


class IdOnly(BaseModel):
    """A related object, by id."""

    id: str


class Link(BaseModel):
    """A page link (``rel``: ``next`` or ``previous``)."""

    href: str
    rel: str


class SessionPersistence(BaseModel):
    """A pool's session persistence."""

    type: str
    cookie_name: str | None = None
    persistence_timeout: int | None = None
    persistence_granularity: str | None = None


def _pytype(spec: F) -> tuple[Any, Any]:
    kw: dict[str, Any] = {}
    if spec.minimum is not None:
        kw["ge"] = spec.minimum
    if spec.maximum is not None:
        kw["le"] = spec.maximum
    if spec.max_length is not None and spec.kind == "str":
        kw["max_length"] = spec.max_length
    default = ... if spec.mandatory else None
    kinds: dict[str, Any] = {
        "str": str,
        "uuid": str,
        "ip": str,
        "url_path": str,
        "int": int,
        "bool": bool,
        "float_enum": float,
        "str_list": list[str],
        "uuid_list": list[str],
        "cidr_list": list[str],
        "alpn_list": list[str],
        "dict": dict[str, str],
        "list": list[dict[str, Any]],
    }
    if spec.kind == "enum":
        from typing import Literal

        lit: Any = Literal[spec.choices]
        return (lit if spec.mandatory else lit | None, default)
    if spec.kind == "sp":
        return (SessionPersistence | None, None)
    typ: Any = kinds[spec.kind]
    if spec.kind == "list":
        kw["max_length"] = 0  # nested create trees are not simulated: only empty lists pass
    if not spec.mandatory:
        typ = typ | None
    return (typ, Field(default, **kw))


def _model(name: str, fields: dict[str, Any], *, forbid: bool = False) -> type[BaseModel]:
    """``create_model`` with field definitions built at run time."""
    make: Any = create_model
    model: type[BaseModel] = make(name, __config__=ConfigDict(extra="forbid") if forbid else None, **fields)
    return model


def _request_model(name: str, table: dict[str, F]) -> type[BaseModel]:
    fields = {k: _pytype(v) for k, v in table.items()}
    return _model(name, fields, forbid=True)


def _root(name: str, key: str, inner: Any) -> type[BaseModel]:
    return _model(name, {key: (inner, ...)}, forbid=True)


REQUESTS: dict[tuple[str, str], type[BaseModel]] = {}
for _kind, (_arg, _root_key, _post, _put) in REQUEST_TYPES.items():
    _title = "".join(p.capitalize() for p in _kind.split("_"))
    REQUESTS[(_kind, "create")] = _root(f"{_title}RootPOST", _root_key, _request_model(f"{_title}POST", _post))
    REQUESTS[(_kind, "update")] = _root(f"{_title}RootPUT", _root_key, _request_model(f"{_title}PUT", _put))
_member_item = _request_model("MemberBatchItem", {k: v for k, v in REQUEST_TYPES["member"][2].items()})
_item: Any = _member_item
MEMBERS_BATCH = _model("MembersRootPUT", {"members": (list[_item], ...)}, forbid=True)
_ = SP_POST


class _Common(BaseModel):
    id: str
    name: str
    provisioning_status: str
    operating_status: str
    project_id: str
    tenant_id: str
    created_at: str | None
    updated_at: str | None
    tags: list[str]


class LoadBalancer(_Common):
    """A load balancer as the API shows it."""

    description: str
    admin_state_up: bool
    provider: str
    flavor_id: str | None
    availability_zone: str | None
    vip_address: str | None
    vip_network_id: str | None
    vip_subnet_id: str | None
    vip_port_id: str | None
    vip_qos_policy_id: str | None
    vip_vnic_type: str
    vip_sg_ids: list[str]
    additional_vips: list[dict[str, Any]]
    listeners: list[IdOnly]
    pools: list[IdOnly]


class Listener(_Common):
    """A listener as the API shows it."""

    description: str
    admin_state_up: bool
    protocol: str
    protocol_port: int
    connection_limit: int
    default_pool_id: str | None
    default_tls_container_ref: str | None
    sni_container_refs: list[str]
    insert_headers: dict[str, str]
    l7policies: list[IdOnly]
    loadbalancers: list[IdOnly]
    timeout_client_data: int
    timeout_member_connect: int
    timeout_member_data: int
    timeout_tcp_inspect: int
    client_ca_tls_container_ref: str | None
    client_authentication: str
    client_crl_container_ref: str | None
    allowed_cidrs: list[str] | None
    tls_ciphers: str | None
    tls_versions: list[str] | None
    alpn_protocols: list[str] | None
    hsts_max_age: int | None
    hsts_include_subdomains: bool
    hsts_preload: bool


class Pool(_Common):
    """A pool as the API shows it."""

    description: str
    admin_state_up: bool
    protocol: str
    lb_algorithm: str
    session_persistence: SessionPersistence | None
    healthmonitor_id: str | None = None
    listeners: list[IdOnly]
    loadbalancers: list[IdOnly]
    members: list[IdOnly]
    tls_container_ref: str | None
    ca_tls_container_ref: str | None
    crl_container_ref: str | None
    tls_enabled: bool
    tls_ciphers: str | None
    tls_versions: list[str] | None
    alpn_protocols: list[str] | None


class Member(_Common):
    """A pool member as the API shows it."""

    admin_state_up: bool
    address: str
    protocol_port: int
    weight: int
    backup: bool
    subnet_id: str | None
    monitor_address: str | None
    monitor_port: int | None
    vnic_type: str


class HealthMonitor(_Common):
    """A health monitor as the API shows it."""

    admin_state_up: bool
    type: str
    delay: int
    timeout: int
    max_retries: int
    max_retries_down: int
    http_method: str | None
    url_path: str | None
    expected_codes: str | None
    http_version: float | None
    domain_name: str | None
    pools: list[IdOnly]


class Fault(BaseModel):
    """Octavia's error body."""

    faultcode: str
    faultstring: str
    debuginfo: None = None


class Stats(BaseModel):
    """Traffic counters of a load balancer or listener."""

    active_connections: int
    bytes_in: int
    bytes_out: int
    request_errors: int
    total_connections: int


class StatsRoot(BaseModel):
    """``GET .../stats``."""

    stats: Stats


class StatusRoot(BaseModel):
    """``GET /loadbalancers/{id}/status``: the status tree."""

    statuses: dict[str, Any]


MODELS: dict[str, type[BaseModel]] = {
    "loadbalancer": LoadBalancer,
    "listener": Listener,
    "pool": Pool,
    "member": Member,
    "healthmonitor": HealthMonitor,
}


def one_root(kind: str) -> type[BaseModel]:
    """``{"<kind>": {...}}``."""
    inner: Any = MODELS[kind]
    return _model(f"{inner.__name__}Root", {kind: (inner, ...)})


def list_root(kind: str, plural: str) -> type[BaseModel]:
    """``{"<plural>": [...], "<plural>_links": [...]}``."""
    inner: Any = MODELS[kind]
    return _model(f"{inner.__name__}sRoot", {plural: (list[inner], ...), f"{plural}_links": (list[Link], ...)})
