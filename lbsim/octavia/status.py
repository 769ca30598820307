"""Heartbeat → operating-status aggregation, as done by Octavia 19.0.0's health manager.

This module is a pure (SimPy-free, side-effect-free) model of
``UpdateHealthDb._update_health`` in ``octavia/amphorae/drivers/health/heartbeat_udp.py``
(octavia-semantics.md §1). The health manager loads a *flat* view of the amphora's
load balancer (``AmphoraRepository.get_lb_for_health_update``), compares it with the
amphora's heartbeat, and writes the operating statuses that changed. Here:

* :class:`DbView` (with :class:`DbListener` and :class:`DbPool`) is that flat view;
* the heartbeat is the amphora's v2/v3 message as a plain ``dict``;
* :func:`update_health` returns a :class:`HealthUpdate`: whether the amphora-health row
  is refreshed (the failover clock, §1.2), whether statuses were processed at all, and
  the ordered list of :class:`StatusWrite` the controller would issue;
* :func:`apply_update` gives the DB view after those writes.

Two helpers serve the amphora model that *builds* heartbeats from HAProxy state:
:func:`amphora_member_string` (the amphora's DRAIN rewrite, §1.1) and
:func:`backend_status` (HAProxy's backend UP/DOWN rule, §1.4 [HAProxy]).

Fidelity notes (checked against the upstream code by ``tests/conformance``):

* statuses are compared case-insensitively before writing, exactly as upstream's
  ``_update_status``; the "absent member keeps NO_MONITOR" test is case-sensitive,
  as upstream;
* heartbeat pool keys ``"<pool_id>:<listener_id>"`` are cut at their *last* colon; a
  pool shared by several listeners collapses onto one entry, and the key that comes
  last in the heartbeat wins;
* heartbeat strings are matched case-sensitively (``"OPEN"``, ``"FULL"``, ``"UP"``,
  ``"DOWN"``, ``startswith("UP")``, ``startswith("DOWN")``, ``"DRAIN"``, ``"MAINT"``,
  ``"no check"``, ``"RESTARTING"``); anything else leaves the object unchanged.

Out of scope: pre-versioning heartbeats (no ``ver``; upstream then needs the listeners'
default pools to adjust the UDP listener count) and v1 messages (pools nested under
listeners). :func:`update_health` rejects them with :class:`ValueError`, and rejects a
v2/v3 message that lacks its ``listeners`` or ``pools`` dict (upstream would raise
half-way through and leave the earlier writes in place).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

__all__ = [
    "DEGRADED",
    "DRAINING",
    "ERROR",
    "NO_MONITOR",
    "OFFLINE",
    "ONLINE",
    "DbListener",
    "DbPool",
    "DbView",
    "HealthUpdate",
    "StatusWrite",
    "amphora_member_string",
    "apply_update",
    "backend_status",
    "pool_key",
    "update_health",
]

# Operating statuses (octavia-lib constants).
ONLINE = "ONLINE"
OFFLINE = "OFFLINE"
DEGRADED = "DEGRADED"
ERROR = "ERROR"
DRAINING = "DRAINING"
NO_MONITOR = "NO_MONITOR"

# Provisioning status that lets a missing enabled listener become ERROR (§1.3).
_ACTIVE = "ACTIVE"

# Strings the amphora puts in a heartbeat (octavia/common/constants.py).
_OPEN = "OPEN"
_FULL = "FULL"
_UP = "UP"
_DOWN = "DOWN"
_DRAIN = "DRAIN"
_MAINT = "MAINT"
_NO_CHECK = "no check"
_RESTARTING = "RESTARTING"

ObjectType = Literal["loadbalancer", "listener", "pool", "member"]


# --------------------------------------------------------------------------- DB view


@dataclass(frozen=True)
class DbListener:
    """One listener row of the health-update view (``listener.*`` columns)."""

    id: str
    operating_status: str
    protocol: str
    enabled: bool


@dataclass(frozen=True)
class DbPool:
    """One pool of the LB (attached to a listener or not) and its members.

    ``members`` maps member id → member operating status, in DB order. It is stored
    as a read-only mapping so that a view cannot be changed behind the model's back.
    """

    id: str
    operating_status: str
    members: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "members", MappingProxyType(dict(self.members)))


@dataclass(frozen=True)
class DbView:
    """The flat view ``get_lb_for_health_update`` returns for one amphora's LB.

    ``listeners`` and ``pools`` are keyed by object id, in DB order (the order matters:
    it is the order of the writes and of the LB-status aggregation). Keys must equal the
    objects' ids, and a member id may appear in one pool only (it is the primary key of
    the member table), so that a member write is unambiguous.
    """

    lb_id: str
    enabled: bool
    provisioning_status: str
    operating_status: str
    listeners: Mapping[str, DbListener] = field(default_factory=dict)
    pools: Mapping[str, DbPool] = field(default_factory=dict)

    def __post_init__(self) -> None:
        listeners = dict(self.listeners)
        pools = dict(self.pools)
        for key, listener in listeners.items():
            if key != listener.id:
                raise ValueError(f"listener key {key!r} != listener id {listener.id!r}")
        seen: dict[str, str] = {}
        for key, pool in pools.items():
            if key != pool.id:
                raise ValueError(f"pool key {key!r} != pool id {pool.id!r}")
            for member_id in pool.members:
                if member_id in seen:
                    raise ValueError(f"member {member_id!r} is in pools {seen[member_id]!r} and {key!r}")
                seen[member_id] = key
        object.__setattr__(self, "listeners", MappingProxyType(listeners))
        object.__setattr__(self, "pools", MappingProxyType(pools))


# --------------------------------------------------------------------------- results


@dataclass(frozen=True)
class StatusWrite:
    """One ``<repo>.update(session, object_id, operating_status=...)`` call."""

    object_type: ObjectType
    object_id: str
    operating_status: str


@dataclass(frozen=True)
class HealthUpdate:
    """What the health manager does with one heartbeat.

    ``refresh_amphora``: the amphora_health ``last_update`` is set to now (this is what
    keeps the amphora from being declared stale and failed over, §1.8).
    ``processed``: operating statuses were computed (False when the LB is unknown or the
    heartbeat was processed too late). ``writes``: the changed statuses, in upstream's
    order (listeners, then per reported pool its members then the pool, then the
    unreported pools going OFFLINE, then the load balancer).
    """

    refresh_amphora: bool
    processed: bool
    writes: tuple[StatusWrite, ...] = ()


# --------------------------------------------------------------------------- helpers


def pool_key(pool_id: str, listener_id: str) -> str:
    """Heartbeat key (= HAProxy backend name) of a pool as used by one listener."""
    return f"{pool_id}:{listener_id}"


def _pool_id_of_key(key: str) -> str:
    """Drop the ``:<listener_id>`` suffix (cut at the last colon; bare ids unchanged)."""
    cut = key.rfind(":")
    return key if cut < 0 else key[:cut]


def amphora_member_string(haproxy_status: str, weight: int) -> str:
    """The member string the amphora reports for one HAProxy server row.

    The amphora (``HAProxyQuery.get_pool_status``) works around an HAProxy bug by
    reporting a server whose status is exactly ``"UP"`` and whose weight is 0 as
    ``"DRAIN"``. Transitional ``"UP 1/3"`` rows are not rewritten.
    """
    if haproxy_status == _UP and weight == 0:
        return _DRAIN
    return haproxy_status


def _server_usable(status: str, weight: int) -> bool:
    """[HAProxy] ``srv_currently_usable``: running (UP, UP k/n, no check) with weight > 0.

    Stopped (DOWN, DOWN k/n), stopping (NOLB), maintenance (MAINT, MAINT(via)) and
    admin-drained (DRAIN) servers carry no weight.
    """
    running = status.startswith(_UP) or status == _NO_CHECK
    return running and weight > 0


def backend_status(servers: Iterable[tuple[str, int, bool]]) -> Literal["UP", "DOWN"]:
    """[HAProxy] The BACKEND row status the amphora reports for a pool.

    ``servers`` are ``(haproxy_status, weight, backup)`` triples, one per server line.
    HAProxy shows the backend ``UP`` when its total usable weight is positive or when it
    has no servers at all, and ``DOWN`` otherwise. The total is the active servers'
    usable weight; backup servers count only when no active server is usable (Octavia
    sets ``option allbackups``, so all usable backups are summed).
    """
    rows = list(servers)
    if not rows:
        return "UP"
    active = sum(w for s, w, backup in rows if not backup and _server_usable(s, w))
    if active > 0:
        return "UP"
    backups = sum(w for s, w, backup in rows if backup and _server_usable(s, w))
    return "UP" if backups > 0 else "DOWN"


def _changed(new: str, old: str) -> bool:
    """Upstream's write guard: values differ ignoring case."""
    return new.lower() != old.lower()


