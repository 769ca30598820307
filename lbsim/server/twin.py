"""The Twin: the steppable live world behind ``lbsim serve``, ``lbsim ctl`` and the live page.

A :class:`Twin` is a :class:`~lbsim.sim.world.World` (the engine ``lbsim run`` uses: one
SimPy clock, one control plane, any number of load balancers, each with its amphorae,
HAProxy data plane and health manager) run in steps. Every Octavia API call and every
control is turned into the scenario event that means the same thing (``api:``,
``member:``, ``amphora:``, ``traffic:``) and applied through the world's event path at the
current simulated time, exactly as a scheduled event of a scenario is applied. So
:meth:`Twin.save` can write a ``scenario.yaml`` whose ``events:`` replay the session, and
``lbsim run`` of it repeats the session's ``transitions.csv`` byte for byte.

Keys: the control-plane key of every object is its UUID (version 4, from the seed, for API creates,
:func:`lbsim.scenario.ids.object_id` for objects of a starting scenario). Names and the
other fields the simulation does not use live in the Twin's per-object record.

API errors are answers, never exceptions: :meth:`Twin.request` returns a
:class:`TwinResponse`. Controls with bad arguments raise :class:`TwinError` (a
``ValueError``) with a readable message. All methods are called from one thread.
"""

from __future__ import annotations

import ipaddress
import math
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, TypeAdapter, ValidationError

from lbsim.octavia.l7 import policies_of, rules_of
from lbsim.octavia.objects import OPERATING_STATUSES
from lbsim.octavia.timeline import Timeline, Transition
from lbsim.results.folder import summarise
from lbsim.scenario import model as m
from lbsim.scenario.ids import object_id
from lbsim.scenario.quotas import RESOURCE_NAMES
from lbsim.scenario.validation import UPDATABLE
from lbsim.sim.engine import Simulation
from lbsim.sim.world import World, window_summary

DEFAULT_PROJECT = "e3cd678b11784734bc366148aa37580e"
_EVENTS: TypeAdapter[Any] = TypeAdapter(m.Event)
KINDS = ("loadbalancer", "listener", "pool", "member", "healthmonitor")
#: the L7 kinds: checked by the control plane itself (lbsim.octavia.l7), not a scenario model
L7_KINDS = ("l7policy", "l7rule")
#: the body fields of each L7 kind the control plane takes (ids renamed: see ``_l7_event``)
_L7_SIM = {
    "l7policy": frozenset(
        {"action", "position", "redirect_url", "redirect_prefix", "redirect_http_code", "admin_state_up", "tags"}
    ),
    "l7rule": frozenset({"type", "compare_type", "key", "value", "invert", "admin_state_up", "tags"}),
}
OPERATIONS = ("create", "update", "delete", "failover")
BEHAVIOURS = ("healthy", "refuse", "hang", "error", "slow", "flap", "partial")

#: scenario model of each kind: the fields the simulation uses, with Octavia's ranges
_MODEL: dict[str, type[BaseModel]] = {
    "loadbalancer": m.LoadBalancer,
    "listener": m.Listener,
    "pool": m.Pool,
    "member": m.Member,
    "healthmonitor": m.HealthMonitor,
}
#: model fields that are children or lbsim extensions an API body does not set
_NOT_FROM_BODY = {
    "loadbalancer": {"name", "listeners", "pools", "flavor"},
    "listener": {"name", "l7policies", "requests"},
    "pool": {"name", "members", "healthmonitor", "autoscaling"},
    "member": {"name"},
    "healthmonitor": {"name"},
}
#: Octavia's relation fields → (event parent or body field, where it goes)
_RELATIONS = {
    "loadbalancer_id": "loadbalancer",
    "listener_id": "listener",
    "pool_id": "pool",
    "default_pool_id": "default_pool",
}


class TwinError(ValueError):
    """A control the Twin cannot apply (unknown object, bad argument)."""


@dataclass(frozen=True)
class TwinResponse:
    """Octavia's answer to one API call."""

    code: int
    message: str = ""
    faultcode: str = ""
    key: str | None = None

    @property
    def ok(self) -> bool:
        """Whether the call was accepted (2xx)."""
        return 200 <= self.code < 300


@dataclass
class ObjectRecord:
    """One object as the API shows it: statuses from the control plane, the rest from
    the request that made it (and later updates)."""

    kind: str
    key: str
    name: str
    project_id: str
    provisioning_status: str
    operating_status: str
    attrs: dict[str, Any]
    created_at: float
    updated_at: float | None

    @property
    def id(self) -> str:
        """Octavia's ``id`` (the key)."""
        return self.key


@dataclass
class _Meta:
    name: str = ""
    project_id: str = DEFAULT_PROJECT
    created_at: float = 0.0
    updated_at: float | None = None
    fields: dict[str, Any] = field(default_factory=dict)


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text)
    except ValueError:
        return False
    return True


