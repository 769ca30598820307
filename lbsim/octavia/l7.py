"""L7 policies and rules in the control plane: API checks, locks, positions and worker marks.

Rows of type ``l7policy`` (attrs: ``listener``, ``action``, ``position``, the redirect
fields, ``admin_state_up``) and ``l7rule`` (attrs: ``l7policy``, ``type``,
``compare_type``, ``key``, ``value``, ``invert``, ``admin_state_up``) live in the
:class:`~lbsim.octavia.controlplane.ControlPlane` store next to the other objects; this
module holds what is specific to them (octavia-semantics.md §2.3-§2.6 and the upstream
``l7policy.py`` / ``l7rule.py`` controllers and flows of Octavia 19):

* **Create/update/delete** need the LB ``ACTIVE`` (409 otherwise) and lock LB and
  listener (``PENDING_UPDATE``); a rule also needs its policy ``ACTIVE`` (409
  ``L7Policy <id> is immutable and cannot be updated.``) and locks it too.
* New rows are ``PENDING_CREATE`` / ``OFFLINE``. Success (``MarkL7PolicyActiveInDB``,
  ``MarkL7RuleActiveInDB``): ``ACTIVE`` and ``ONLINE`` when enabled, ``OFFLINE`` when
  not; a rule's flow then marks its policy the same way; listeners and LB ``ACTIVE``.
  Deletes are hard deletes (a rule delete marks its policy active). A revert sets the
  policy/rule ``ERROR`` (and a rule's policy ``ACTIVE``), listeners and LB ``ACTIVE``.
* **Positions** are renumbered 1..n per listener as Octavia's ``ordering_list`` does
  (:func:`lbsim.scenario.l7.order_positions`), at the API call.
* **Validation**: Octavia's sanitising of the action/redirect fields, rule checks, at
  most 50 rules per policy (409), the redirect pool on the same LB (404) with a
  protocol the listener accepts (400), L7 only on HTTP/TERMINATED_HTTPS listeners (501
  from the amphora provider), none on PROMETHEUS listeners (400); a pool used by a
  policy cannot be deleted (409).
* Policies created with their load balancer (``start: provision``) get only their
  provisioning status from ``MarkLBActiveInDB(mark_subobjects=True)``; their operating
  status stays ``OFFLINE`` (nothing else sets it). A running deployment (``start:
  running``) has them ``ONLINE`` when enabled, as if each had been created by its own call.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lbsim.octavia.objects import (
    ACTIVE,
    CREATE,
    DELETE,
    ERROR,
    LISTENER,
    LOADBALANCER,
    MUTABLE_STATUSES,
    OFFLINE,
    ONLINE,
    OPERATING_STATUS,
    PENDING_DELETE,
    PENDING_UPDATE,
    POOL,
    PROVISIONING_STATUS,
    SUCCESS_CODES,
    UPDATE,
    ApiResponse,
    Change,
    Job,
    Obj,
    ObjSpec,
    _ApiError,
    _no_children,
    _not_found,
    _validation,
)
from lbsim.scenario.l7 import (
    L7_LISTENER_PROTOCOLS,
    L7_POOL_PROTOCOLS,
    MAX_POSITION,
    MAX_RULES_PER_POLICY,
    L7Error,
    check_rule,
    order_positions,
    sanitize_policy,
)

#: the control plane (typed loosely: it imports this module, so no import back)
ControlPlane = Any

L7POLICY = "l7policy"
L7RULE = "l7rule"
L7_TYPES = (L7POLICY, L7RULE)
RESOURCE = {L7POLICY: "L7Policy", L7RULE: "L7Rule"}
#: fields an update may not change
_FIXED = {L7POLICY: frozenset({LISTENER}), L7RULE: frozenset({L7POLICY})}
_POLICY_FIELDS = frozenset(
    {
        "action",
        "position",
        "redirect_pool",
        "redirect_url",
        "redirect_prefix",
        "redirect_http_code",
        "admin_state_up",
        "name",
        "description",
        "tags",
    }
)
_RULE_FIELDS = frozenset({"type", "compare_type", "key", "value", "invert", "admin_state_up", "tags"})


# --------------------------------------------------------------------------------------
# Look-ups
# --------------------------------------------------------------------------------------


def policies_of(cp: ControlPlane, listener: str) -> list[Obj]:
    """A listener's policies in position order."""
    rows = [o for o in cp.objects(L7POLICY) if o.attrs.get(LISTENER) == listener]
    return sorted(rows, key=lambda o: int(o.attrs.get("position") or MAX_POSITION))


