"""Octavia's ``unset``: a field sent as ``null`` in an update takes its default back.

The v2 API keeps fields left out of a PUT as they are; a field sent as ``null`` is
cleared, and the controllers' ``_set_default_on_none`` (listener, member, health monitor
in Octavia 19) puts the default back for the fields that have one. The OpenStack CLI's
``unset`` commands send exactly that (``openstack loadbalancer member unset --weight``
sends ``{"member": {"weight": null}}``). Fields without a default (``monitor_address``,
``allowed_cidrs``, ``default_pool``, ``session_persistence``, a monitor's
``domain_name``...) simply become null. The HTTP monitor fields are restored only on
HTTP/HTTPS monitors.

Scenarios use it as ``{api: update, member: web-1, set: {weight: null}}``; the control
plane applies it to every update, so scenarios and the API twin share it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: the defaults ``_set_default_on_none`` restores, per object type (Octavia 19, with the
#: ``[haproxy_amphora]`` timeouts at their configuration defaults)
UNSET_DEFAULTS: Mapping[str, Mapping[str, Any]] = {
    "listener": {
        "connection_limit": -1,
        "timeout_client_data": 50000,
        "timeout_member_connect": 5000,
        "timeout_member_data": 50000,
        "timeout_tcp_inspect": 0,
    },
    "member": {"weight": 1, "backup": False},
    "healthmonitor": {"max_retries_down": 3},
}
#: restored on HTTP and HTTPS monitors only
HTTP_MONITOR_DEFAULTS: Mapping[str, Any] = {"http_method": "GET", "url_path": "/", "expected_codes": "200"}


def restore_defaults(
    kind: str,
    body: Mapping[str, Any],
    current: Mapping[str, Any],
    defaults: Mapping[str, Mapping[str, Any]] = UNSET_DEFAULTS,
) -> dict[str, Any]:
    """``body`` of an update of a ``kind`` object whose attributes are ``current``, with
    every null that has a default replaced by it (a fresh copy of a list or dict default).

    ``defaults`` is the per-type table; the API server passes a larger one that also holds
    the fields the simulation does not use (name, description, tags...)."""
    out = dict(body)
    table = defaults.get(kind, {})
    for key, value in body.items():
        if value is not None:
            continue
        if key in table:
            default = table[key]
            out[key] = type(default)(default) if isinstance(default, list | dict) else default
        elif kind == "healthmonitor" and key in HTTP_MONITOR_DEFAULTS and current.get("type") in ("HTTP", "HTTPS"):
            out[key] = HTTP_MONITOR_DEFAULTS[key]
    return out