def _fault_message(err: ValidationError, body: dict[str, Any]) -> str:
    first = err.errors()[0]
    loc = [str(p) for p in first["loc"] if not isinstance(p, int)]
    fld = loc[0] if loc else "body"
    value = body.get(fld, "")
    return f"Invalid input for field/attribute {fld}. Value: '{value}'. {first['msg']}"


def uuid_scenario(sc: m.Scenario) -> tuple[m.Scenario, dict[tuple[str, str], str]]:
    """The scenario with every object named by its UUID (names that are UUIDs stay), and
    the display name of each (kind, UUID)."""
    names: dict[tuple[str, str], str] = {}

    def key(kind: str, name: str | None) -> str | None:
        if name is None:
            return None
        k = name if _is_uuid(name) else object_id(sc.name, kind, name)
        names.setdefault((kind, k), name)
        return k

    d = sc.model_dump(mode="json", exclude_none=True)
    trees = d.pop("loadbalancers", None)
    if trees is None:
        trees = [d.pop("loadbalancer")]
    d.pop("loadbalancer", None)
    for lb in trees:
        lb["name"] = key("loadbalancer", lb["name"])
        for li in lb.get("listeners", []):
            li["name"] = key("listener", li["name"])
            if li.get("default_pool"):
                li["default_pool"] = key("pool", li["default_pool"])
            for pol in li.get("l7policies", []):
                for i, rule in enumerate(pol.get("rules", []), 1):  # default names: <policy>-rule<i>
                    rule["name"] = key("l7rule", rule.get("name") or f"{pol['name']}-rule{i}")
                pol["name"] = key("l7policy", pol["name"])
                if pol.get("redirect_pool"):
                    pol["redirect_pool"] = key("pool", pol["redirect_pool"])
        for p in lb.get("pools", []):
            pool_name = p["name"]
            p["name"] = key("pool", pool_name)
            if p.get("healthmonitor") is not None:
                p["healthmonitor"]["name"] = key("healthmonitor", p["healthmonitor"].get("name") or f"{pool_name}-hm")
            for mem in p.get("members", []):
                mem["name"] = key("member", mem["name"])
    d["loadbalancers"] = trees
    for tr in d.get("traffic", []):
        tr["listener"] = key("listener", tr["listener"])
    for ev in d.get("events", []):
        for kind in (*KINDS, "l7policy", "l7rule"):
            if kind in ev:
                ev[kind] = key(kind, ev[kind])
        if "network" in ev and ev.get("members"):
            ev["members"] = [key("member", n) for n in ev["members"]]
        if "traffic" in ev:
            ev["traffic"] = key("listener", ev["traffic"])
    for fl in d.get("failures", []):
        if fl.get("members"):
            fl["members"] = [key("member", n) for n in fl["members"]]
        if fl.get("pool"):
            fl["pool"] = key("pool", fl["pool"])
    for ex in d.get("expect", []):
        for kind in KINDS:
            if kind in ex:
                ex[kind] = key(kind, ex[kind])
    return m.Scenario.model_validate(d), names


def _empty_scenario(seed: int) -> m.Scenario:
    return m.Scenario.model_validate({"name": "twin", "seed": seed, "duration": 1.0, "loadbalancers": []})