def rules_of(cp: ControlPlane, policy: str) -> list[Obj]:
    """A policy's rules in creation order."""
    return [o for o in cp.objects(L7RULE) if o.attrs.get(L7POLICY) == policy]


def loadbalancer_of(cp: ControlPlane, obj: Obj) -> str:
    """The load balancer of a policy or rule row."""
    policy = obj if obj.type == L7POLICY else cp.get(L7POLICY, str(obj.attrs[L7POLICY]))
    assert policy is not None
    listener = cp.get(LISTENER, str(policy.attrs[LISTENER]))
    assert listener is not None
    return str(listener.attrs[LOADBALANCER])


def policy_dicts(cp: ControlPlane, listener: str) -> list[dict[str, Any]]:
    """What the amphora renders for a listener (``jinja_cfg``): policies and rules not
    being deleted, as dicts with ``name``, the attrs and ``rules``; in position order."""
    out = []
    for p in policies_of(cp, listener):
        if p.provisioning_status == PENDING_DELETE:
            continue
        rules = [{**r.attrs, "name": r.name} for r in rules_of(cp, p.name) if r.provisioning_status != PENDING_DELETE]
        out.append({**p.attrs, "name": p.name, "rules": rules})
    return out


def pool_users(cp: ControlPlane, pool: str) -> list[str]:
    """Policies redirecting to ``pool``."""
    return [o.name for o in cp.objects(L7POLICY) if o.attrs.get("redirect_pool") == pool]


def specs(listener: str, policies: list[Any]) -> list[ObjSpec]:
    """Control-plane rows for a scenario listener's ``l7policies`` (positions renumbered)."""
    order: list[str] = []
    for p in policies:
        order = order_positions(order, p.name, p.position)
    position = {name: i for i, name in enumerate(order, 1)}
    out: list[ObjSpec] = []
    for p in policies:
        attrs = p.model_dump(exclude={"name", "rules"})
        out.append(ObjSpec(L7POLICY, p.name, {**attrs, "position": position[p.name], LISTENER: listener}))
        for r, rname in zip(p.rules, p.rule_names(), strict=True):
            out.append(ObjSpec(L7RULE, rname, {**r.model_dump(exclude={"name"}), L7POLICY: p.name}))
    return out


# --------------------------------------------------------------------------------------
# API calls
# --------------------------------------------------------------------------------------


def request(cp: ControlPlane, op: str, kind: str, name: str, body: dict[str, Any]) -> ApiResponse:
    """One l7policy/l7rule call; raises ``_ApiError`` for Octavia's refusals."""
    if op not in (CREATE, UPDATE, DELETE):
        raise ValueError(f"{op} is not an operation on {kind}")
    out: list[Change] = []
    if op == CREATE:
        cp._check_name_free(kind, name)
        policy, listener, lb = _parents(cp, kind, body)
    else:
        obj = cp.get(kind, name)
        if obj is None:
            raise _not_found_l7(kind, name)
        policy = obj if kind == L7POLICY else cp.get(L7POLICY, str(obj.attrs[L7POLICY]))
        assert policy is not None
        listener = _row(cp, LISTENER, str(policy.attrs[LISTENER]))
        lb = _row(cp, LOADBALANCER, str(listener.attrs[LOADBALANCER]))
        if op == UPDATE:
            fixed = sorted(set(body) & _FIXED[kind])
            if fixed:
                raise _validation(f"{', '.join(fixed)} cannot be updated on a {kind}")
    if kind == L7POLICY:
        attrs = _check_policy(cp, op, name, body, listener, lb)
    else:
        attrs = _check_rule_body(cp, op, name, body, policy)
        if policy is not None and policy.provisioning_status not in MUTABLE_STATUSES:
            raise _ApiError(409, f"L7Policy {policy.name} is immutable and cannot be updated.")
    cp._require_lock(lb)  # LB not ACTIVE → 409
    if op == CREATE:
        if kind == L7POLICY:
            cp._insert(L7POLICY, name, {**attrs, LISTENER: listener.name}, OFFLINE, out)
            _renumber(cp, listener.name, name, attrs.get("position"), out)
        else:
            assert policy is not None
            cp._insert(L7RULE, name, {**attrs, L7POLICY: policy.name}, OFFLINE, out)
    else:
        obj = _row(cp, kind, name)
        if op == UPDATE:
            position = attrs.pop("position", None)
            obj.attrs.update(attrs)
            if kind == L7POLICY and position is not None:
                _renumber(cp, listener.name, name, int(position), out)
        cp._set(obj, PROVISIONING_STATUS, PENDING_UPDATE if op == UPDATE else PENDING_DELETE, out)
    if kind == L7RULE and policy is not None:
        cp._set(policy, PROVISIONING_STATUS, PENDING_UPDATE, out)
    cp._set(listener, PROVISIONING_STATUS, PENDING_UPDATE, out)
    cp._set(lb, PROVISIONING_STATUS, PENDING_UPDATE, out)
    job = cp._new_job(op, kind, name, lb.name, body)
    return ApiResponse(SUCCESS_CODES[op], "", job, tuple(out))


