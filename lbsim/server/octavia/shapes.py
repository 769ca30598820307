"""What the v2 API shows for each object: Octavia's response fields, with its defaults.

A :class:`View` reads the Twin's records once per request and turns each into the dict
Octavia returns (``GET .../loadbalancers/{id}`` inside its one key). Relations are shown the
way the CLI needs them: ``loadbalancers: [{"id": ...}]`` on listeners and pools, id lists for
a load balancer's listeners and pools, a pool's members and ``healthmonitor_id``.
Timestamps are a fixed wall-clock origin plus simulated seconds, formatted like Octavia's
(``2026-11-30T10:21:06.258493``); ``updated_at`` stays null until the first change.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from typing import Any, Protocol

#: Wall-clock time shown for simulated second 0.
ORIGIN = datetime(2026, 11, 30, 10, 0, 0)

PLURAL: Mapping[str, str] = {
    "loadbalancer": "loadbalancers",
    "listener": "listeners",
    "pool": "pools",
    "member": "members",
    "healthmonitor": "healthmonitors",
}
RESOURCE: Mapping[str, str] = {
    "loadbalancer": "Load Balancer",
    "listener": "Listener",
    "pool": "Pool",
    "member": "Member",
    "healthmonitor": "Health Monitor",
}


class RecordLike(Protocol):
    """What the shapes need from a Twin record (see ``lbsim.server.twin.ObjectRecord``)."""

    @property
    def key(self) -> str: ...


def timestamp(seconds: float | None) -> str | None:
    """Octavia's timestamp for a simulated time (None stays None)."""
    if seconds is None:
        return None
    return (ORIGIN + timedelta(seconds=float(seconds))).strftime("%Y-%m-%dT%H:%M:%S.%f")


def _get(rec: Any, name: str, default: Any = None) -> Any:
    value = getattr(rec, name, None)
    if value is None:
        attrs = getattr(rec, "attrs", None) or {}
        value = attrs.get(name)
    return default if value is None else value


def attr(rec: Any, name: str, default: Any = None) -> Any:
    """A field of a record: its ``attrs`` first, then the record itself."""
    attrs = getattr(rec, "attrs", None) or {}
    if name in attrs and attrs[name] is not None:
        return attrs[name]
    value = getattr(rec, name, None)
    return default if value is None else value


def relation(rec: Any, kind: str) -> str | None:
    """The id of a record's parent of ``kind`` (``loadbalancer``, ``pool``, ``default_pool``)."""
    for name in (f"{kind}_id", kind):
        value = attr(rec, name)
        if value is not None:
            return str(value)
    return None


