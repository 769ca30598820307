"""Listener ``allowed_cidrs``: Octavia's field, its validation, and the address filter.

Octavia does not put ``allowed_cidrs`` into haproxy.cfg. The amphora driver turns them
into Neutron security-group rules on the VIP port (``allowed_address_pairs.py``
``update_vip``: one ingress rule per CIDR and listener port; without ``allowed_cidrs`` one
rule open to all). A client outside every CIDR therefore never reaches HAProxy: its SYN is
dropped, it gets no answer (a connect timeout on its side), and HAProxy counts nothing.
The rules follow the listener: they change when a listener create/update flow runs.

Validation (``api/v2/types/listener.py`` ``CidrType``, ``controllers/listener.py``
``_validate_cidr_compatible_with_vip``): each entry must be an IPv4 or IPv6 CIDR, and its IP
version must match the VIP's ("CIDR X IP version incompatible with all VIPs [..] IP
version."). Duplicates are dropped (a set of ``ListenerCidr`` rows).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Annotated, Any

from pydantic import AfterValidator

PathT = tuple[str | int, ...]
Found = tuple[PathT, str]

#: the VIP lbsim gives a load balancer without ``vip_address`` (documentation range)
DEFAULT_VIP = "203.0.113.10"


def cidr_problem(value: Any) -> str | None:
    """None when ``value`` is a CIDR Octavia accepts, else its message."""
    try:
        ipaddress.ip_network(str(value), strict=False)
    except ValueError:
        return (
            f"Invalid input for field/attribute allowed_cidrs. Value: '{value}'. "
            "Value should be IPv4 or IPv6 CIDR format"
        )
    return None


def check_allowed_cidrs(listeners: Sequence[Any], vip: str | None, lpath: PathT) -> Iterator[Found]:
    """Each listener's ``allowed_cidrs`` against the VIP's IP version."""
    version = ipaddress.ip_address(vip or DEFAULT_VIP).version
    for i, li in enumerate(listeners):
        for j, cidr in enumerate(getattr(li, "allowed_cidrs", None) or []):
            net = ipaddress.ip_network(cidr, strict=False)
            if net.version != version:
                yield (
                    (*lpath, "listeners", i, "allowed_cidrs", j),
                    f"Validation failure: CIDR {cidr} IP version incompatible with all VIPs "
                    f"['{vip or DEFAULT_VIP}'] IP version.",
                )


def address_filter(cidrs: Iterable[str] | None) -> Callable[[Any], bool] | None:
    """A predicate ``allowed(client) -> bool`` for client addresses (integers or text);
    None when every client is allowed (no ``allowed_cidrs``)."""
    if not cidrs:
        return None
    ranges = []
    for c in cidrs:
        net = ipaddress.ip_network(str(c), strict=False)
        ranges.append((int(net.network_address), int(net.broadcast_address)))
    ranges.sort()
    cache: dict[Any, bool] = {}

    def allowed(client: Any) -> bool:
        hit = cache.get(client)
        if hit is None:
            a = int(ipaddress.ip_address(client)) if isinstance(client, str) else int(client)
            hit = any(lo <= a <= hi for lo, hi in ranges)
            if len(cache) < 1_000_000:
                cache[client] = hit
        return hit

    return allowed


def _cidr(value: str) -> str:
    problem = cidr_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _dedupe(values: list[str] | None) -> list[str] | None:
    if values is None:
        return None
    return list(dict.fromkeys(values))


#: one ``allowed_cidrs`` entry
Cidr = Annotated[str, AfterValidator(_cidr)]
#: the listener field (duplicates dropped, as Octavia keeps a set of rows)
AllowedCidrs = Annotated[list[Cidr] | None, AfterValidator(_dedupe)]


def separate_monitor(attrs: dict[str, Any] | None) -> bool:
    """Whether a member's health checks go to an endpoint of their own: a
    ``monitor_address`` or ``monitor_port`` that differs from the traffic endpoint. Without
    one, HAProxy (or keepalived) checks the traffic port, so a fault of "the monitor
    endpoint" or of "the traffic port" alone cannot happen: both share fate."""
    if not attrs:
        return False
    addr, port = attrs.get("address"), attrs.get("protocol_port")
    maddr, mport = attrs.get("monitor_address"), attrs.get("monitor_port")
    return (maddr is not None and maddr != addr) or (mport is not None and mport != port)