def _row(cp: ControlPlane, kind: str, name: str) -> Obj:
    obj = cp.get(kind, name)
    if obj is None:
        raise _not_found(kind, name)
    return obj


def _not_found_l7(kind: str, name: str) -> _ApiError:
    return _ApiError(404, f"{RESOURCE[kind]} {name} not found.")


def _parents(cp: ControlPlane, kind: str, body: Mapping[str, Any]) -> tuple[Obj | None, Obj, Obj]:
    """(policy, listener, LB) a new row hangs from."""
    policy = None
    if kind == L7RULE:
        pname = body.get(L7POLICY)
        policy = cp.get(L7POLICY, str(pname)) if pname is not None else None
        if policy is None:
            raise _not_found_l7(L7POLICY, str(pname))
        lname = str(policy.attrs[LISTENER])
    else:
        lname = str(body.get(LISTENER))
    listener = cp.get(LISTENER, lname)
    if listener is None:
        raise _not_found(LISTENER, lname)
    return policy, listener, _row(cp, LOADBALANCER, str(listener.attrs[LOADBALANCER]))


def _check_policy(
    cp: ControlPlane, op: str, name: str, body: Mapping[str, Any], listener: Obj, lb: Obj
) -> dict[str, Any]:
    if op == DELETE:
        return {}
    unknown = sorted(set(body) - _POLICY_FIELDS - {LISTENER})
    if "rules" in unknown:
        raise _ApiError(400, "lbsim: create the policy's rules with their own l7rule calls")
    if unknown:
        raise _ApiError(400, f"Invalid input: unknown field(s) {', '.join(unknown)} for an L7 policy")
    protocol = str(listener.attrs.get("protocol"))
    if protocol == "PROMETHEUS":
        raise _no_children(protocol)
    if protocol not in L7_LISTENER_PROTOCOLS:
        raise _ApiError(
            501,
            "Provider 'amphora' does not support a requested option: "
            f"{protocol} protocol listeners do not support L7 policies",
        )
    fields = {k: v for k, v in body.items() if k != LISTENER}
    position = fields.get("position")
    if position is not None and not (isinstance(position, int) and 1 <= position <= MAX_POSITION):
        raise _ApiError(400, f"Invalid input for field/attribute position. Value: '{position}'.")
    try:
        clean = sanitize_policy(fields, create=op == CREATE)
    except L7Error as err:
        raise _ApiError(400, str(err)) from None
    if op == UPDATE:
        current = _row(cp, L7POLICY, name).attrs
        # the repository's update clears the fields the (new) action does not use
        action = clean.get("action", current.get("action"))
        clean.setdefault("action", action)
        for fld in ("redirect_pool", "redirect_url", "redirect_prefix", "redirect_http_code"):
            clean.setdefault(fld, None if _unused(action, fld) else current.get(fld))
    pool_name = clean.get("redirect_pool")
    if pool_name:
        pool = cp.get(POOL, str(pool_name))
        if pool is None or pool.attrs.get(LOADBALANCER) != lb.name:
            raise _not_found(POOL, str(pool_name))
        allowed = L7_POOL_PROTOCOLS.get(protocol, ())
        if pool.attrs.get("protocol") not in allowed:
            raise _validation(
                f"The pool protocol '{pool.attrs.get('protocol')}' is invalid while the "
                f"listener protocol is '{protocol}'."
            )
    clean.setdefault("admin_state_up", True)
    if op == CREATE:
        clean.setdefault("position", MAX_POSITION)
    return {k: v for k, v in clean.items() if k not in ("name",)}


def _unused(action: Any, fld: str) -> bool:
    used = {
        "REJECT": (),
        "REDIRECT_TO_POOL": ("redirect_pool",),
        "REDIRECT_TO_URL": ("redirect_url", "redirect_http_code"),
        "REDIRECT_PREFIX": ("redirect_prefix", "redirect_http_code"),
    }
    return fld not in used.get(str(action), ())


