"""LVS persistence templates: how keepalived/IPVS keeps UDP and SCTP clients on one member.

Octavia serves UDP and SCTP pools with keepalived's LVS, not HAProxy
(octavia-semantics.md §3.5). A pool's SOURCE_IP ``session_persistence`` renders
``persistence_timeout`` (Octavia writes 360 when the field is unset or 0) and
``persistence_granularity`` (a netmask; 255.255.255.255 for IPv4, /128 for IPv6 when
unset). IPVS then keeps one *template* per client network: the client's source
address ANDed with the granularity. Every client of that network goes to the
template's real server, and each new packet restarts the template's timer; a
template idle for ``persistence_timeout`` seconds expires and the next packet is
balanced anew. Unlike HAProxy's stick table there is no size limit and no LRU.

The data plane keeps its usual ``Backend.stick`` dictionary (masked key → server) and
asks this object for the key and whether an entry has expired.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from typing import Any

#: keepalived's persistence_timeout as Octavia renders it when the pool sets none (or 0)
DEFAULT_TIMEOUT = 360.0

LVS_PROTOCOLS = ("UDP", "SCTP")


@dataclass
class LvsPersistence:
    """One pool's persistence settings and the last packet time of each template."""

    timeout: float = DEFAULT_TIMEOUT
    #: the granularity as an integer netmask, ``None`` = a full /32 or /128 (one client)
    mask: int | None = None
    #: IPv6 granularity (applies to IPv6 sources); an IPv4 one applies to IPv4 sources
    mask_v6: bool = False
    seen: dict[Any, float] = field(default_factory=dict)

    def config(self) -> tuple[float, int | None, bool]:
        """What the rendered keepalived configuration says (templates survive equal ones)."""
        return (self.timeout, self.mask, self.mask_v6)

    def key(self, src: Any) -> Any:
        """The template key of a client address: its source masked by the granularity.

        Addresses are integers; one below 2**32 is taken as IPv4. A mask of the other
        family leaves the address whole, as keepalived's per-family default would.
        """
        if self.mask is None or not isinstance(src, int):
            return src
        if (src < 2**32) != (not self.mask_v6):
            return src
        return src & self.mask

    def expired(self, key: Any, now: float) -> bool:
        """Has the template gone longer than ``timeout`` without a packet?"""
        last = self.seen.get(key)
        return last is not None and now - last > self.timeout

    def touch(self, key: Any, now: float) -> None:
        """A packet from this client network restarts its template's timer."""
        self.seen[key] = now

    def forget(self, key: Any) -> None:
        """The template expired (or its member left): drop its timer."""
        self.seen.pop(key, None)


def lvs_persistence(pool_attrs: dict[str, Any], old: LvsPersistence | None = None) -> LvsPersistence | None:
    """The LVS persistence of a pool's attributes, or ``None`` (not UDP/SCTP, not SOURCE_IP).

    ``old`` is the same pool's previous rendering on this amphora: the IPVS table lives
    in the kernel and survives a keepalived reload, so an unchanged configuration
    returns ``old`` itself (its templates and timers kept).
    """
    if str(pool_attrs.get("protocol")) not in LVS_PROTOCOLS:
        return None
    sp = pool_attrs.get("session_persistence")
    if not isinstance(sp, dict) or sp.get("type") != "SOURCE_IP":
        return None
    timeout = float(sp.get("persistence_timeout") or DEFAULT_TIMEOUT)
    mask: int | None = None
    mask_v6 = False
    gran = sp.get("persistence_granularity")
    if gran:
        try:
            addr = ipaddress.ip_address(str(gran))
        except ValueError:  # validation refuses it; an unchecked body keeps one client a template
            addr = None
        if addr is not None:
            mask, mask_v6 = int(addr), addr.version == 6
    new = LvsPersistence(timeout, mask, mask_v6)
    if old is not None and old.config() == new.config():
        return old
    return new
