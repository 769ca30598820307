"""Octavia's provisioning-status engine as a time-free state machine.

This module is the simulated Octavia *database plus API controllers plus the
status bookkeeping of the controller worker*.  It holds no SimPy and no clock:
the simulation engine calls :meth:`ControlPlane.request` when an API event
happens, gets back an :class:`ApiResponse` (with a :class:`Job` on success),
lets simulated time pass, and then calls :meth:`ControlPlane.complete` with
the job and whether the worker flow succeeded.  Every status field that
changes is reported as a :class:`Change` so the engine can write it to
``transitions.csv`` with the current simulated time.

Rules implemented (reference/octavia-semantics.md §2, §4, §5 and §1.8 step 6,
cross-checked against the ``octavia==19.0.0`` sources):

* Locking (§2.1, §2.2): every change takes the load-balancer lock, which needs
  the LB ``ACTIVE`` (``MUTABLE_STATUSES``); LB delete and failover accept
  ``ACTIVE`` or ``ERROR``.  Member and health-monitor operations also need
  their pool ``ACTIVE``.  A failed lock is HTTP 409 and changes nothing.
  Because every job holds its LB's lock until it completes, there is never more
  than one outstanding job per load balancer.
* What each call sets (§2.3) and the initial operating statuses (§2.4).
* Worker success marks (§2.5) and revert tables (§2.6).  Two details come from
  the upstream worker (``controller/worker/v2/controller_worker.py``): pool,
  member, health-monitor and listener-*create* flows receive **every listener
  of the load balancer**, not just the ones the API locked.  So on success
  every LB listener that is not ``ERROR``/``ACTIVE`` becomes ``ACTIVE``
  (``prov_status_active_if_not_error``), while a revert sets every LB listener
  ``ACTIVE`` unconditionally (``mark_listener_prov_status_active``), and a
  failed listener *create* sets every LB listener ``ERROR``
  (``ListenersToErrorOnRevertTask``).  Listener update/delete flows get only
  their own listener.
* Hard deletes (§2.5): deleted listeners, pools, members and health monitors
  leave the store (later requests get 404); a deleted LB row stays with
  ``DELETED``.  A removal is reported as a ``provisioning_status`` change to
  ``DELETED`` so the transitions file shows it.
* Cascade delete (§2.7) and the 400 for deleting an LB with children.
* Duplicates (409), ``SOURCE_IP_PORT`` on the amphora provider (501),
  PROMETHEUS listeners taking no pool (400), listener/pool protocol
  compatibility (400).

Objects are identified by *name* (the scenario's handle), which plays the role
of Octavia's UUID; error messages therefore carry names where Octavia prints
ids.  Creating an object whose name is taken is answered like Octavia answers
a duplicate id: 409 "Already an entity with that specified id.".
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType
from typing import Any

from lbsim.octavia import l7 as l7ops
from lbsim.octavia.objects import (
    _IMMUTABLE_ON_UPDATE,
    ACTIVE,
    AMPHORA_LB_ALGORITHMS,
    CREATE,
    DELETABLE_STATUSES,
    DELETE,
    DELETED,
    ERROR,
    FAILOVER,
    FAILOVERABLE_STATUSES,
    HEALTHMONITOR,
    L4_PROTOCOL,
    LISTENER,
    LOADBALANCER,
    MEMBER,
    MUTABLE_STATUSES,
    NO_MONITOR,
    OBJECT_TYPES,
    OFFLINE,
    ONLINE,
    OPERATING_STATUS,
    OPERATING_STATUSES,
    OPERATIONS,
    PENDING_CREATE,
    PENDING_DELETE,
    PENDING_UPDATE,
    POOL,
    PROVISIONING_STATUS,
    SOURCE_API,
    SOURCE_HEALTH_MANAGER,
    SUCCESS_CODES,
    UPDATE,
    VALID_POOL_PROTOCOLS,
    ApiResponse,
    Change,
    Job,
    Obj,
    ObjSpec,
    _ApiError,
    _immutable,
    _no_children,
    _not_found,
    _unsupported_algorithm,
    _validation,
)
from lbsim.octavia.quotas import check_quota
from lbsim.scenario.unset import restore_defaults

# --------------------------------------------------------------------------
# The engine
# --------------------------------------------------------------------------


class ControlPlane:
    """The Octavia control-plane state: rows, locks and outstanding jobs."""

    def __init__(self) -> None:
        self._objs: dict[tuple[str, str], Obj] = {}
        self._jobs: dict[int, Job] = {}
        self._job_ids = itertools.count(1)
        #: the project's quotas (object type -> limit, lbsim.scenario.quotas); none by default
        self.quotas: dict[str, int] = {}

    # ---------------------------------------------------------------- lookups

    def get(self, object_type: str, name: str) -> Obj | None:
        """The row, or None.  A deleted LB is still returned (``DELETED``)."""
        return self._objs.get((object_type, name))

    def objects(self, object_type: str | None = None) -> Iterator[Obj]:
        """All rows (of one type), in creation order."""
        for obj in list(self._objs.values()):
            if object_type is None or obj.type == object_type:
                yield obj

    def loadbalancer_of(self, obj: Obj) -> str:
        """Name of the load balancer an object belongs to."""
        if obj.type == LOADBALANCER:
            return obj.name
        if obj.type in (LISTENER, POOL):
            return str(obj.attrs[LOADBALANCER])
        if obj.type in l7ops.L7_TYPES:
            return l7ops.loadbalancer_of(self, obj)
        pool = self._objs[(POOL, str(obj.attrs[POOL]))]
        return str(pool.attrs[LOADBALANCER])

    def listeners_of(self, lb: str) -> list[Obj]:
        """Listeners of a load balancer."""
        return [o for o in self.objects(LISTENER) if o.attrs.get(LOADBALANCER) == lb]

    def pools_of(self, lb: str) -> list[Obj]:
        """Pools of a load balancer (attached to a listener or not)."""
        return [o for o in self.objects(POOL) if o.attrs.get(LOADBALANCER) == lb]

    def pool_listeners(self, pool: str) -> list[Obj]:
        """Listeners using ``pool`` as their default pool (``pool.listeners``)."""
        return [o for o in self.objects(LISTENER) if o.attrs.get("default_pool") == pool]

    def members_of(self, pool: str) -> list[Obj]:
        """Members of a pool."""
        return [o for o in self.objects(MEMBER) if o.attrs.get(POOL) == pool]

    def healthmonitor_of(self, pool: str) -> Obj | None:
        """The pool's health monitor, if any."""
        for o in self.objects(HEALTHMONITOR):
            if o.attrs.get(POOL) == pool:
                return o
        return None

    def outstanding_jobs(self) -> tuple[Job, ...]:
        """Jobs handed out and not yet completed."""
        return tuple(self._jobs.values())

    def job_for(self, lb: str) -> Job | None:
        """The outstanding job holding ``lb``'s lock, if any."""
        for job in self._jobs.values():
            if job.loadbalancer == lb:
                return job
        return None

    # --------------------------------------------------------- bulk loading

    def load_active(self, specs: Iterable[ObjSpec]) -> None:
        """Install a running deployment: every object ``ACTIVE``, no job, no
        changes reported.  Operating statuses are the caller's; when omitted:
        ``ONLINE``, members ``NO_MONITOR`` without an HM, disabled HMs
        ``OFFLINE``.  Raises ValueError on an inconsistent description."""
        try:
            ordered = self._check_tree(list(specs))
        except _ApiError as err:
            raise ValueError(f"{err.code}: {err.message}") from err
        # pools with a health monitor, found once (per member, a scan of the whole tree
        # made loading 10,000 monitor-less members take seconds)
        monitored = {s.attrs.get(POOL) for s in ordered if s.type == HEALTHMONITOR}
        for spec in ordered:
            op = spec.operating_status or self._default_running_op(spec, monitored)
            if op not in OPERATING_STATUSES:
                raise ValueError(f"unknown operating status {op!r}")
            self._objs[(spec.type, spec.name)] = Obj(spec.type, spec.name, ACTIVE, op, dict(spec.attrs))

    @staticmethod
    def _default_running_op(spec: ObjSpec, monitored: set[Any]) -> str:
        """A running object's operating status when the caller gives none (``monitored``:
        the pools that have a health monitor)."""
        if spec.type == MEMBER:
            return ONLINE if spec.attrs.get(POOL) in monitored else NO_MONITOR
        if spec.type in (HEALTHMONITOR, *l7ops.L7_TYPES) and not spec.attrs.get("admin_state_up", True):
            return OFFLINE
        return ONLINE

    def create_loadbalancer_tree(self, specs: Iterable[ObjSpec]) -> ApiResponse:
        """Fully-populated LB create (``POST /loadbalancers`` with children).

        Everything goes ``PENDING_CREATE`` with the §2.4 operating statuses.
        Structural mistakes (unknown references, two LBs) raise ValueError;
        Octavia's own rules answer 400/409/501 without a state change."""
        spec_list = list(specs)
        try:
            ordered = self._check_tree(spec_list)
            check_quota(self, self.quotas, [s.type for s in ordered])
        except _ApiError as err:
            return ApiResponse(err.code, err.message)
        lb_spec = ordered[0]
        existing = self.get(LOADBALANCER, lb_spec.name)
        if existing is not None and existing.provisioning_status != DELETED:
            return ApiResponse(409, "Already an entity with that specified id.")
        for spec in ordered[1:]:
            if self.get(spec.type, spec.name) is not None:
                return ApiResponse(409, "Already an entity with that specified id.")
        out: list[Change] = []
        hm_pools = {s.attrs[POOL] for s in ordered if s.type == HEALTHMONITOR}
        for spec in ordered:
            op = OFFLINE
            if spec.type == MEMBER and spec.attrs[POOL] not in hm_pools:
                op = NO_MONITOR
            self._insert(spec.type, spec.name, dict(spec.attrs), op, out)
        job = self._new_job(CREATE, LOADBALANCER, lb_spec.name, lb_spec.name, lb_spec.attrs)
        return ApiResponse(201, "", job, tuple(out))

    def _check_tree(self, specs: list[ObjSpec]) -> list[ObjSpec]:
        """Validate a one-LB description; returns it ordered LB, listeners,
        pools, health monitors, members, with LB relations filled in."""
        for spec in specs:
            if spec.type not in OBJECT_TYPES and spec.type not in l7ops.L7_TYPES:
                raise ValueError(f"unknown object type {spec.type!r}")
        lbs = [s for s in specs if s.type == LOADBALANCER]
        if len(lbs) != 1:
            raise ValueError("a tree needs exactly one loadbalancer")
        lb = lbs[0].name
        seen: set[tuple[str, str]] = set()
        for spec in specs:
            if (spec.type, spec.name) in seen:
                raise ValueError(f"duplicate {spec.type} name {spec.name!r}")
            seen.add((spec.type, spec.name))

        def with_lb(spec: ObjSpec) -> ObjSpec:
            given = spec.attrs.get(LOADBALANCER, lb)
            if given != lb:
                raise ValueError(f"{spec.type} {spec.name!r} names another loadbalancer")
            return ObjSpec(spec.type, spec.name, {**spec.attrs, LOADBALANCER: lb}, spec.operating_status)

        listeners = [with_lb(s) for s in specs if s.type == LISTENER]
        pools = [with_lb(s) for s in specs if s.type == POOL]
        hms = [s for s in specs if s.type == HEALTHMONITOR]
        members = [s for s in specs if s.type == MEMBER]
        pool_by_name = {p.name: p for p in pools}
        for child in (*hms, *members):
            if child.attrs.get(POOL) not in pool_by_name:
                raise ValueError(f"{child.type} {child.name!r} names an unknown pool")
        ports: set[tuple[str, Any]] = set()
        for lst in listeners:
            proto = str(lst.attrs.get("protocol"))
            dp = lst.attrs.get("default_pool")
            if dp is not None:
                if dp not in pool_by_name:
                    raise ValueError(f"listener {lst.name!r} names an unknown pool")
                self._check_listener_pool(proto, str(pool_by_name[dp].attrs.get("protocol")))
            key = (L4_PROTOCOL.get(proto, proto), lst.attrs.get("protocol_port"))
            if key in ports:
                raise _duplicate_listener(proto, key[1])
            ports.add(key)
        for pool in pools:
            algorithm = pool.attrs.get("lb_algorithm")
            if algorithm is not None and algorithm not in AMPHORA_LB_ALGORITHMS:
                raise _unsupported_algorithm(str(algorithm))
        hm_pools: set[Any] = set()
        for hm in hms:
            if hm.attrs[POOL] in hm_pools:
                raise _ApiError(409, "This pool already has a health monitor")
            hm_pools.add(hm.attrs[POOL])
        endpoints: set[tuple[Any, Any, Any]] = set()
        for m in members:
            key3 = (m.attrs[POOL], m.attrs.get("address"), m.attrs.get("protocol_port"))
            if key3 in endpoints:
                raise _duplicate_member(key3[1], key3[2])
            endpoints.add(key3)
        return [lbs[0], *listeners, *pools, *hms, *members, *[s for s in specs if s.type in l7ops.L7_TYPES]]

    # ----------------------------------------------------------- API entry

    def request(
        self,
        op: str,
        object_type: str,
        name: str,
        body: Mapping[str, Any] | None = None,
        cascade: bool = False,
    ) -> ApiResponse:
        """One API call.  On success: Octavia's code (POST 201, PUT 200,
        DELETE 204, failover 202), a :class:`Job` and the lock changes.  On
        refusal: 400/404/409/501 with Octavia's message and no state change.

        Relations in ``body`` are names: listener create takes
        ``loadbalancer`` (optional when the store has one LB) and
        ``default_pool``; pool create takes ``loadbalancer`` or ``listener``;
        member and healthmonitor create take ``pool``.  A listener update may
        set ``default_pool`` (a name or None).  Unknown ops/types raise
        ValueError (programming errors, not API answers)."""
        if op not in OPERATIONS:
            raise ValueError(f"unknown operation {op!r}")
        if op == CREATE and self.quotas:  # 403 before Octavia's state checks
            try:
                check_quota(self, self.quotas, [object_type])
            except _ApiError as err:
                return ApiResponse(err.code, err.message)
        if object_type in l7ops.L7_TYPES:  # L7 policies and rules: lbsim.octavia.l7
            try:
                return l7ops.request(self, op, object_type, name, dict(body or {}))
            except _ApiError as err:
                return ApiResponse(err.code, err.message)
        if object_type not in OBJECT_TYPES:
            raise ValueError(f"unknown object type {object_type!r}")
        if op == FAILOVER and object_type != LOADBALANCER:
            raise ValueError("only load balancers can be failed over")
        body = dict(body or {})
        try:
            if object_type == LOADBALANCER:
                return self._request_lb(op, name, body, cascade)
            if op == CREATE:
                return self._create_child(object_type, name, body)
            return self._change_child(op, object_type, name, body)
        except _ApiError as err:
            return ApiResponse(err.code, err.message)

    def lock_for_failover(self, lb_name: str) -> tuple[Job | None, tuple[Change, ...]]:
        """Health manager (§1.8 step 6): lock the LB for an amphora failover.

        ``ACTIVE``/``ERROR`` → ``PENDING_UPDATE`` and a failover job (source
        ``health_manager``); anything else (or a missing/deleted LB) → no job,
        no change, and the health manager skips this cycle."""
        lb = self._live_lb(lb_name)
        if lb is None or lb.provisioning_status not in FAILOVERABLE_STATUSES:
            return None, ()
        out: list[Change] = []
        self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
        job = self._new_job(FAILOVER, LOADBALANCER, lb_name, lb_name, {}, source=SOURCE_HEALTH_MANAGER)
        return job, tuple(out)

    def set_operating_status(self, object_type: str, name: str, status: str) -> tuple[Change, ...]:
        """Write an operating status (heartbeat processing); reports the
        change, or nothing when the value is unchanged."""
        if status not in OPERATING_STATUSES:
            raise ValueError(f"unknown operating status {status!r}")
        obj = self._objs[(object_type, name)]
        out: list[Change] = []
        self._set(obj, OPERATING_STATUS, status, out)
        return tuple(out)

    # ------------------------------------------------------ LB operations

    def _request_lb(self, op: str, name: str, body: dict[str, Any], cascade: bool) -> ApiResponse:
        if op == CREATE:
            return self.create_loadbalancer_tree([ObjSpec(LOADBALANCER, name, body)])
        lb = self._live_lb(name)
        if lb is None:
            raise _not_found(LOADBALANCER, name)
        out: list[Change] = []
        if op == UPDATE:
            self._check_updatable(LOADBALANCER, body)
            if lb.provisioning_status not in MUTABLE_STATUSES:
                raise _pending_state(lb)
            lb.attrs.update(body)
            self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
        elif op == DELETE:
            if (self.listeners_of(name) or self.pools_of(name)) and not cascade:
                raise _validation(f"Cannot delete Load Balancer {name} - it has children")
            if lb.provisioning_status not in DELETABLE_STATUSES:
                raise _pending_state(lb)
            self._set(lb, PROVISIONING_STATUS, PENDING_DELETE, out)
        else:  # FAILOVER
            if lb.provisioning_status not in FAILOVERABLE_STATUSES:
                raise _pending_state(lb)
            self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
        job = self._new_job(op, LOADBALANCER, name, name, body, cascade=cascade and op == DELETE)
        return ApiResponse(SUCCESS_CODES[op], "", job, tuple(out))

    # --------------------------------------------------- child operations

    def _create_child(self, object_type: str, name: str, body: dict[str, Any]) -> ApiResponse:
        out: list[Change] = []
        if object_type == LISTENER:
            lb = self._lb_for_create(body)
            self._check_default_pool(body.get("protocol"), body.get("default_pool"), lb.name)
            self._require_lock(lb)
            self._check_listener_unique(lb.name, body)
            self._check_name_free(object_type, name)
            attrs = {**body, LOADBALANCER: lb.name}
            attrs.setdefault("default_pool", None)
            self._insert(LISTENER, name, attrs, OFFLINE, out)
            self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
        elif object_type == POOL:
            listener, lb = self._pool_parents(body)
            if listener is not None:
                lproto = str(listener.attrs.get("protocol"))
                if lproto == "PROMETHEUS":
                    raise _no_children(lproto)
                self._check_listener_pool(lproto, str(body.get("protocol")))
                if listener.attrs.get("default_pool") is not None:
                    raise _ApiError(409, "This listener already has a default pool")
            self._require_lock(lb)
            self._check_algorithm(body)
            self._check_name_free(object_type, name)
            attrs = {k: v for k, v in body.items() if k != LISTENER}
            attrs[LOADBALANCER] = lb.name
            self._insert(POOL, name, attrs, OFFLINE, out)
            if listener is not None:
                listener.attrs["default_pool"] = name
                self._set(listener, PROVISIONING_STATUS, PENDING_UPDATE, out)
            self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
        else:  # MEMBER or HEALTHMONITOR: the pool is the URL's parent
            pool_name = body.get(POOL)
            pool = self._objs.get((POOL, str(pool_name)))
            if pool is None:
                raise _not_found(POOL, str(pool_name))
            lb = self._lb_row(str(pool.attrs[LOADBALANCER]))
            self._require_pool_and_lock(pool, lb)
            if object_type == MEMBER:
                self._check_member_unique(pool.name, body)
            elif self.healthmonitor_of(pool.name) is not None:
                raise _ApiError(409, "This pool already has a health monitor")
            self._check_name_free(object_type, name)
            op_status = OFFLINE
            if object_type == MEMBER and self.healthmonitor_of(pool.name) is None:
                op_status = NO_MONITOR
            self._insert(object_type, name, dict(body), op_status, out)
            self._lock_pool_parents(pool, lb, out)
        job = self._new_job(CREATE, object_type, name, lb.name, body)
        return ApiResponse(SUCCESS_CODES[CREATE], "", job, tuple(out))

    def _change_child(self, op: str, object_type: str, name: str, body: dict[str, Any]) -> ApiResponse:
        obj = self._objs.get((object_type, name))
        if obj is None:
            raise _not_found(object_type, name)
        if op == UPDATE:
            self._check_updatable(object_type, body)
            body = restore_defaults(object_type, body, obj.attrs)  # unset: null → Octavia's default
        lb = self._lb_row(self.loadbalancer_of(obj))
        target = PENDING_UPDATE if op == UPDATE else PENDING_DELETE
        out: list[Change] = []
        if object_type == LISTENER:
            if op == UPDATE and body.get("default_pool") is not None:
                self._check_default_pool(obj.attrs.get("protocol"), body["default_pool"], lb.name)
            self._require_lock(lb)
            if op == UPDATE:
                obj.attrs.update(body)
            self._set(obj, PROVISIONING_STATUS, target, out)
            self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
        elif object_type == POOL:
            if op == DELETE:
                l7ops.check_pool_deletable(self, name)
            self._require_lock(lb)
            if op == UPDATE:
                self._check_algorithm(body)
                obj.attrs.update(body)
            self._set(obj, PROVISIONING_STATUS, target, out)
            for lst in self.pool_listeners(name):
                self._set(lst, PROVISIONING_STATUS, PENDING_UPDATE, out)
            self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
        else:  # MEMBER or HEALTHMONITOR
            pool = self._objs[(POOL, str(obj.attrs[POOL]))]
            self._require_pool_and_lock(pool, lb)
            if op == UPDATE:
                obj.attrs.update(body)
            self._set(obj, PROVISIONING_STATUS, target, out)
            self._lock_pool_parents(pool, lb, out)
        job = self._new_job(op, object_type, name, lb.name, body)
        return ApiResponse(SUCCESS_CODES[op], "", job, tuple(out))

    # ---------------------------------------------------------- checks

    def _live_lb(self, name: str) -> Obj | None:
        lb = self._objs.get((LOADBALANCER, name))
        if lb is None or lb.provisioning_status == DELETED:
            return None
        return lb

    def _lb_row(self, name: str) -> Obj:
        return self._objs[(LOADBALANCER, name)]

    def _lb_for_create(self, body: Mapping[str, Any]) -> Obj:
        """The parent LB of a listener/pool create.  Like Octavia's
        ``_get_lb_project_id_provider`` this finds DELETED rows too (the lock
        then refuses with 409)."""
        name = body.get(LOADBALANCER)
        if name is None:
            lbs = list(self.objects(LOADBALANCER))
            if len(lbs) != 1:
                raise _validation("loadbalancer is required when there is not exactly one")
            return lbs[0]
        lb = self._objs.get((LOADBALANCER, str(name)))
        if lb is None:
            raise _not_found(LOADBALANCER, str(name))
        return lb

    def _pool_parents(self, body: Mapping[str, Any]) -> tuple[Obj | None, Obj]:
        lname = body.get(LISTENER)
        if lname is None:
            if body.get(LOADBALANCER) is None and len(list(self.objects(LOADBALANCER))) != 1:
                raise _validation("Must provide at least one of: loadbalancer_id, listener_id")
            return None, self._lb_for_create(body)
        listener = self._objs.get((LISTENER, str(lname)))
        if listener is None:
            raise _not_found(LISTENER, str(lname))
        lb = self._lb_row(str(listener.attrs[LOADBALANCER]))
        given = body.get(LOADBALANCER)
        if given is not None and given != lb.name:
            raise _validation(f"Listener {lname} is not on Load Balancer {given}")
        return listener, lb

    def _check_default_pool(self, protocol: Any, pool_name: Any, lb: str) -> None:
        """Listener create/update naming a default pool (``_validate_pool``)."""
        if pool_name is None:
            return
        if protocol == "PROMETHEUS":
            raise _no_children("PROMETHEUS")
        pool = self._objs.get((POOL, str(pool_name)))
        if pool is None or pool.attrs.get(LOADBALANCER) != lb:
            raise _not_found(POOL, str(pool_name))
        self._check_listener_pool(str(protocol), str(pool.attrs.get("protocol")))

    @staticmethod
    def _check_listener_pool(listener_protocol: str, pool_protocol: str) -> None:
        if listener_protocol == "PROMETHEUS":
            raise _no_children(listener_protocol)
        allowed = VALID_POOL_PROTOCOLS.get(listener_protocol)
        if allowed is not None and pool_protocol not in allowed:
            raise _validation(
                f"The pool protocol '{pool_protocol}' is invalid while the listener protocol is '{listener_protocol}'."
            )

    def _check_listener_unique(self, lb: str, body: Mapping[str, Any]) -> None:
        proto = str(body.get("protocol"))
        l4 = L4_PROTOCOL.get(proto, proto)
        port = body.get("protocol_port")
        for other in self.listeners_of(lb):
            oproto = str(other.attrs.get("protocol"))
            if other.attrs.get("protocol_port") == port and L4_PROTOCOL.get(oproto, oproto) == l4:
                raise _duplicate_listener(oproto, port)

    def _check_member_unique(self, pool: str, body: Mapping[str, Any]) -> None:
        address, port = body.get("address"), body.get("protocol_port")
        for other in self.members_of(pool):
            if other.attrs.get("address") == address and other.attrs.get("protocol_port") == port:
                raise _duplicate_member(address, port)

    @staticmethod
    def _check_algorithm(body: Mapping[str, Any]) -> None:
        algorithm = body.get("lb_algorithm")
        if algorithm is not None and algorithm not in AMPHORA_LB_ALGORITHMS:
            raise _unsupported_algorithm(str(algorithm))

    @staticmethod
    def _check_updatable(object_type: str, body: Mapping[str, Any]) -> None:
        fixed = sorted(set(body) & _IMMUTABLE_ON_UPDATE[object_type])
        if fixed:
            raise _validation(f"{', '.join(fixed)} cannot be updated on a {object_type}")

    def _check_name_free(self, object_type: str, name: str) -> None:
        if (object_type, name) in self._objs:
            raise _ApiError(409, "Already an entity with that specified id.")

    @staticmethod
    def _require_lock(lb: Obj) -> None:
        """``test_and_set_provisioning_status`` for a non-delete status."""
        if lb.provisioning_status not in MUTABLE_STATUSES:
            raise _immutable(LOADBALANCER, lb.name)

    @staticmethod
    def _require_pool_and_lock(pool: Obj, lb: Obj) -> None:
        """Member/HM pre-check: the pool first, then the LB lock."""
        if pool.provisioning_status not in MUTABLE_STATUSES:
            raise _immutable(POOL, pool.name)
        if lb.provisioning_status not in MUTABLE_STATUSES:
            raise _immutable(LOADBALANCER, lb.name)

    def _lock_pool_parents(self, pool: Obj, lb: Obj, out: list[Change]) -> None:
        """Member/HM lock: the pool, its listeners and the LB → PENDING_UPDATE."""
        self._set(pool, PROVISIONING_STATUS, PENDING_UPDATE, out)
        for lst in self.pool_listeners(pool.name):
            self._set(lst, PROVISIONING_STATUS, PENDING_UPDATE, out)
        self._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)

    # ------------------------------------------------------- completion

    def complete(self, job: Job, success: bool) -> tuple[Change, ...]:
        """The worker flow of ``job`` finished: apply the success marks
        (§2.5) or the revert (§2.6), release the lock, report the changes."""
        if self._jobs.get(job.id) is not job:
            raise ValueError(f"job {job.id} is not outstanding")
        del self._jobs[job.id]
        out: list[Change] = []
        lb = self._lb_row(job.loadbalancer)
        if job.object_type in l7ops.L7_TYPES:
            l7ops.complete(self, job, lb, success, out)
            return tuple(out)
        if job.object_type == LOADBALANCER:
            self._complete_lb(job, lb, success, out)
            return tuple(out)
        obj = self._objs[(job.object_type, job.name)]
        if job.object_type == LISTENER:
            if success:
                if job.op == DELETE:
                    self._remove(obj, out)
                    touched: list[Obj] = []
                elif job.op == CREATE:
                    touched = self.listeners_of(lb.name)
                else:
                    touched = [obj]
                for lst in touched:
                    self._active_if_not_error(lst, out)
            elif job.op == CREATE:
                for lst in self.listeners_of(lb.name):
                    self._set(lst, PROVISIONING_STATUS, ERROR, out)
            else:
                self._set(obj, PROVISIONING_STATUS, ERROR, out)
            self._set(lb, PROVISIONING_STATUS, ACTIVE, out)
            return tuple(out)
        pool = obj if job.object_type == POOL else self._objs[(POOL, str(obj.attrs[POOL]))]
        if not success:
            self._set(obj, PROVISIONING_STATUS, ERROR, out)
            if pool is not obj:
                self._set(pool, PROVISIONING_STATUS, ACTIVE, out)
            for lst in self.listeners_of(lb.name):
                self._set(lst, PROVISIONING_STATUS, ACTIVE, out)
            self._set(lb, PROVISIONING_STATUS, ACTIVE, out)
            return tuple(out)
        if job.op == DELETE:
            self._remove(obj, out)
            if job.object_type == HEALTHMONITOR:  # UpdatePoolMembersOperatingStatusInDB
                for member in self.members_of(pool.name):
                    self._set(member, OPERATING_STATUS, NO_MONITOR, out)
        else:
            self._set(obj, PROVISIONING_STATUS, ACTIVE, out)
            if job.object_type == HEALTHMONITOR:
                enabled = obj.attrs.get("admin_state_up", True)
                self._set(obj, OPERATING_STATUS, ONLINE if enabled else OFFLINE, out)
        if pool is not obj:
            self._set(pool, PROVISIONING_STATUS, ACTIVE, out)
        for lst in self.listeners_of(lb.name):
            self._active_if_not_error(lst, out)
        self._set(lb, PROVISIONING_STATUS, ACTIVE, out)
        return tuple(out)

    def _complete_lb(self, job: Job, lb: Obj, success: bool, out: list[Change]) -> None:
        if not success:
            if job.op == CREATE:
                # Revert of MarkLBActiveInDB(mark_subobjects=True).
                self._mark_subobjects(lb.name, ERROR, out)
            self._set(lb, PROVISIONING_STATUS, ERROR, out)
            return
        if job.op == DELETE:
            for pool in self.pools_of(lb.name):
                self._remove(pool, out)
            for lst in self.listeners_of(lb.name):
                self._remove(lst, out)
            self._set(lb, PROVISIONING_STATUS, DELETED, out)
            return
        if job.op == CREATE:
            # MarkHealthMonitorsOnlineInDB: enabled HMs of listeners' default pools.
            for lst in self.listeners_of(lb.name):
                dp = lst.attrs.get("default_pool")
                hm = self.healthmonitor_of(str(dp)) if dp is not None else None
                if hm is not None and hm.attrs.get("admin_state_up", True):
                    self._set(hm, OPERATING_STATUS, ONLINE, out)
        if job.op in (CREATE, FAILOVER):
            self._mark_subobjects(lb.name, ACTIVE, out)
        self._set(lb, PROVISIONING_STATUS, ACTIVE, out)

    def _mark_subobjects(self, lb: str, status: str, out: list[Change]) -> None:
        """``MarkLBActiveInDB(mark_subobjects=True)``: each listener and its
        default pool (pool, HM, members), then every pool of the LB."""
        for lst in self.listeners_of(lb):
            self._set(lst, PROVISIONING_STATUS, status, out)
            dp = lst.attrs.get("default_pool")
            if dp is not None:
                self._mark_pool(self._objs[(POOL, str(dp))], status, out)
        for pool in self.pools_of(lb):
            self._mark_pool(pool, status, out)
        l7ops.mark_all(self, lb, status, out)

    def _mark_pool(self, pool: Obj, status: str, out: list[Change]) -> None:
        self._set(pool, PROVISIONING_STATUS, status, out)
        hm = self.healthmonitor_of(pool.name)
        if hm is not None:
            self._set(hm, PROVISIONING_STATUS, status, out)
        for member in self.members_of(pool.name):
            self._set(member, PROVISIONING_STATUS, status, out)

    def _active_if_not_error(self, listener: Obj, out: list[Change]) -> None:
        """``ListenerRepository.prov_status_active_if_not_error``."""
        if listener.provisioning_status not in (ERROR, ACTIVE):
            self._set(listener, PROVISIONING_STATUS, ACTIVE, out)

    # ------------------------------------------------------ primitives

    def _new_job(
        self,
        op: str,
        object_type: str,
        name: str,
        lb: str,
        body: Mapping[str, Any],
        cascade: bool = False,
        source: str = SOURCE_API,
    ) -> Job:
        if self.job_for(lb) is not None:  # the lock makes this impossible
            raise RuntimeError(f"load balancer {lb} already has an outstanding job")
        job = Job(
            next(self._job_ids),
            op,
            object_type,
            name,
            lb,
            MappingProxyType(dict(body)),
            cascade,
            source,
        )
        self._jobs[job.id] = job
        return job

    def _insert(self, object_type: str, name: str, attrs: dict[str, Any], op: str, out: list[Change]) -> None:
        # A new row; only a DELETED load balancer's row can be replaced.
        previous = self._objs.get((object_type, name))
        obj = Obj(object_type, name, PENDING_CREATE, op, attrs)
        self._objs[(object_type, name)] = obj
        for field_name in (PROVISIONING_STATUS, OPERATING_STATUS):
            old = None if previous is None else getattr(previous, field_name)
            if old != getattr(obj, field_name):
                out.append(Change(object_type, name, field_name, old, getattr(obj, field_name)))

    def _remove(self, obj: Obj, out: list[Change]) -> None:
        """Hard-delete a child row (a pool takes its members and HM along;
        listeners using it lose their default pool)."""
        if obj.type == POOL:
            for member in self.members_of(obj.name):
                self._remove(member, out)
            hm = self.healthmonitor_of(obj.name)
            if hm is not None:
                self._remove(hm, out)
            for lst in self.pool_listeners(obj.name):
                lst.attrs["default_pool"] = None
        if obj.type == LISTENER:
            l7ops.remove_with_listener(self, obj.name, out)
        del self._objs[(obj.type, obj.name)]
        out.append(Change(obj.type, obj.name, PROVISIONING_STATUS, obj.provisioning_status, DELETED))

    @staticmethod
    def _set(obj: Obj, field_name: str, value: str, out: list[Change]) -> None:
        old = getattr(obj, field_name)
        if old != value:
            setattr(obj, field_name, value)
            out.append(Change(obj.type, obj.name, field_name, old, value))


def _pending_state(lb: Obj) -> _ApiError:
    return _ApiError(409, f"Invalid state {lb.provisioning_status} of loadbalancer resource {lb.name}")


def _duplicate_listener(protocol: str, port: Any) -> _ApiError:
    return _ApiError(
        409,
        f"Another Listener on this Load Balancer is already using protocol {protocol} and protocol_port {port}",
    )


def _duplicate_member(address: Any, port: Any) -> _ApiError:
    return _ApiError(409, f"Another member on this pool is already using ip {address} on protocol_port {port}")