def _check_rule_body(
    cp: ControlPlane, op: str, name: str, body: Mapping[str, Any], policy: Obj | None
) -> dict[str, Any]:
    if op == DELETE:
        return {}
    unknown = sorted(set(body) - _RULE_FIELDS - {L7POLICY})
    if unknown:
        raise _ApiError(400, f"Invalid input: unknown field(s) {', '.join(unknown)} for an L7 rule")
    fields = {k: v for k, v in body.items() if k != L7POLICY}
    merged = {**(_row(cp, L7RULE, name).attrs if op == UPDATE else {}), **fields}
    problem = check_rule(
        str(merged.get("type")), str(merged.get("compare_type")), merged.get("key"), merged.get("value")
    )
    if problem is not None:
        raise _ApiError(400, f"Error parsing L7Rule: {problem}")
    if op == CREATE and policy is not None and len(rules_of(cp, policy.name)) >= MAX_RULES_PER_POLICY:
        raise _ApiError(409, f"Too many rules on L7 policy {policy.name}")
    if op == CREATE:
        fields.setdefault("invert", False)
        fields.setdefault("admin_state_up", True)
    return fields


def _renumber(cp: ControlPlane, listener: str, moved: str, position: Any, out: list[Change]) -> None:
    names = [p.name for p in policies_of(cp, listener) if p.name != moved]
    order = order_positions(names, moved, None if position is None else int(position))
    for i, pname in enumerate(order, 1):
        row = _row(cp, L7POLICY, pname)
        row.attrs["position"] = i


def check_pool_deletable(cp: ControlPlane, pool: str) -> None:
    """409 when a policy redirects to the pool (``PoolInUseByL7Policy``)."""
    users = pool_users(cp, pool)
    if users:
        raise _ApiError(409, f"Pool {pool} is in use by L7 policy {users[0]}")


def remove_with_listener(cp: ControlPlane, listener: str, out: list[Change]) -> None:
    """A deleted listener takes its policies and their rules along (cascade)."""
    for p in policies_of(cp, listener):
        for r in rules_of(cp, p.name):
            cp._remove(r, out)
        cp._remove(p, out)


def mark_all(cp: ControlPlane, lb: str, status: str, out: list[Change]) -> None:
    """``MarkLBActiveInDB(mark_subobjects=True)`` and its revert: provisioning only."""
    for li in cp.listeners_of(lb):
        for p in policies_of(cp, li.name):
            cp._set(p, PROVISIONING_STATUS, status, out)
            for r in rules_of(cp, p.name):
                cp._set(r, PROVISIONING_STATUS, status, out)


# --------------------------------------------------------------------------------------
# Worker completion
# --------------------------------------------------------------------------------------


def _mark_active(cp: ControlPlane, obj: Obj, out: list[Change]) -> None:
    cp._set(obj, PROVISIONING_STATUS, ACTIVE, out)
    cp._set(obj, OPERATING_STATUS, ONLINE if obj.attrs.get("admin_state_up", True) else OFFLINE, out)


def complete(cp: ControlPlane, job: Job, lb: Obj, success: bool, out: list[Change]) -> None:
    """The l7policy/l7rule flow of ``job`` finished (§2.5 success marks, §2.6 revert)."""
    obj = _row(cp, job.object_type, job.name)
    policy = obj if obj.type == L7POLICY else _row(cp, L7POLICY, str(obj.attrs[L7POLICY]))
    listener = _row(cp, LISTENER, str(policy.attrs[LISTENER]))
    if not success:
        cp._set(obj, PROVISIONING_STATUS, ERROR, out)
        if policy is not obj:
            cp._set(policy, PROVISIONING_STATUS, ACTIVE, out)
    elif job.op == DELETE:
        if obj.type == L7POLICY:
            for r in rules_of(cp, obj.name):
                cp._remove(r, out)
        cp._remove(obj, out)
        if obj.type == L7POLICY:
            _renumber_after_delete(cp, listener.name)
        else:
            _mark_active(cp, policy, out)
    else:
        _mark_active(cp, obj, out)
        if policy is not obj:
            _mark_active(cp, policy, out)
    if success:  # MarkLBAndListenersActiveInDB
        cp._active_if_not_error(listener, out)
    else:
        cp._set(listener, PROVISIONING_STATUS, ACTIVE, out)
    cp._set(lb, PROVISIONING_STATUS, ACTIVE, out)


def _renumber_after_delete(cp: ControlPlane, listener: str) -> None:
    for i, p in enumerate(policies_of(cp, listener), 1):
        p.attrs["position"] = i
