"""Availability zones as failure domains (lbsim): where amphorae run and what an AZ outage does.

Octavia's load balancer ``availability_zone`` names an AZ (an Octavia availability-zone
object mapped to a Nova ``compute_zone``); every amphora of the load balancer is booted
there. lbsim also takes a list of zones, an AZ spread: amphorae go to the first zone that
is up and holds no live amphora of the same load balancer (so ACTIVE_STANDBY with two
zones has its MASTER and BACKUP in different zones), else to the first zone that is up.

An AZ outage (``{at, availability_zone: az1, behaviour: fail}``) fails every amphora in the
zone at once, as an amphora ``fail`` event fails one: heartbeats stop, a MASTER's peer
claims the VIP after the VRRP window, and the health manager fails the dead ones over.
A replacement can only boot in a zone that is up: with a single zone that is down the
failover fails (Nova finds no valid host) and the amphora goes to ERROR. ``recover``
ends the outage; amphorae that died stay dead (the health manager replaced them).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


class Zones:
    """One load balancer's zones, where each of its amphorae runs, and which zones are down."""

    def __init__(self, availability_zone: Any):
        if availability_zone is None:
            self.zones: list[str] = []
        elif isinstance(availability_zone, str):
            self.zones = [availability_zone]
        else:
            self.zones = list(availability_zone)
        #: amphora id -> zone
        self.of: dict[str, str] = {}
        #: zones shared by the whole cloud that are down (set by the engine from events)
        self.down: set[str] = set()

    def pick(self, live_peers: Iterable[str]) -> str | None:
        """The zone for a new amphora given the ids of the live amphorae it will run beside:
        None without zones (lbsim's default cloud has none)."""
        if not self.zones:
            return None
        taken = {self.of.get(a) for a in live_peers}
        up = [z for z in self.zones if z not in self.down]
        for z in up:
            if z not in taken:
                return z
        return up[0] if up else self.zones[0]

    def place(self, amp_id: str, live_peers: Iterable[str]) -> str | None:
        """Place a new amphora and remember its zone."""
        zone = self.pick(live_peers)
        if zone is not None:
            self.of[amp_id] = zone
        return zone

    def blocked(self, live_peers: Iterable[str]) -> bool:
        """Whether a replacement amphora would have to boot in a zone that is down."""
        zone = self.pick(live_peers)
        return zone is not None and zone in self.down

    def in_zone(self, zone: str) -> list[str]:
        """The amphorae (ids) placed in ``zone``."""
        return [a for a, z in self.of.items() if z == zone]
