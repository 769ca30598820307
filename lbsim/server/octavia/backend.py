"""The API server's side of the Twin: one object that owns the Twin, the clock and the
Neutron fixtures, and does for each request what Octavia's API controllers do around the
worker (defaults, provider/flavor/AZ/VIP checks) before handing the operation to the Twin.

Everything here runs on the event loop's thread: handlers are ``async def`` and call
:meth:`Cloud.sync` (bring the simulation up to the clock's "now") and then one Twin method,
with no ``await`` in between, so concurrent clients are served one at a time, each at the
simulated instant it arrived, and get Octavia's 409s from the Twin's locks.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from lbsim.server.clock import SimClock
from lbsim.server.neutron import Neutron
from lbsim.server.octavia.errors import Fault, not_found, validation
from lbsim.server.octavia.shapes import RESOURCE, View, attr, derived_uuid, relation

LOG = logging.getLogger("lbsim.serve")

KINDS = ("loadbalancer", "listener", "pool", "member", "healthmonitor")
PROVIDERS = (
    {"name": "amphora", "description": "The Octavia Amphora driver."},
    {"name": "octavia", "description": "Deprecated alias of the Octavia Amphora driver."},
)
FALLBACK_PROJECT = "e3cd678b11784734bc366148aa37580e"
#: the fields of Octavia's amphora rows
AMPHORA_FIELDS = (
    "id", "loadbalancer_id", "compute_id", "lb_network_ip", "vrrp_ip", "ha_ip", "vrrp_port_id", "ha_port_id",
    "cert_expiration", "cert_busy", "role", "status", "vrrp_interface", "vrrp_id", "vrrp_priority",
    "cached_zone", "created_at", "updated_at", "image_id", "compute_flavor",
)  # fmt: skip


def default_project() -> str:
    """The project a request without ``X-Project-Id`` acts for (the Twin's default)."""
    import importlib

    try:
        twin_module = importlib.import_module("lbsim.server.twin")
    except ImportError:  # pragma: no cover - the Twin ships with the server
        return FALLBACK_PROJECT
    return str(getattr(twin_module, "DEFAULT_PROJECT", FALLBACK_PROJECT))


class Cloud:
    """The Twin plus what the API layer keeps beside it (VIP ports, queued batch updates)."""

    def __init__(self, twin: Any, clock: SimClock, neutron: Neutron | None = None) -> None:
        self.twin = twin
        self.clock = clock
        self.neutron = neutron or Neutron.default()
        self.vips: dict[str, dict[str, str]] = {}
        self.batches: dict[str, deque[tuple[str, str | None, dict[str, Any]]]] = {}
        self.project = default_project()
        self.lag = 0.0  # simulated seconds the twin is behind the clock (last tick)
        self.held_back = 0.0  # simulated seconds the clock dropped because the twin could not keep up
        self.started = time.time()

    # ------------------------------------------------------------------ time

    def sync(self) -> None:
        """Run the simulation up to the clock's now (no-op when it is there already)."""
        target = self.clock.sim_now()
        if target > self.twin.now:
            self.twin.advance_to(target)
        self.clock.catch_up(self.twin.now)
        self._drain_batches()

    # ---------------------------------------------------------------- reading

    def view(self) -> View:
        """Every record, indexed, for shaping responses."""
        return View({k: self.twin.records(k) for k in KINDS}, vip_for=self.vip_for)

    def live(self, kind: str, key: str) -> Any:
        """The record of ``kind``/``key``, or Octavia's 404 (deleted load balancers too)."""
        rec = self.twin.record(kind, key)
        if rec is None or attr(rec, "provisioning_status") == "DELETED":
            raise not_found(RESOURCE[kind], key)
        return rec

    def vip_for(self, rec: Any) -> dict[str, str]:
        """The VIP fields of a load balancer (made on first sight for scenario LBs)."""
        vip = self.vips.get(rec.key)
        if vip is None:
            given = attr(rec, "vip_address")
            from lbsim.server.neutron import PRIVATE_SUBNET

            address = str(given) if given else self.neutron.allocate(PRIVATE_SUBNET)
            vip = {
                "vip_subnet_id": PRIVATE_SUBNET,
                "vip_network_id": self.neutron.subnets[PRIVATE_SUBNET]["network_id"],
                "vip_address": address,
                "vip_port_id": derived_uuid("vip-port", rec.key),
            }
            self._add_vip_port(rec.key, vip)
        return vip

    def _add_vip_port(self, lb: str, vip: dict[str, str]) -> None:
        self.vips[lb] = vip
        if vip["vip_port_id"] not in self.neutron.ports:
            self.neutron.add_port(vip["vip_port_id"], f"octavia-lb-{lb}", vip["vip_subnet_id"], vip["vip_address"], lb)

    # ------------------------------------------------------------ operations

    def apply(
        self,
        op: str,
        kind: str,
        key: str | None,
        body: dict[str, Any],
        *,
        project: str | None = None,
        cascade: bool = False,
    ) -> str:
        """One Octavia operation through the Twin; a refusal becomes a :class:`Fault`.
        Returns the object's id."""
        resp = self.twin.request(op, kind, key, body, cascade=cascade, project_id=project or self.project)
        if not resp.ok:
            raise Fault(int(resp.code), str(resp.message), getattr(resp, "faultcode", None))
        return str(resp.key or key)

    def create_loadbalancer(self, body: dict[str, Any], project: str) -> str:
        """Octavia's LB create checks (VIP, provider, AZ, flavor), then the Twin."""
        if not any(body.get(k) for k in ("vip_port_id", "vip_network_id", "vip_subnet_id")):
            raise Fault(400, "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.")
        provider = body.get("provider") or "amphora"
        if provider not in {p["name"] for p in PROVIDERS}:
            raise Fault(400, f"Provider '{provider}' is not enabled.")
        body["provider"] = "amphora" if provider == "octavia" else provider
        if body.get("availability_zone") is not None:
            raise validation("Invalid availability zone.")
        if body.get("flavor_id") is not None:
            raise validation("Invalid flavor_id.")
        if body.get("listeners") or body.get("pools"):
            raise Fault(
                501,
                "Provider 'amphora' does not support a requested action: lbsim serve creates load "
                "balancers empty; create the listeners and pools one by one.",
            )
        if body.get("additional_vips"):
            raise Fault(
                501,
                "Provider 'amphora' does not support a requested option: lbsim serve has one VIP per load balancer.",
            )
        if body.get("vip_qos_policy_id") and body["vip_qos_policy_id"] not in self.neutron.policies:
            raise validation(
                f"Invalid input for field/attribute vip_qos_policy_id. Value: '{body['vip_qos_policy_id']}' not found."
            )
        vip = self.neutron.resolve_vip(body)
        if vip is None:
            for k, what in (("vip_port_id", "Port"), ("vip_subnet_id", "Subnet"), ("vip_network_id", "Network")):
                if body.get(k):
                    raise Fault(400, f"Validation failure: {what} {body[k]} not found.")
            raise Fault(400, "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id.")
        if "vip_address" not in vip:
            vip["vip_address"] = str(body.get("vip_address") or self.neutron.allocate(vip["vip_subnet_id"]))
        body.pop("listeners", None)
        body.pop("pools", None)
        body.update(vip)
        key = self.apply("create", "loadbalancer", None, body, project=project)
        vip.setdefault("vip_port_id", derived_uuid("vip-port", key))
        self._add_vip_port(key, vip)
        return key

    # ------------------------------------------------------------ batch members

    def batch_members(self, pool_id: str, members: list[dict[str, Any]], additive_only: bool, project: str) -> None:
        """``PUT /pools/{id}/members``: the creates, updates and deletes that make the pool's
        members those of ``members`` (matched by address and port). Checked as one request
        (pool and LB locks, duplicates); applied one operation at a time as each lock frees
        (the Twin takes one member operation per load-balancer lock)."""
        pool = self.live("pool", pool_id)
        lb = self.live("loadbalancer", str(relation(pool, "loadbalancer")))
        if attr(pool, "provisioning_status") != "ACTIVE":
            raise Fault(409, f"Pool {pool_id} is immutable and cannot be updated.")
        if attr(lb, "provisioning_status") != "ACTIVE":
            raise Fault(409, f"Load Balancer {lb.key} is immutable and cannot be updated.")
        seen: set[tuple[str, int]] = set()
        for m in members:
            ep = (str(m["address"]), int(m["protocol_port"]))
            if ep in seen:
                raise Fault(
                    400, f"Member {m['address']}:{m['protocol_port']} is specified more than once in the request."
                )
            seen.add(ep)
        current = {
            (str(attr(r, "address")), int(attr(r, "protocol_port"))): r
            for r in self.twin.records("member")
            if relation(r, "pool") == pool_id
        }
        ops: deque[tuple[str, str | None, dict[str, Any]]] = deque()
        for m in members:
            ep = (str(m["address"]), int(m["protocol_port"]))
            body = {k: v for k, v in m.items() if k not in ("request_sriov",)}
            if ep in current:
                rec = current[ep]
                changes = {
                    k: v
                    for k, v in body.items()
                    if k in ("name", "admin_state_up", "weight", "backup", "monitor_port", "monitor_address", "tags")
                    and attr(rec, k) != v
                }
                if changes:
                    ops.append(("update", rec.key, changes))
            else:
                ops.append(("create", None, body))
        if not additive_only:
            ops.extend(("delete", rec.key, {}) for ep, rec in current.items() if ep not in seen)
        self.batches.setdefault(pool_id, deque()).extend(ops)
        self._project_of_batch = project
        self._drain_batches()

    def _drain_batches(self) -> None:
        for pool_id in list(self.batches):
            queue = self.batches[pool_id]
            while queue:
                pool = self.twin.record("pool", pool_id)
                if pool is None:
                    queue.clear()
                    break
                lb = self.twin.record("loadbalancer", str(relation(pool, "loadbalancer")))
                if (
                    attr(pool, "provisioning_status") != "ACTIVE"
                    or lb is None
                    or attr(lb, "provisioning_status") != "ACTIVE"
                ):
                    break
                op, key, body = queue.popleft()
                if op == "create":
                    body = {**body, "pool_id": pool_id}
                resp = self.twin.request(
                    op, "member", key, body, project_id=getattr(self, "_project_of_batch", None) or self.project
                )
                if not resp.ok:
                    LOG.info("batch member %s on pool %s refused: %s %s", op, pool_id, resp.code, resp.message)
            if not queue:
                del self.batches[pool_id]

    # ------------------------------------------------------------------ misc

    def amphorae(self) -> list[dict[str, Any]]:
        """Octavia's amphora rows, timestamps formatted."""
        from datetime import timedelta

        from lbsim.server.octavia.shapes import ORIGIN, timestamp

        out = []
        for row in self.twin.amphorae():
            shaped = {k: row.get(k) for k in AMPHORA_FIELDS}
            created = row.get("created_at")
            if isinstance(created, int | float):
                expiry = ORIGIN + timedelta(seconds=float(created), days=30)
                shaped.setdefault("cert_expiration", expiry.strftime("%Y-%m-%dT%H:%M:%S"))
                if shaped.get("cert_expiration") is None:
                    shaped["cert_expiration"] = expiry.strftime("%Y-%m-%dT%H:%M:%S")
            for k in ("created_at", "updated_at"):
                if isinstance(shaped.get(k), int | float):
                    shaped[k] = timestamp(shaped[k])
            if shaped.get("cert_busy") is None:
                shaped["cert_busy"] = False
            out.append(dict(sorted(shaped.items())))
        return out

    def stats(self, kind: str, key: str) -> Mapping[str, int]:
        """Octavia's stats fields for a load balancer or a listener."""
        return self.twin.stats(kind, key)