def derived_uuid(*parts: str) -> str:
    """A stable UUID for something the Twin does not keep (a VIP port of a scenario LB)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, "lbsim-serve:" + ":".join(parts)))


class View:
    """Every record of the Twin indexed once, and Octavia's response dicts built from them."""

    def __init__(self, records: Mapping[str, Iterable[Any]], vip_for: Any = None) -> None:
        self.records: dict[str, list[Any]] = {k: list(v) for k, v in records.items()}
        self.by_id: dict[str, dict[str, Any]] = {k: {r.key: r for r in v} for k, v in self.records.items()}
        self.children: dict[tuple[str, str, str], list[str]] = defaultdict(list)
        for kind, parent in (
            ("listener", "loadbalancer"),
            ("pool", "loadbalancer"),
            ("member", "pool"),
            ("healthmonitor", "pool"),
            ("listener", "default_pool"),
        ):
            for r in self.records.get(kind, []):
                pid = relation(r, parent)
                if pid is not None:
                    self.children[(parent, pid, kind)].append(r.key)
        self._vip_for = vip_for

    def get(self, kind: str, key: str) -> Any | None:
        """The record of ``kind`` with id ``key``, or None."""
        return self.by_id.get(kind, {}).get(key)

    def shape(self, kind: str, rec: Any) -> dict[str, Any]:
        """Octavia's response dict for one record."""
        base = {
            "id": rec.key,
            "name": _get(rec, "name", ""),
            "provisioning_status": _get(rec, "provisioning_status"),
            "operating_status": _get(rec, "operating_status"),
            "created_at": timestamp(_get(rec, "created_at")),
            "updated_at": timestamp(getattr(rec, "updated_at", None)),
        }
        project = _get(rec, "project_id") or _get(rec, "project")
        body: dict[str, Any] = getattr(self, f"_{kind}")(rec)
        out = {**base, **body, "project_id": project, "tenant_id": project}
        if kind == "pool" and out["healthmonitor_id"] is None:
            del out["healthmonitor_id"]  # WSME leaves an unset child id out of the body
        return dict(sorted(out.items()))

    def ids(self, parent: str, pid: str, kind: str) -> list[dict[str, str]]:
        return [{"id": k} for k in self.children.get((parent, pid, kind), [])]

    def _loadbalancer(self, rec: Any) -> dict[str, Any]:
        vip = self._vip_for(rec) if self._vip_for is not None else {}
        return {
            "description": attr(rec, "description", ""),
            "admin_state_up": bool(attr(rec, "admin_state_up", True)),
            "provider": attr(rec, "provider", "amphora"),
            "flavor_id": attr(rec, "flavor_id"),
            "availability_zone": attr(rec, "availability_zone"),
            "vip_address": vip.get("vip_address", attr(rec, "vip_address")),
            "vip_network_id": vip.get("vip_network_id", attr(rec, "vip_network_id")),
            "vip_subnet_id": vip.get("vip_subnet_id", attr(rec, "vip_subnet_id")),
            "vip_port_id": vip.get("vip_port_id", attr(rec, "vip_port_id")),
            "vip_qos_policy_id": attr(rec, "vip_qos_policy_id"),
            "vip_vnic_type": attr(rec, "vip_vnic_type", "normal"),
            "vip_sg_ids": list(attr(rec, "vip_sg_ids", [])),
            "additional_vips": list(attr(rec, "additional_vips", [])),
            "tags": list(attr(rec, "tags", [])),
            "listeners": self.ids("loadbalancer", rec.key, "listener"),
            "pools": self.ids("loadbalancer", rec.key, "pool"),
        }

    def _listener(self, rec: Any) -> dict[str, Any]:
        lb = relation(rec, "loadbalancer")
        return {
            "description": attr(rec, "description", ""),
            "admin_state_up": bool(attr(rec, "admin_state_up", True)),
            "protocol": attr(rec, "protocol"),
            "protocol_port": attr(rec, "protocol_port"),
            "connection_limit": attr(rec, "connection_limit", -1),
            "default_pool_id": relation(rec, "default_pool"),
            "default_tls_container_ref": attr(rec, "default_tls_container_ref"),
            "sni_container_refs": list(attr(rec, "sni_container_refs", [])),
            "insert_headers": dict(attr(rec, "insert_headers", {})),
            "l7policies": [{"id": k} for k in attr(rec, "l7policies", [])],
            "loadbalancers": [{"id": lb}] if lb else [],
            "timeout_client_data": attr(rec, "timeout_client_data", 50000),
            "timeout_member_connect": attr(rec, "timeout_member_connect", 5000),
            "timeout_member_data": attr(rec, "timeout_member_data", 50000),
            "timeout_tcp_inspect": attr(rec, "timeout_tcp_inspect", 0),
            "tags": list(attr(rec, "tags", [])),
            "client_ca_tls_container_ref": attr(rec, "client_ca_tls_container_ref"),
            "client_authentication": attr(rec, "client_authentication", "NONE"),
            "client_crl_container_ref": attr(rec, "client_crl_container_ref"),
            "allowed_cidrs": attr(rec, "allowed_cidrs") or None,
            "tls_ciphers": attr(rec, "tls_ciphers"),
            "tls_versions": attr(rec, "tls_versions"),
            "alpn_protocols": attr(rec, "alpn_protocols"),
            "hsts_max_age": attr(rec, "hsts_max_age"),
            "hsts_include_subdomains": bool(attr(rec, "hsts_include_subdomains", False)),
            "hsts_preload": bool(attr(rec, "hsts_preload", False)),
        }

    def _pool(self, rec: Any) -> dict[str, Any]:
        lb = relation(rec, "loadbalancer")
        hms = self.children.get(("pool", rec.key, "healthmonitor"), [])
        sp = attr(rec, "session_persistence")
        if isinstance(sp, Mapping):
            sp = {
                "type": sp.get("type"),
                "cookie_name": sp.get("cookie_name"),
                "persistence_timeout": sp.get("persistence_timeout"),
                "persistence_granularity": sp.get("persistence_granularity"),
            }
        return {
            "description": attr(rec, "description", ""),
            "admin_state_up": bool(attr(rec, "admin_state_up", True)),
            "protocol": attr(rec, "protocol"),
            "lb_algorithm": attr(rec, "lb_algorithm"),
            "session_persistence": sp or None,
            "healthmonitor_id": hms[0] if hms else None,
            "listeners": self.ids("default_pool", rec.key, "listener"),
            "loadbalancers": [{"id": lb}] if lb else [],
            "members": self.ids("pool", rec.key, "member"),
            "tags": list(attr(rec, "tags", [])),
            "tls_container_ref": attr(rec, "tls_container_ref"),
            "ca_tls_container_ref": attr(rec, "ca_tls_container_ref"),
            "crl_container_ref": attr(rec, "crl_container_ref"),
            "tls_enabled": bool(attr(rec, "tls_enabled", False)),
            "tls_ciphers": attr(rec, "tls_ciphers"),
            "tls_versions": attr(rec, "tls_versions"),
            "alpn_protocols": attr(rec, "alpn_protocols"),
        }

    def _member(self, rec: Any) -> dict[str, Any]:
        return {
            "admin_state_up": bool(attr(rec, "admin_state_up", True)),
            "address": attr(rec, "address"),
            "protocol_port": attr(rec, "protocol_port"),
            "weight": attr(rec, "weight", 1),
            "backup": bool(attr(rec, "backup", False)),
            "subnet_id": attr(rec, "subnet_id"),
            "monitor_address": attr(rec, "monitor_address"),
            "monitor_port": attr(rec, "monitor_port"),
            "vnic_type": attr(rec, "vnic_type", "normal"),
            "tags": list(attr(rec, "tags", [])),
        }

    def _healthmonitor(self, rec: Any) -> dict[str, Any]:
        pool = relation(rec, "pool")
        return {
            "admin_state_up": bool(attr(rec, "admin_state_up", True)),
            "type": attr(rec, "type"),
            "delay": attr(rec, "delay"),
            "timeout": attr(rec, "timeout"),
            "max_retries": attr(rec, "max_retries"),
            "max_retries_down": attr(rec, "max_retries_down", 3),
            "http_method": attr(rec, "http_method"),
            "url_path": attr(rec, "url_path"),
            "expected_codes": attr(rec, "expected_codes"),
            "http_version": attr(rec, "http_version"),
            "domain_name": attr(rec, "domain_name"),
            "pools": [{"id": pool}] if pool else [],
            "tags": list(attr(rec, "tags", [])),
        }