class Twin:
    """The live world: Octavia's API, twin controls, and reads, on one simulated clock."""

    def __init__(self, scenario: m.Scenario | None = None, *, seed: int | None = None, base_dir: Path | None = None):
        original = scenario if scenario is not None else _empty_scenario(seed or 0)
        self.scenario, names = uuid_scenario(original)
        self._names = names
        self.seed = self.scenario.seed if seed is None else seed
        self.base_dir = base_dir
        self.world = World(self.scenario, seed=self.seed, base_dir=base_dir, live=True)
        self.world.on_new_runtime = self._on_runtime
        self._meta: dict[tuple[str, str], _Meta] = {}
        self._order: dict[str, list[str]] = {k: [] for k in KINDS}
        self._events: list[dict[str, Any]] = []
        self._seen_rows = 0
        self._ips: dict[str, set[str]] = {}
        self._amp_times: dict[str, tuple[float, float | None]] = {}
        # version-4 UUIDs for API creates, drawn from the seed: the same calls on the same
        # seed make the same ids, and so the same amphorae and heartbeat phases
        self._ids = random.Random(f"lbsim-twin-ids:{self.seed}")
        self.world.start()
        for obj in self.world.cp.objects():
            meta = self._new_meta(obj.type, obj.name, names.get((obj.type, obj.name), ""), DEFAULT_PROJECT)
            meta.fields = {k: v for k, v in obj.attrs.items() if k not in ("loadbalancer", "pool", "listener")}
        for lb in self.scenario.all_loadbalancers:  # addresses taken: fixed VIPs, members
            for subnet in (self._subnet(lb.vip_subnet), self._subnet(None)):
                self._ips.setdefault(subnet.name, set()).update(
                    [lb.vip_address or "", *(mem.address for p in lb.pools for mem in p.members)]
                )
        for lb in self.scenario.all_loadbalancers:
            if lb.name in self._meta_keys("loadbalancer"):
                subnet = self._subnet(lb.vip_subnet)
                fields = self._meta[("loadbalancer", lb.name)].fields
                fields.setdefault("vip_address", lb.vip_address or self._allocate(subnet))
                fields.setdefault("vip_subnet_id", subnet.name)
        self._sync()

    # ------------------------------------------------------------------ clock
    @property
    def now(self) -> float:
        """Simulated seconds since the start."""
        return float(self.world.env.now)

    def advance_to(self, t: float) -> None:
        """Run the simulation up to ``t`` (a no-op when ``t <= now``)."""
        if not isinstance(t, int | float) or math.isnan(t):
            raise TwinError(f"advance_to needs a number of seconds, got {t!r}")
        if t > self.now:
            self.world.run_until(float(t))
            self._sync()

    # ------------------------------------------------------------------ API
    def request(
        self,
        op: str,
        kind: str,
        key: str | None,
        body: dict[str, Any] | None = None,
        *,
        cascade: bool = False,
        project_id: str = DEFAULT_PROJECT,
    ) -> TwinResponse:
        """One Octavia API call at ``now``; the answer carries Octavia's code and message."""
        body = dict(body or {})
        if op not in OPERATIONS:
            return TwinResponse(405, f"Unsupported operation {op!r}", "Client", key)
        if kind not in KINDS and kind not in L7_KINDS:
            return TwinResponse(404, f"Unknown resource {kind!r}", "Client", key)
        if op == "failover" and kind != "loadbalancer":
            return TwinResponse(405, "Only load balancers and amphorae can be failed over", "Client", key)
        if op == "create":
            key = str(uuid.UUID(int=self._ids.getrandbits(128), version=4))
        elif not key:
            return TwinResponse(404, f"{RESOURCE_NAMES[kind]} None not found.", "Client", key)
        try:
            if kind in L7_KINDS:
                ev, display = self._l7_event(op, kind, key, body)
            else:
                ev, display = self._event(op, kind, key, body, cascade)
        except _Refusal as r:
            return TwinResponse(r.code, r.message, "Client" if r.code < 500 else "Server", key)
        resp = self.world.api_event(m.ApiEvent.model_validate(ev))
        if resp.ok:
            self._events.append(ev)
            if op == "create":
                meta = self._new_meta(kind, key, str(display.get("name") or ""), project_id)
                meta.fields = display
            else:
                meta = self._meta.setdefault((kind, key), _Meta(created_at=self.now))
                if op == "update":
                    meta.fields.update(display)
                    if "name" in display:
                        meta.name = str(display["name"] or "")
                meta.updated_at = self.now
            self._sync()
        faultcode = "" if resp.ok else ("Client" if resp.code < 500 else "Server")
        return TwinResponse(resp.code, resp.message, faultcode, key)

    def _event(
        self, op: str, kind: str, key: str, body: dict[str, Any], cascade: bool
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """The scenario ``api:`` event for a call, and the display fields to keep."""
        ev: dict[str, Any] = {"at": self.now, "api": op, kind: key}
        if op == "delete":
            if cascade:
                ev["cascade"] = True
            return ev, {}
        if op == "failover":
            return ev, {}
        sim_fields = set(_MODEL[kind].model_fields) - _NOT_FROM_BODY[kind]
        if kind == "loadbalancer":
            sim_fields |= {"topology"}
        display: dict[str, Any] = {}
        sim: dict[str, Any] = {}
        for k, v in body.items():
            target = _RELATIONS.get(k, k)
            if op == "create" and target in ("loadbalancer", "listener", "pool") and target != kind:
                if v is not None:
                    ev[target] = str(v)
                display[k] = v
                continue
            if target in sim_fields:
                sim[target] = v
            display[k] = v
        if op == "create":
            sim = {k: v for k, v in sim.items() if v is not None}
            need = {"member": "pool", "healthmonitor": "pool"}.get(kind)
            if need is not None and need not in ev:
                raise _Refusal(
                    400, f"Invalid input for field/attribute {need}_id. Value: 'None'. Mandatory field missing."
                )
            if kind == "listener" and "loadbalancer" not in ev:
                raise _Refusal(
                    400, "Invalid input for field/attribute loadbalancer_id. Value: 'None'. Mandatory field missing."
                )
            if kind == "pool" and "loadbalancer" not in ev and "listener" not in ev:
                raise _Refusal(400, "Validation failure: Must provide at least one of: loadbalancer_id, listener_id")
            self._validate(kind, {"name": key, **sim}, body)
            if kind == "loadbalancer" and not display.get("vip_address"):
                display["vip_address"] = self._allocate(self._subnet(body.get("vip_subnet_id")))
        else:
            obj = self.world.cp.get(kind, key)
            if obj is None or (kind == "loadbalancer" and obj.provisioning_status == "DELETED"):
                raise _Refusal(404, f"{RESOURCE_NAMES[kind]} {key} not found.")
            defaults = _MODEL[kind].model_fields
            for k, v in list(sim.items()):
                if v is None and k in defaults and k not in ("default_pool",):
                    if defaults[k].is_required():
                        raise _Refusal(
                            400, f"Invalid input for field/attribute {k}. Value: 'None'. Mandatory field missing."
                        )
                    default = defaults[k].get_default(call_default_factory=True)
                    sim[k] = default.model_dump() if isinstance(default, BaseModel) else default
            allowed = UPDATABLE.get(kind, frozenset()) - {"name"}
            sim = {k: v for k, v in sim.items() if k in allowed or k in ("protocol", "protocol_port", "type")}
            current = {k: v for k, v in obj.attrs.items() if k in sim_fields}
            if kind == "listener":
                current.pop("default_pool", None)
            self._validate(
                kind, {"name": key, **current, **{k: v for k, v in sim.items() if k != "default_pool"}}, body
            )
            if not sim:
                sim = {"admin_state_up": bool(obj.attrs.get("admin_state_up", True))}
        ev["set"] = sim
        return ev, display

    def _l7_event(self, op: str, kind: str, key: str, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """The ``api:`` event of an L7 policy or rule call. Octavia's ids become the control
        plane's names: a policy's ``listener_id`` its ``listener`` parent, ``redirect_pool_id``
        its ``redirect_pool``; a rule's ``l7policy_id`` (the URL's policy) its ``l7policy``.
        The control plane checks the rest (lbsim.octavia.l7) with Octavia's wordings."""
        ev: dict[str, Any] = {"at": self.now, "api": op, kind: key}
        if op == "delete":
            return ev, {}
        parent_field, parent = ("listener_id", "listener") if kind == "l7policy" else ("l7policy_id", "l7policy")
        display: dict[str, Any] = {}
        sim: dict[str, Any] = {}
        for k, v in body.items():
            if k == parent_field:
                if op == "create" and v is not None:
                    ev[parent] = str(v)
            elif k == "redirect_pool_id" and kind == "l7policy":
                sim["redirect_pool"] = v
            elif k in _L7_SIM[kind]:
                sim[k] = v
            display[k] = v
        if op == "create":
            sim = {k: v for k, v in sim.items() if v is not None}
            if parent not in ev:
                raise _Refusal(
                    400, f"Invalid input for field/attribute {parent_field}. Value: 'None'. Mandatory field missing."
                )
        elif self.world.cp.get(kind, key) is None:
            raise _Refusal(404, f"{RESOURCE_NAMES[kind]} {key} not found.")
        ev["set"] = sim
        return ev, display

    def _validate(self, kind: str, data: dict[str, Any], body: dict[str, Any]) -> None:
        try:
            _MODEL[kind].model_validate(data)
        except ValidationError as err:
            raise _Refusal(400, _fault_message(err, {**data, **body})) from None

    def failover_amphora(self, amp_id: str) -> TwinResponse:
        """``PUT /amphorae/{id}/failover``: rebuild one amphora (its LB goes PENDING_UPDATE)."""
        rt = self._runtime_of_amphora(amp_id)
        if rt is None:
            building = self._booting(amp_id)
            if building is not None:
                message = f"Invalid state PENDING_CREATE of loadbalancer resource {building}"
                return TwinResponse(409, message, "Client", amp_id)
            return TwinResponse(404, f"Amphora {amp_id} not found.", "Client", amp_id)
        lb = self.world.cp.get("loadbalancer", rt.lb_name)
        if lb is None or lb.provisioning_status not in ("ACTIVE", "ERROR"):
            status = lb.provisioning_status if lb is not None else "DELETED"
            return TwinResponse(409, f"Invalid state {status} of loadbalancer resource {rt.lb_name}", "Client", amp_id)
        ev = {"at": self.now, "api": "failover", "amphora": amp_id}
        resp = self.world.api_event(m.ApiEvent.model_validate(ev))
        if resp.ok:
            self._events.append(ev)
            self._sync()
        return TwinResponse(resp.code, resp.message, "" if resp.ok else "Client", amp_id)

    # ------------------------------------------------------------------ controls
    def set_member_behaviour(self, member_key: str, behaviour: str, **params: Any) -> None:
        """Make a member refuse, hang, error (``status=``), be slow (``factor=``), flap
        (``period=``, ``duty=``, ``fault=``), fail partially (``fraction=``, ``fault=``) or
        heal: the scenario ``member:`` event with these parameters (``port=`` too)."""
        if self.world.cp.get("member", member_key) is None:
            raise TwinError(f"member {member_key} not found")
        if behaviour not in BEHAVIOURS:
            raise TwinError(f"behaviour must be one of {', '.join(BEHAVIOURS)}, not {behaviour!r}")
        self._control({"at": self.now, "member": member_key, "behaviour": behaviour, **params})

    def fail_amphora(self, amp_id: str) -> None:
        """Kill an amphora: HAProxy and heartbeats stop (the health manager fails it over)."""
        self._amphora_control(amp_id, "fail")

    def partition_amphora(self, amp_id: str, partitioned: bool) -> None:
        """Cut (or heal) an amphora's management network: heartbeats are lost, traffic flows."""
        self._amphora_control(amp_id, "partition" if partitioned else "heal")

    def _amphora_control(self, amp_id: str, behaviour: str) -> None:
        if self._runtime_of_amphora(amp_id) is None:
            if self._booting(amp_id) is not None:
                raise TwinError(f"amphora {amp_id} is still booting (its load balancer is PENDING_CREATE)")
            raise TwinError(f"amphora {amp_id} not found")
        self._control({"at": self.now, "amphora": amp_id, "behaviour": behaviour})

    def set_traffic(self, listener_key: str, rate: float | None) -> None:
        """Poisson client traffic to a listener at ``rate`` requests/s; None (or 0) stops it."""
        if self.world.cp.get("listener", listener_key) is None:
            raise TwinError(f"listener {listener_key} not found")
        if rate is not None and (not isinstance(rate, int | float) or not math.isfinite(rate) or rate < 0):
            raise TwinError(f"rate must be a number >= 0 or None, not {rate!r}")
        self._control({"at": self.now, "traffic": listener_key, "rate": float(rate) if rate else None})

    def _control(self, ev: dict[str, Any]) -> None:
        try:
            event: Any = _EVENTS.validate_python(ev)
        except ValidationError as err:
            raise TwinError(_fault_message(err, ev)) from None
        self.world.apply_event(event)
        self._events.append({k: v for k, v in ev.items() if v is not None or k == "rate"})
        self._sync()

    # ------------------------------------------------------------------ reads
    def record(self, kind: str, key: str) -> ObjectRecord | None:
        """The object as the API shows it (a deleted LB shows DELETED), or None."""
        obj = self.world.cp.get(kind, key)
        if obj is None:
            return None
        meta = self._meta.get((kind, key)) or self._new_meta(kind, key, "", DEFAULT_PROJECT)
        attrs = dict(meta.fields)
        cp = self.world.cp
        for k, v in obj.attrs.items():
            if k == "loadbalancer":
                attrs["loadbalancer_id"] = v
            elif k == "pool":
                attrs["pool_id"] = v
            elif k == "default_pool":
                attrs["default_pool_id"] = v
            elif k != "listener":
                attrs[k] = v
        if kind == "loadbalancer":
            attrs["listeners"] = [li.name for li in cp.listeners_of(key)]
            attrs["pools"] = [p.name for p in cp.pools_of(key)]
        elif kind == "pool":
            attrs["listeners"] = [li.name for li in cp.pool_listeners(key)]
            attrs["listener_id"] = attrs["listeners"][0] if attrs["listeners"] else None
            attrs["members"] = [mem.name for mem in cp.members_of(key)]
            hm = cp.healthmonitor_of(key)
            attrs["healthmonitor_id"] = hm.name if hm is not None else None
        elif kind == "listener":
            attrs["l7policies"] = [p.name for p in policies_of(cp, key)]
        elif kind == "l7policy":
            attrs["listener_id"] = obj.attrs.get("listener")
            attrs["redirect_pool_id"] = obj.attrs.get("redirect_pool")
            attrs["rules"] = [r.name for r in rules_of(cp, key)]
        elif kind == "l7rule":
            attrs["l7policy_id"] = obj.attrs.get("l7policy")
        elif kind in ("member", "healthmonitor"):
            pool = cp.get("pool", str(obj.attrs.get("pool")))
            if pool is not None:
                attrs["loadbalancer_id"] = pool.attrs.get("loadbalancer")
        attrs["name"] = meta.name
        return ObjectRecord(
            kind,
            key,
            meta.name,
            meta.project_id,
            obj.provisioning_status,
            obj.operating_status,
            attrs,
            meta.created_at,
            meta.updated_at,
        )

    def records(self, kind: str) -> list[ObjectRecord]:
        """Every object of a kind, in creation order (DELETED load balancers left out)."""
        out = []
        for key in self._order.get(kind, []):
            rec = self.record(kind, key)
            if rec is not None and rec.provisioning_status != "DELETED":
                out.append(rec)
        return out

    def status_tree(self, lb_key: str) -> dict[str, Any]:
        """``GET /loadbalancers/{id}/status``'s ``statuses`` content: ``{"loadbalancer": {...}}``."""
        cp = self.world.cp
        lb = cp.get("loadbalancer", lb_key)
        if lb is None:
            return {}

        def head(kind: str, key: str) -> dict[str, Any]:
            obj = cp.get(kind, key)
            assert obj is not None
            return {
                "id": key,
                "name": self._name(kind, key),
                "operating_status": obj.operating_status,
                "provisioning_status": obj.provisioning_status,
            }

        listeners = []
        for li in cp.listeners_of(lb_key):
            entry = head("listener", li.name)
            pools = []
            dp = li.attrs.get("default_pool")
            if dp is not None and cp.get("pool", str(dp)) is not None:
                pentry = head("pool", str(dp))
                hm = cp.healthmonitor_of(str(dp))
                if hm is not None:
                    pentry["health_monitor"] = {**head("healthmonitor", hm.name), "type": hm.attrs.get("type")}
                pentry["members"] = [
                    {
                        **head("member", mem.name),
                        "address": mem.attrs.get("address"),
                        "protocol_port": mem.attrs.get("protocol_port"),
                    }
                    for mem in cp.members_of(str(dp))
                ]
                pools.append(pentry)
            entry["pools"] = pools
            listeners.append(entry)
        return {"loadbalancer": {**head("loadbalancer", lb_key), "listeners": listeners}}

    def stats(self, kind: str, key: str) -> dict[str, int]:
        """Octavia's statistics of a load balancer or listener (from the heartbeats)."""
        zero = {"active_connections": 0, "bytes_in": 0, "bytes_out": 0, "request_errors": 0, "total_connections": 0}
        cp = self.world.cp
        obj = cp.get(kind, key)
        if obj is None or kind not in ("loadbalancer", "listener"):
            return zero
        lb = key if kind == "loadbalancer" else str(obj.attrs.get("loadbalancer"))
        rt = self.world.runtimes.get(lb)
        if rt is None:
            return zero
        listeners = {key} if kind == "listener" else {li.name for li in cp.listeners_of(lb)}
        out = dict(zero)
        for (li, _amp), row in rt.hm.stats.items():
            if li in listeners:
                out["bytes_in"] += row[0]
                out["bytes_out"] += row[1]
                out["active_connections"] += row[2]
                out["total_connections"] += row[3]
                out["request_errors"] += row[4]
        return out

    def amphorae(self) -> list[dict[str, Any]]:
        """Octavia's amphora rows of every load balancer (deleted ones left out). While a
        load balancer is first built its amphorae show ``BOOTING`` (with the ids they get)."""
        out = []
        tl = self.world.timeline
        for lb, rt in self.world.runtimes.items():
            vip = self._meta.get(("loadbalancer", lb), _Meta()).fields.get("vip_address")
            row = self.world.cp.get("loadbalancer", lb)
            if not rt.amphorae and row is not None and row.provisioning_status == "PENDING_CREATE":
                roles = ["STANDALONE"] if rt.topology == "SINGLE" else ["MASTER", "BACKUP"]
                for k, role in enumerate(roles):
                    meta = self._meta.get(("loadbalancer", lb))
                    since = meta.created_at if meta is not None else self.now
                    out.append(_amphora_row(rt._amp_name(k + 1), lb, k, role, "BOOTING", vip, rt.topology, since, None))
                continue
            for k, amp in enumerate(rt.amphorae):
                status = tl.current("amphora", amp.amp_id, "provisioning_status") or "ALLOCATED"
                if status == "DELETED":
                    continue
                created, updated = self._amp_times.get(amp.amp_id, (self.now, None))
                row_ = _amphora_row(amp.amp_id, lb, k, amp.role, status, vip, rt.topology, created, updated)
                row_["data_plane_state"] = tl.current("amphora", amp.amp_id, "data_plane_state")
                out.append(row_)
        return out

    def haproxy_view(self, lb_key: str) -> dict[str, str]:
        """What the VIP holder's HAProxy shows per member ("UP", "DOWN 1/2", "no check"...)."""
        rt = self.world.runtimes.get(lb_key)
        if rt is None:
            return {}
        amp = rt.vip if rt.vip is not None and rt.vip.alive else next((a for a in rt.amphorae if a.alive), None)
        if amp is None:
            return {}
        return {name: st.state for name, st in amp.servers.items()}

    def traffic_window(self, seconds: float = 300.0) -> dict[str, Any]:
        """Per listener, the last ``seconds`` of simulated traffic, one value a second:
        ``t`` (end of the second), ``rate`` (arrivals/s), ``error_rate`` (failed/s),
        ``ok``, and the p50/p95/p99 latency of that second's successful responses."""
        n = max(0, int(seconds))
        out: dict[str, Any] = {}
        for listener, win in self.world.windows.items():
            if self.world.cp.get("listener", listener) is None:
                continue
            rows = list(win.rows)[-n:] if n else []
            cols = window_summary(rows)
            out[listener] = {
                "t": [s + 1 for s in cols["second"]],
                "rate": cols["rate"],
                "error_rate": cols["errors"],
                "ok": cols["ok"],
                "p50": [None if math.isnan(v) else v for v in cols["p50"]],
                "p95": [None if math.isnan(v) else v for v in cols["p95"]],
                "p99": [None if math.isnan(v) else v for v in cols["p99"]],
            }
        return out

    def transitions_since(self, index: int) -> tuple[int, list[Transition]]:
        """Status changes recorded after the first ``index`` ones, and the new index."""
        rows = self.world.timeline.rows
        start = max(0, min(int(index), len(rows)))
        return len(rows), rows[start:]

    def metrics_text(self) -> str:
        """Prometheus exposition of the simulated traffic per listener and member."""
        lines = [
            "# HELP lbsim_listener_connections_total Connections accepted by the listener.",
            "# TYPE lbsim_listener_connections_total counter",
        ]
        for lb, rt in self.world.runtimes.items():
            for li in self.world.cp.listeners_of(lb):
                fe = rt.dp.frontends.get(li.name)
                total = self.stats("listener", li.name)["total_connections"]
                if fe is not None:
                    total = max(total, fe.stot)
                lines.append(f'lbsim_listener_connections_total{{loadbalancer="{lb}",listener="{li.name}"}} {total}')
        lines += [
            "# HELP lbsim_member_responses_total Responses by member and outcome.",
            "# TYPE lbsim_member_responses_total counter",
        ]
        for lb, rt in self.world.runtimes.items():
            for srv in rt.dp.servers:
                if self.world.cp.get("member", srv.name) is None:
                    continue
                for outcome, n in (("served", srv.served), ("failed", srv.failed)):
                    labels = f'loadbalancer="{lb}",member="{srv.name}",outcome="{outcome}"'
                    lines.append(f"lbsim_member_responses_total{{{labels}}} {n}")
        lines += [
            "# HELP lbsim_member_up HAProxy's view of the member on the VIP holder (1 UP, 0 otherwise).",
            "# TYPE lbsim_member_up gauge",
        ]
        for lb in self.world.runtimes:
            for name, state in self.haproxy_view(lb).items():
                up = 1 if state.startswith("UP") or state == "no check" else 0
                lines.append(f'lbsim_member_up{{loadbalancer="{lb}",member="{name}"}} {up}')
        lines += [
            "# HELP lbsim_simulated_seconds The twin's simulated clock.",
            "# TYPE lbsim_simulated_seconds gauge",
            f"lbsim_simulated_seconds {self.now}",
        ]
        return "\n".join(lines) + "\n"

    # ------------------------------------------------------------------ record and replay
    @property
    def horizon(self) -> float:
        """The duration of the run that replays the session so far (``now``; a run
        needs a positive duration, so a nanosecond at the very start)."""
        return self.now if self.now > 0 else 1e-9

    def session_events(self) -> list[dict[str, Any]]:
        """Every accepted API call and control so far, as scenario ``events:`` entries."""
        return [dict(ev) for ev in self._events]

    def replay_scenario(self) -> m.Scenario:
        """The scenario that replays this session up to ``now`` (``lbsim run`` repeats it)."""
        d = self.scenario.model_dump(mode="json", exclude_none=True)
        duration = self.horizon
        d["duration"] = duration
        if d.get("warmup", 0.0) >= duration:
            d["warmup"] = 0.0
        d["seed"] = self.seed
        # a live request at t comes before scenario events due at t (they had not fired)
        # (the scenario's own events still to come are not part of the session)
        ahead = [e for e in d.get("events", []) if float(e["at"]) <= duration]
        d["events"] = sorted([*self._events, *ahead], key=lambda e: float(e["at"]))
        d["expect"] = [e for e in d.get("expect", []) if float(e.get("at", (e.get("within") or [0])[0])) <= duration]
        return m.Scenario.model_validate(d)

    def save(self, folder: Path) -> Path:
        """Write the contract's result folder for the session so far, with a
        ``scenario.yaml`` that replays it.

        The folder covers ``[0, now)``, as a run of duration ``now`` does: calls made at
        the very instant of the save are in ``scenario.yaml`` (at the end of the run,
        where a run does not apply them) but not yet in the tables.
        """
        sc = self.replay_scenario()
        text = yaml.safe_dump(sc.model_dump(mode="json", exclude_none=True), sort_keys=False)
        cut = self.horizon
        with self.world.live_series(cut):
            raw = self.world.raw(cut)
            raw.scenario = sc
            raw.timeline = self.timeline_before(cut)
            raw.api_calls = [c for c in raw.api_calls if c.time < cut]
            result = summarise(raw, text)
        return result.save(Path(folder))

    def timeline_before(self, t: float) -> Timeline:
        """The status changes made before ``t`` (what a run of duration ``t`` records)."""
        tl = Timeline()
        for row in self.world.timeline.rows:
            if row.time < t:
                tl.set(row.time, row.object_type, row.name, row.field, row.new)
        return tl

    # ------------------------------------------------------------------ helpers
    def _new_meta(self, kind: str, key: str, name: str, project: str) -> _Meta:
        meta = _Meta(name=name, project_id=project, created_at=self.now)
        if (kind, key) not in self._meta:
            self._order.setdefault(kind, []).append(key)
        self._meta[(kind, key)] = meta
        return meta

    def _meta_keys(self, kind: str) -> list[str]:
        return self._order.get(kind, [])

    def _name(self, kind: str, key: str) -> str:
        meta = self._meta.get((kind, key))
        return meta.name if meta is not None else ""

    def _on_runtime(self, key: str, rt: Simulation) -> None:
        self._ips.setdefault(key, set())

    def _booting(self, amp_id: str) -> str | None:
        """The load balancer whose first build will make amphora ``amp_id`` (or None)."""
        for row in self.amphorae():
            if row["id"] == amp_id and row["status"] == "BOOTING":
                return str(row["loadbalancer_id"])
        return None

    def _runtime_of_amphora(self, amp_id: str) -> Simulation | None:
        return self.world.runtime_of_amphora(amp_id)

    def _subnet(self, ref: Any) -> m.Subnet:
        subnets = [s for net in self.scenario.network.networks for s in net.subnets]
        for s in subnets:
            if ref is not None and (s.name == ref or object_id("network", "subnet", s.name) == ref):
                return s
        return subnets[0] if subnets else m.Subnet(name="private-subnet", cidr="10.0.0.0/24")

    def _allocate(self, subnet: m.Subnet) -> str:
        """The next free address of a subnet (after the gateway)."""
        used = self._ips.setdefault(subnet.name, set())
        net = ipaddress.ip_network(subnet.cidr, strict=False)
        for k, host in enumerate(net.hosts()):
            ip = str(host)
            if k == 0 or ip == subnet.gateway_ip or ip in used:
                continue
            used.add(ip)
            return ip
        return ""

    def _sync(self) -> None:
        """Bring per-object records up to the timeline: objects the run made itself,
        ``updated_at``, amphora times."""
        rows = self.world.timeline.rows
        for row in rows[self._seen_rows :]:
            if row.object_type == "amphora":
                created, _ = self._amp_times.get(row.name, (row.time, None))
                self._amp_times[row.name] = (created, None if row.time == created else row.time)
                continue
            meta = self._meta.get((row.object_type, row.name))
            if meta is None:
                if row.object_type not in KINDS or self.world.cp.get(row.object_type, row.name) is None:
                    continue
                # made by the run itself: a scenario's api event, an autoscaler
                name = self._names.get((row.object_type, row.name), "")
                meta = self._new_meta(row.object_type, row.name, name, DEFAULT_PROJECT)
                meta.created_at = row.time
            if row.old == "" and row.time == meta.created_at:
                continue
            if row.field != "data_plane_state":
                meta.updated_at = row.time
        self._seen_rows = len(rows)


class _Refusal(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _amphora_row(
    amp_id: str,
    lb: str,
    k: int,
    role: str,
    status: str,
    vip: Any,
    topology: str,
    created: float,
    updated: float | None,
) -> dict[str, Any]:
    """One row of ``GET /octavia/amphorae`` (Nova and Neutron ids are stable stand-ins)."""
    vrrp = topology == "ACTIVE_STANDBY"
    return {
        "id": amp_id,
        "loadbalancer_id": lb,
        "compute_id": object_id(amp_id, "compute", "server"),
        "lb_network_ip": _lb_network_ip(lb, k),
        "vrrp_ip": None,
        "ha_ip": vip,
        "vrrp_port_id": None,
        "ha_port_id": None,
        "role": role,
        "status": status,
        "vrrp_interface": None,
        "vrrp_id": 1 if vrrp else None,
        "vrrp_priority": (100 if role == "MASTER" else 90) if vrrp else None,
        "cached_zone": "nova",
        "image_id": object_id("lbsim", "image", "amphora-haproxy"),
        "compute_flavor": "65",
        "created_at": created,
        "updated_at": updated,
        "data_plane_state": "",
    }


def _lb_network_ip(lb: str, k: int) -> str:
    """A stable address on the management network (192.168.0.0/16) for an amphora."""
    h = uuid.UUID(object_id("lb-mgmt", "loadbalancer", lb)).int
    return str(ipaddress.ip_address(0xC0A80000 + ((h + k) % 65000) + 2))


def valid_statuses(rec: ObjectRecord) -> bool:
    """Whether a record's statuses are in Octavia's sets (used by the tests)."""
    prov = {"ACTIVE", "PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE", "DELETED", "ERROR"}
    return rec.provisioning_status in prov and rec.operating_status in OPERATING_STATUSES


__all__ = ["DEFAULT_PROJECT", "ObjectRecord", "Twin", "TwinError", "TwinResponse", "uuid_scenario"]