# --------------------------------------------------------------------------- core


def update_health(
    view: DbView | None,
    heartbeat: Mapping[str, Any],
    *,
    processing_delay: float = 0.0,
    heartbeat_interval: float = 10.0,
) -> HealthUpdate:
    """Compute what the health manager does with ``heartbeat`` given the DB ``view``.

    ``view`` is None when the amphora has no (non-deleted) load balancer: the heartbeat
    is then neither counted nor processed. ``processing_delay`` is ``now - recv_time``
    on the controller; when it reaches ``heartbeat_interval`` on the path that would
    refresh the amphora, the heartbeat is dropped entirely (§1.2).
    """
    version = heartbeat.get("ver")
    if not isinstance(version, int) or version < 2:
        raise ValueError(f"only v2/v3 heartbeats are modelled (got ver={version!r})")
    reported_listeners = heartbeat.get("listeners")
    reported_pools = heartbeat.get("pools")
    if not isinstance(reported_listeners, Mapping) or not isinstance(reported_pools, Mapping):
        raise ValueError("a v2/v3 heartbeat needs 'listeners' and 'pools' mappings")

    if view is None:
        return HealthUpdate(refresh_amphora=False, processed=False)

    # §1.2: is this heartbeat counted for the amphora's health?
    ignore_count = "PENDING" in view.provisioning_status or not view.enabled
    expected = sum(1 for listener in view.listeners.values() if listener.enabled)
    refresh = False
    if ignore_count or len(reported_listeners) == expected:
        if processing_delay >= heartbeat_interval:
            return HealthUpdate(refresh_amphora=False, processed=False)
        refresh = True

    writes: list[StatusWrite] = []
    lb_status = OFFLINE if not view.enabled else ONLINE

    # §1.3: listeners, in DB order.
    for listener in view.listeners.values():
        new: str | None = None
        if listener.id not in reported_listeners:
            # Expected to report (enabled, LB ACTIVE) but did not: ERROR; else OFFLINE.
            expected_up = listener.enabled and view.provisioning_status == _ACTIVE
            new = ERROR if expected_up else OFFLINE
        else:
            reported = reported_listeners[listener.id].get("status")
            if reported == _OPEN:
                new = ONLINE
            elif reported == _FULL:
                new = DEGRADED
                if lb_status == ONLINE:
                    lb_status = DEGRADED
        if new is not None and _changed(new, listener.operating_status):
            writes.append(StatusWrite("listener", listener.id, new))

    # §1.4: every DB pool is looked up among the normalised keys (last key wins).
    by_pool: dict[str, Mapping[str, Any]] = {}
    for key, entry in reported_pools.items():
        by_pool[_pool_id_of_key(key)] = entry

    unreported: list[DbPool] = []
    for pool in view.pools.values():
        if pool.id not in by_pool:
            unreported.append(pool)  # its members are left alone
            continue
        lb_status = _process_pool(pool, by_pool[pool.id], lb_status, writes)

    for pool in unreported:
        if _changed(OFFLINE, pool.operating_status):
            writes.append(StatusWrite("pool", pool.id, OFFLINE))

    # §1.6: the load balancer last.
    if _changed(lb_status, view.operating_status):
        writes.append(StatusWrite("loadbalancer", view.lb_id, lb_status))

    return HealthUpdate(refresh_amphora=refresh, processed=True, writes=tuple(writes))


def _process_pool(pool: DbPool, entry: Mapping[str, Any], lb_status: str, writes: list[StatusWrite]) -> str:
    """§1.4/§1.5 for one reported pool: append member then pool writes; return LB status."""
    pool_status: str | None = None
    backend = entry.get("status")
    if backend == _UP:
        pool_status = ONLINE
    elif backend == _DOWN:
        pool_status = ERROR
        lb_status = ERROR

    if "members" not in entry:
        raise ValueError(f"heartbeat pool entry for {pool.id!r} has no 'members'")
    reported_members: Mapping[str, str] = entry["members"]
    for member_id, db_status in pool.members.items():
        new: str | None = None
        if member_id not in reported_members:
            if db_status != NO_MONITOR:  # case-sensitive, as upstream
                new = OFFLINE
        else:
            text = reported_members[member_id]
            if text.startswith(_UP):
                new = ONLINE
            elif text.startswith(_DOWN):
                new = ERROR
                if pool_status == ONLINE:
                    pool_status = DEGRADED
                    if lb_status == ONLINE:
                        lb_status = DEGRADED
            elif text == _DRAIN:
                new = DRAINING
            elif text == _MAINT:
                new = OFFLINE
            elif text == _NO_CHECK:
                new = NO_MONITOR
            # RESTARTING (UDP) and unknown strings (NOLB, MAINT(via), ...): unchanged.
        if new is not None and _changed(new, db_status):
            writes.append(StatusWrite("member", member_id, new))

    if pool_status is not None and _changed(pool_status, pool.operating_status):
        writes.append(StatusWrite("pool", pool.id, pool_status))
    return lb_status


def apply_update(view: DbView, update: HealthUpdate) -> DbView:
    """Return the DB view after ``update``'s writes (the input view is not modified).

    Raises KeyError if a write names an object that is not in the view.
    """
    lb_status = view.operating_status
    listeners = dict(view.listeners)
    pools = {pid: (p.operating_status, dict(p.members)) for pid, p in view.pools.items()}
    member_pool = {mid: pid for pid, p in view.pools.items() for mid in p.members}

    for w in update.writes:
        if w.object_type == "loadbalancer":
            if w.object_id != view.lb_id:
                raise KeyError(w.object_id)
            lb_status = w.operating_status
        elif w.object_type == "listener":
            old = listeners[w.object_id]
            listeners[w.object_id] = DbListener(old.id, w.operating_status, old.protocol, old.enabled)
        elif w.object_type == "pool":
            pools[w.object_id] = (w.operating_status, pools[w.object_id][1])
        else:
            pools[member_pool[w.object_id]][1][w.object_id] = w.operating_status

    return DbView(
        lb_id=view.lb_id,
        enabled=view.enabled,
        provisioning_status=view.provisioning_status,
        operating_status=lb_status,
        listeners=listeners,
        pools={pid: DbPool(pid, status, members) for pid, (status, members) in pools.items()},
    )
