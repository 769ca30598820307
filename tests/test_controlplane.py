"""Tests for lbsim.octavia.controlplane: Octavia's provisioning-status engine.

Every expected status below is written by hand from
reference/octavia-semantics.md §2 (tables 2.3-2.7), §4 and §5, plus the
upstream worker detail documented in the module docstring (pool, member, HM and
listener-create flows see every listener of the LB).  The hypothesis state
machine at the end checks the lock rule against an independent model and the
global invariants (no stray PENDING_*, one job per LB, reverts release parents,
deletes are final, the Change stream replays to the store).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from lbsim.octavia.controlplane import (
    ApiResponse,
    Change,
    ControlPlane,
    Job,
    ObjSpec,
)

LB, LST, POOL, MEM, HM = "loadbalancer", "listener", "pool", "member", "healthmonitor"
A, PC, PU, PD, ERR, DEL = (
    "ACTIVE",
    "PENDING_CREATE",
    "PENDING_UPDATE",
    "PENDING_DELETE",
    "ERROR",
    "DELETED",
)
PROV, OPER = "provisioning_status", "operating_status"

Key = tuple[str, str, str]  # (object_type, name, field)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------


def deployment() -> ControlPlane:
    """lb1: listeners http (HTTP:80) and tcp (TCP:8080) share pool web
    (members web-1, web-2, HM hm); listener other (TCP:9000) has no pool;
    pool spare (member spare-1, no HM) is attached to no listener."""
    cp = ControlPlane()
    cp.load_active(
        [
            ObjSpec(LB, "lb1"),
            ObjSpec(LST, "http", {"protocol": "HTTP", "protocol_port": 80, "default_pool": "web"}),
            ObjSpec(LST, "tcp", {"protocol": "TCP", "protocol_port": 8080, "default_pool": "web"}),
            ObjSpec(LST, "other", {"protocol": "TCP", "protocol_port": 9000}),
            ObjSpec(POOL, "web", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
            ObjSpec(POOL, "spare", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
            ObjSpec(HM, "hm", {"pool": "web", "type": "HTTP", "admin_state_up": True}),
            ObjSpec(MEM, "web-1", {"pool": "web", "address": "10.0.0.11", "protocol_port": 8080}),
            ObjSpec(MEM, "web-2", {"pool": "web", "address": "10.0.0.12", "protocol_port": 8080}),
            ObjSpec(MEM, "spare-1", {"pool": "spare", "address": "10.0.1.1", "protocol_port": 80}),
        ]
    )
    return cp


def snapshot(cp: ControlPlane) -> dict[Key, str]:
    """Every status field of every row."""
    out: dict[Key, str] = {}
    for o in cp.objects():
        out[(o.type, o.name, PROV)] = o.provisioning_status
        out[(o.type, o.name, OPER)] = o.operating_status
    return out


def diff(before: dict[Key, str], after: dict[Key, str]) -> dict[Key, str | None]:
    """Fields whose value changed; None when the row disappeared."""
    return {k: after.get(k) for k in before.keys() | after.keys() if before.get(k) != after.get(k)}


def changes_match(
    before: dict[Key, str], after: dict[Key, str], changes: tuple[Change, ...]
) -> None:
    """The reported Changes are exactly the field changes of the store:
    none unchanged, old values right, removals reported as DELETED."""
    replay: dict[Key, str | None] = dict(before)
    for c in changes:
        key = (c.object_type, c.name, c.field)
        assert c.old != c.new, c
        assert replay.get(key) == c.old, c
        replay[key] = c.new
        if c.field == PROV and c.new == DEL and c.object_type != LB:
            replay.pop(key)
            replay.pop((c.object_type, c.name, OPER), None)
    assert replay == after


def call(
    cp: ControlPlane,
    op: str,
    otype: str,
    name: str,
    body: dict[str, Any] | None = None,
    cascade: bool = False,
) -> tuple[ApiResponse, dict[Key, str | None]]:
    """Make a request; check its Changes; return it and the field diff."""
    before = snapshot(cp)
    resp = cp.request(op, otype, name, body, cascade=cascade)
    after = snapshot(cp)
    changes_match(before, after, resp.changes)
    if not resp.ok:
        assert resp.job is None and resp.changes == () and after == before
    return resp, diff(before, after)


def finish(cp: ControlPlane, job: Job | None, success: bool) -> dict[Key, str | None]:
    """Complete a job; check its Changes; return the field diff."""
    assert job is not None
    before = snapshot(cp)
    changes = cp.complete(job, success)
    after = snapshot(cp)
    changes_match(before, after, changes)
    return diff(before, after)


def prov(*pairs: tuple[str, str], status: str | None) -> dict[Key, str | None]:
    """Expected provisioning_status of several objects."""
    return {(t, n, PROV): status for t, n in pairs}


def gone(*pairs: tuple[str, str]) -> dict[Key, str | None]:
    """Expected hard-deleted rows (both fields disappear)."""
    out: dict[Key, str | None] = {}
    for t, n in pairs:
        out[(t, n, PROV)] = None
        out[(t, n, OPER)] = None
    return out


def make_error(cp: ControlPlane, otype: str, name: str) -> None:
    """Put an object into ERROR the Octavia way: a failed update flow."""
    resp = cp.request("update", otype, name, {})
    assert resp.ok, resp
    cp.complete(resp.job, False)  # type: ignore[arg-type]
    obj = cp.get(otype, name)
    assert obj is not None and obj.provisioning_status == ERR


LB1 = (LB, "lb1")
HTTP, TCP, OTHER = (LST, "http"), (LST, "tcp"), (LST, "other")
WEB, SPARE = (POOL, "web"), (POOL, "spare")
WEB1, WEB2, SPARE1 = (MEM, "web-1"), (MEM, "web-2"), (MEM, "spare-1")
HMK = (HM, "hm")

# --------------------------------------------------------------------------
# §2.3 lock table, §2.5 success marks, §2.6 reverts: one row per API call
# (request on the deployment above, then complete(success) / complete(failure);
#  each diff is relative to the state just before that step)
# --------------------------------------------------------------------------

ROWS: list[tuple[Any, ...]] = [
    # id, op, type, name, body, cascade, code, lock diff, success diff, revert diff
    (
        "lb-put", "update", LB, "lb1", {"admin_state_up": False}, False, 200,
        prov(LB1, status=PU), prov(LB1, status=A), prov(LB1, status=ERR),
    ),
    (
        "lb-failover", "failover", LB, "lb1", None, False, 202,
        prov(LB1, status=PU), prov(LB1, status=A), prov(LB1, status=ERR),
    ),
    (
        "lb-delete-cascade", "delete", LB, "lb1", None, True, 204,
        prov(LB1, status=PD),
        {**gone(HTTP, TCP, OTHER, WEB, SPARE, WEB1, WEB2, SPARE1, HMK), **prov(LB1, status=DEL)},
        prov(LB1, status=ERR),
    ),
    (
        "listener-post", "create", LST, "new", {"protocol": "HTTP", "protocol_port": 81},
        False, 201,
        {**prov((LST, "new"), status=PC), (LST, "new", OPER): "OFFLINE", **prov(LB1, status=PU)},
        prov((LST, "new"), LB1, status=A),
        # ListenersToErrorOnRevertTask gets every listener of the LB
        {**prov((LST, "new"), HTTP, TCP, OTHER, status=ERR), **prov(LB1, status=A)},
    ),
    (
        "listener-put", "update", LST, "http", {"connection_limit": 10}, False, 200,
        prov(HTTP, LB1, status=PU), prov(HTTP, LB1, status=A),
        {**prov(HTTP, status=ERR), **prov(LB1, status=A)},
    ),
    (
        "listener-delete", "delete", LST, "other", None, False, 204,
        {**prov(OTHER, status=PD), **prov(LB1, status=PU)},
        {**gone(OTHER), **prov(LB1, status=A)},
        {**prov(OTHER, status=ERR), **prov(LB1, status=A)},
    ),
    (
        "pool-post-lb", "create", POOL, "p2",
        {"loadbalancer": "lb1", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}, False, 201,
        {**prov((POOL, "p2"), status=PC), (POOL, "p2", OPER): "OFFLINE", **prov(LB1, status=PU)},
        prov((POOL, "p2"), LB1, status=A),
        {**prov((POOL, "p2"), status=ERR), **prov(LB1, status=A)},
    ),
    (
        "pool-post-listener", "create", POOL, "p2",
        {"listener": "other", "protocol": "HTTP", "lb_algorithm": "SOURCE_IP"}, False, 201,
        {**prov((POOL, "p2"), status=PC), (POOL, "p2", OPER): "OFFLINE",
         **prov(OTHER, LB1, status=PU)},
        prov((POOL, "p2"), OTHER, LB1, status=A),
        {**prov((POOL, "p2"), status=ERR), **prov(OTHER, LB1, status=A)},
    ),
    (
        "pool-put", "update", POOL, "web", {"lb_algorithm": "LEAST_CONNECTIONS"}, False, 200,
        prov(WEB, HTTP, TCP, LB1, status=PU), prov(WEB, HTTP, TCP, LB1, status=A),
        {**prov(WEB, status=ERR), **prov(HTTP, TCP, LB1, status=A)},
    ),
    (
        "pool-put-unattached", "update", POOL, "spare", {"admin_state_up": False}, False, 200,
        prov(SPARE, LB1, status=PU), prov(SPARE, LB1, status=A),
        {**prov(SPARE, status=ERR), **prov(LB1, status=A)},
    ),
    (
        "pool-delete", "delete", POOL, "web", None, False, 204,
        {**prov(WEB, status=PD), **prov(HTTP, TCP, LB1, status=PU)},
        {**gone(WEB, WEB1, WEB2, HMK), **prov(HTTP, TCP, LB1, status=A)},
        {**prov(WEB, status=ERR), **prov(HTTP, TCP, LB1, status=A)},
    ),
    (
        "member-post-hm", "create", MEM, "web-3",
        {"pool": "web", "address": "10.0.0.13", "protocol_port": 8080}, False, 201,
        {**prov((MEM, "web-3"), status=PC), (MEM, "web-3", OPER): "OFFLINE",
         **prov(WEB, HTTP, TCP, LB1, status=PU)},
        prov((MEM, "web-3"), WEB, HTTP, TCP, LB1, status=A),
        {**prov((MEM, "web-3"), status=ERR), **prov(WEB, HTTP, TCP, LB1, status=A)},
    ),
    (
        "member-post-no-hm", "create", MEM, "spare-2",
        {"pool": "spare", "address": "10.0.1.2", "protocol_port": 80}, False, 201,
        {**prov((MEM, "spare-2"), status=PC), (MEM, "spare-2", OPER): "NO_MONITOR",
         **prov(SPARE, LB1, status=PU)},
        prov((MEM, "spare-2"), SPARE, LB1, status=A),
        {**prov((MEM, "spare-2"), status=ERR), **prov(SPARE, LB1, status=A)},
    ),
    (
        "member-put", "update", MEM, "web-1", {"weight": 0}, False, 200,
        prov(WEB1, WEB, HTTP, TCP, LB1, status=PU), prov(WEB1, WEB, HTTP, TCP, LB1, status=A),
        {**prov(WEB1, status=ERR), **prov(WEB, HTTP, TCP, LB1, status=A)},
    ),
    (
        "member-delete", "delete", MEM, "web-1", None, False, 204,
        {**prov(WEB1, status=PD), **prov(WEB, HTTP, TCP, LB1, status=PU)},
        {**gone(WEB1), **prov(WEB, HTTP, TCP, LB1, status=A)},
        {**prov(WEB1, status=ERR), **prov(WEB, HTTP, TCP, LB1, status=A)},
    ),
    (
        "hm-post", "create", HM, "hm2", {"pool": "spare", "type": "TCP"}, False, 201,
        {**prov((HM, "hm2"), status=PC), (HM, "hm2", OPER): "OFFLINE",
         **prov(SPARE, LB1, status=PU)},
        # MarkHealthMonitorActiveInDB: enabled -> ONLINE; members untouched
        {**prov((HM, "hm2"), SPARE, LB1, status=A), (HM, "hm2", OPER): "ONLINE"},
        {**prov((HM, "hm2"), status=ERR), **prov(SPARE, LB1, status=A)},
    ),
    (
        "hm-put-disable", "update", HM, "hm", {"admin_state_up": False}, False, 200,
        prov(HMK, WEB, HTTP, TCP, LB1, status=PU),
        {**prov(HMK, WEB, HTTP, TCP, LB1, status=A), (HM, "hm", OPER): "OFFLINE"},
        {**prov(HMK, status=ERR), **prov(WEB, HTTP, TCP, LB1, status=A)},
    ),
    (
        "hm-delete", "delete", HM, "hm", None, False, 204,
        {**prov(HMK, status=PD), **prov(WEB, HTTP, TCP, LB1, status=PU)},
        {**gone(HMK), **prov(WEB, HTTP, TCP, LB1, status=A),
         (MEM, "web-1", OPER): "NO_MONITOR", (MEM, "web-2", OPER): "NO_MONITOR"},
        {**prov(HMK, status=ERR), **prov(WEB, HTTP, TCP, LB1, status=A)},
    ),
]  # fmt: skip

ROW_IDS = [r[0] for r in ROWS]


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_lock_table(row: tuple[Any, ...]) -> None:
    """§2.3: what each call sets in the API transaction, and its code."""
    _, op, otype, name, body, cascade, code, lock, _, _ = row
    cp = deployment()
    resp, d = call(cp, op, otype, name, body, cascade)
    assert resp.code == code, resp
    assert d == lock
    assert resp.job is not None and cp.outstanding_jobs() == (resp.job,)
    assert resp.job.loadbalancer == "lb1"


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_worker_success_marks(row: tuple[Any, ...]) -> None:
    """§2.5: the success path releases the lock and marks objects ACTIVE;
    deleted children are hard-deleted."""
    _, op, otype, name, body, cascade, _, _, success, _ = row
    cp = deployment()
    resp, _ = call(cp, op, otype, name, body, cascade)
    assert finish(cp, resp.job, True) == success
    assert cp.outstanding_jobs() == ()


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_worker_revert(row: tuple[Any, ...]) -> None:
    """§2.6: a child failure leaves the child ERROR and its parents ACTIVE;
    an LB flow failure leaves the LB ERROR."""
    _, op, otype, name, body, cascade, _, _, _, revert = row
    cp = deployment()
    resp, _ = call(cp, op, otype, name, body, cascade)
    assert finish(cp, resp.job, False) == revert
    assert cp.outstanding_jobs() == ()


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_lb_pending_blocks_everything(row: tuple[Any, ...]) -> None:
    """While any job holds the LB (PENDING_*), every call is refused with 409."""
    _, op, otype, name, body, cascade, _, _, _, _ = row
    cp = deployment()
    holder = cp.request("update", LB, "lb1", {})
    assert holder.ok
    resp, _ = call(cp, op, otype, name, body, cascade)
    assert resp.code == 409


@pytest.mark.parametrize("row", ROWS, ids=ROW_IDS)
def test_lb_error_blocks_all_but_delete_and_failover(row: tuple[Any, ...]) -> None:
    """An LB in ERROR accepts only DELETE (DELETABLE_STATUSES) and failover."""
    _, op, otype, name, body, cascade, code, _, _, _ = row
    cp = deployment()
    make_error(cp, LB, "lb1")
    resp, _ = call(cp, op, otype, name, body, cascade)
    allowed = otype == LB and op in ("delete", "failover")
    assert resp.code == (code if allowed else 409)


# --------------------------------------------------------------------------
# §2.3 pre-checks in detail
# --------------------------------------------------------------------------


def test_lock_messages() -> None:
    """Octavia's 409 texts: ImmutableObject for child calls, LBPendingStateError
    for LB calls."""
    cp = deployment()
    assert cp.request("update", LB, "lb1", {}).ok
    assert cp.request("update", MEM, "web-1", {}).message == (
        "Load Balancer lb1 is immutable and cannot be updated."
    )
    assert cp.request("failover", LB, "lb1").message == (
        "Invalid state PENDING_UPDATE of loadbalancer resource lb1"
    )


@pytest.mark.parametrize(
    ("op", "otype", "name", "body"),
    [
        ("create", MEM, "web-3", {"pool": "web", "address": "10.0.0.13", "protocol_port": 80}),
        ("update", MEM, "web-1", {"weight": 5}),
        ("delete", MEM, "web-1", None),
        ("create", HM, "hm2", {"pool": "web", "type": "TCP"}),
        ("update", HM, "hm", {"delay": 3}),
        ("delete", HM, "hm", None),
    ],
)
def test_pool_not_active_blocks_member_and_hm(
    op: str, otype: str, name: str, body: dict[str, Any] | None
) -> None:
    """Member and HM calls need the pool ACTIVE (checked before the LB)."""
    cp = deployment()
    make_error(cp, POOL, "web")
    resp, _ = call(cp, op, otype, name, body)
    assert resp.code == 409
    assert resp.message == "Pool web is immutable and cannot be updated."


def test_pool_error_does_not_block_pool_or_listener_calls() -> None:
    """Pool PUT does not check the pool's own status; its success clears ERROR,
    after which member calls work again."""
    cp = deployment()
    make_error(cp, POOL, "web")
    resp, d = call(cp, "update", POOL, "web", {"admin_state_up": True})
    assert resp.code == 200 and d[(POOL, "web", PROV)] == PU
    finish(cp, resp.job, True)
    assert call(cp, "update", MEM, "web-1", {"weight": 2})[0].code == 200


def test_child_error_does_not_block_its_own_update_or_delete() -> None:
    """Members, HMs and listeners in ERROR can be updated or deleted (only the
    pool and the LB are checked)."""
    for otype, name in (WEB1, HMK, HTTP):
        cp = deployment()
        make_error(cp, otype, name)
        assert call(cp, "update", otype, name, {})[0].code == 200
        cp2 = deployment()
        make_error(cp2, otype, name)
        assert call(cp2, "delete", otype, name)[0].code == 204


def test_lb_delete_with_children_needs_cascade() -> None:
    """400 'has children' even when the LB is locked; without children, an LB
    in ERROR can be deleted."""
    cp = deployment()
    resp, _ = call(cp, "delete", LB, "lb1")
    assert resp.code == 400
    assert resp.message == "Validation failure: Cannot delete Load Balancer lb1 - it has children"
    assert cp.request("update", LB, "lb1", {}).ok
    assert call(cp, "delete", LB, "lb1")[0].code == 400
    bare = ControlPlane()
    bare.load_active([ObjSpec(LB, "lb9")])
    make_error(bare, LB, "lb9")
    resp, d = call(bare, "delete", LB, "lb9")
    assert resp.code == 204 and d == {(LB, "lb9", PROV): PD}


def test_lb_create_request() -> None:
    """LB POST: PENDING_CREATE, operating OFFLINE; a second one with the same
    id is refused."""
    cp = ControlPlane()
    resp, d = call(cp, "create", LB, "lb2", {"admin_state_up": True})
    assert resp.code == 201
    assert d == {(LB, "lb2", PROV): PC, (LB, "lb2", OPER): "OFFLINE"}
    assert call(cp, "create", LB, "lb2")[0].code == 409
    assert finish(cp, resp.job, True) == {(LB, "lb2", PROV): A}


# --------------------------------------------------------------------------
# duplicates, provider and protocol rules (§2.3 "Other codes", §4)
# --------------------------------------------------------------------------


def test_duplicate_member() -> None:
    """ip+port must be unique within the pool (409); another port or another
    pool is fine."""
    cp = deployment()
    resp, _ = call(
        cp, "create", MEM, "dup", {"pool": "web", "address": "10.0.0.11", "protocol_port": 8080}
    )
    assert resp.code == 409
    assert resp.message == (
        "Another member on this pool is already using ip 10.0.0.11 on protocol_port 8080"
    )
    body = {"pool": "web", "address": "10.0.0.11", "protocol_port": 8081}
    assert call(cp, "create", MEM, "ok", body)[0].code == 201
    cp = deployment()
    body = {"pool": "spare", "address": "10.0.0.11", "protocol_port": 8080}
    assert call(cp, "create", MEM, "ok", body)[0].code == 201


@pytest.mark.parametrize(
    ("protocol", "port", "code"),
    [("HTTP", 80, 409), ("TCP", 80, 409), ("TERMINATED_HTTPS", 8080, 409), ("UDP", 80, 201),
     ("SCTP", 9000, 201), ("HTTP", 81, 201)],
)  # fmt: skip
def test_duplicate_listener_l4(protocol: str, port: int, code: int) -> None:
    """Listeners clash on the same L4 protocol and port (TCP:80 vs HTTP:80)."""
    cp = deployment()
    resp, _ = call(cp, "create", LST, "l2", {"protocol": protocol, "protocol_port": port})
    assert resp.code == code


def test_duplicate_default_pool_and_hm() -> None:
    """A listener has one default pool, a pool has one HM (409)."""
    cp = deployment()
    body = {"listener": "http", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    resp, _ = call(cp, "create", POOL, "p2", body)
    assert (resp.code, resp.message) == (409, "This listener already has a default pool")
    resp, _ = call(cp, "create", HM, "hm2", {"pool": "web", "type": "TCP"})
    assert (resp.code, resp.message) == (409, "This pool already has a health monitor")


def test_name_in_use_is_a_duplicate_id() -> None:
    """Names stand for Octavia ids: reusing one is 409."""
    cp = deployment()
    body = {"pool": "spare", "address": "10.9.9.9", "protocol_port": 1}
    assert call(cp, "create", MEM, "web-1", body)[0].code == 409


def test_source_ip_port_is_501_on_amphora() -> None:
    """The amphora provider rejects SOURCE_IP_PORT on create and update."""
    cp = deployment()
    body = {"loadbalancer": "lb1", "protocol": "HTTP", "lb_algorithm": "SOURCE_IP_PORT"}
    resp, _ = call(cp, "create", POOL, "p2", body)
    assert resp.code == 501
    assert "does not support SOURCE_IP_PORT" in resp.message
    assert call(cp, "update", POOL, "web", {"lb_algorithm": "SOURCE_IP_PORT"})[0].code == 501


def test_prometheus_listener_takes_no_pool() -> None:
    """PROMETHEUS listeners cannot have a default pool (400)."""
    cp = deployment()
    body = {"protocol": "PROMETHEUS", "protocol_port": 9100, "default_pool": "spare"}
    assert call(cp, "create", LST, "prom", body)[0].code == 400
    resp, _ = call(cp, "create", LST, "prom", {"protocol": "PROMETHEUS", "protocol_port": 9100})
    finish(cp, resp.job, True)
    body = {"listener": "prom", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    resp, _ = call(cp, "create", POOL, "p2", body)
    assert resp.code == 400
    assert resp.message == "Protocol PROMETHEUS listeners cannot have child objects."
    assert call(cp, "update", LST, "prom", {"default_pool": "spare"})[0].code == 400


def test_listener_pool_protocol_compatibility() -> None:
    """A UDP listener cannot use an HTTP pool (400)."""
    cp = deployment()
    body = {"protocol": "UDP", "protocol_port": 53, "default_pool": "spare"}
    assert call(cp, "create", LST, "dns", body)[0].code == 400
    assert call(cp, "update", LST, "other", {"default_pool": "spare"})[0].code == 200


@pytest.mark.parametrize(
    ("op", "otype", "name", "body"),
    [
        ("update", LB, "nope", {}),
        ("failover", LB, "nope", None),
        ("delete", LB, "nope", None),
        ("update", LST, "nope", {}),
        ("delete", POOL, "nope", None),
        ("update", MEM, "nope", {}),
        ("delete", HM, "nope", None),
        ("create", MEM, "m", {"pool": "nope", "address": "1.1.1.1", "protocol_port": 1}),
        ("create", HM, "h", {"pool": "nope", "type": "TCP"}),
        ("create", POOL, "p", {"listener": "nope", "protocol": "HTTP"}),
        ("create", LST, "l", {"loadbalancer": "nope", "protocol": "TCP", "protocol_port": 1}),
        ("create", LST, "l", {"protocol": "TCP", "protocol_port": 1, "default_pool": "nope"}),
    ],
)
def test_unknown_objects_are_404(
    op: str, otype: str, name: str, body: dict[str, Any] | None
) -> None:
    """Unknown objects and parents are 404 with no state change."""
    cp = deployment()
    assert call(cp, op, otype, name, body)[0].code == 404


def test_immutable_fields_rejected_on_update() -> None:
    """A PUT cannot move a member to another address or pool (400)."""
    cp = deployment()
    assert call(cp, "update", MEM, "web-1", {"address": "10.0.0.99"})[0].code == 400
    assert call(cp, "update", HM, "hm", {"pool": "spare"})[0].code == 400


# --------------------------------------------------------------------------
# §2.5 details
# --------------------------------------------------------------------------


def test_listener_in_error_stays_error_on_unrelated_success() -> None:
    """MarkLBAndListenersActiveInDB skips ERROR listeners it did not lock."""
    cp = deployment()
    make_error(cp, LST, "other")
    resp, _ = call(cp, "update", MEM, "web-1", {"weight": 3})
    d = finish(cp, resp.job, True)
    assert (LST, "other", PROV) not in d
    assert cp.get(LST, "other").provisioning_status == ERR  # type: ignore[union-attr]


def test_locked_listener_in_error_becomes_active_on_success() -> None:
    """A listener in ERROR that the call locked (PENDING_UPDATE) ends ACTIVE."""
    cp = deployment()
    make_error(cp, LST, "http")
    resp, d = call(cp, "update", MEM, "web-1", {"weight": 3})
    assert d[(LST, "http", PROV)] == PU
    assert finish(cp, resp.job, True)[(LST, "http", PROV)] == A


def test_member_revert_sets_every_lb_listener_active() -> None:
    """Upstream revert marks every listener of the LB ACTIVE, ERROR ones too."""
    cp = deployment()
    make_error(cp, LST, "other")
    resp, _ = call(cp, "update", MEM, "web-1", {"weight": 3})
    assert finish(cp, resp.job, False)[(LST, "other", PROV)] == A


def test_deleted_children_are_gone() -> None:
    """Hard-deleted rows: later requests get 404."""
    cp = deployment()
    resp, _ = call(cp, "delete", MEM, "web-1")
    finish(cp, resp.job, True)
    assert cp.get(MEM, "web-1") is None
    resp, _ = call(cp, "update", MEM, "web-1", {})
    assert (resp.code, resp.message) == (404, "Member web-1 not found.")


def test_pool_delete_detaches_listeners() -> None:
    """Listeners that used a deleted pool lose their default pool."""
    cp = deployment()
    resp, _ = call(cp, "delete", POOL, "web")
    finish(cp, resp.job, True)
    assert cp.get(LST, "http").attrs["default_pool"] is None  # type: ignore[union-attr]
    assert cp.pool_listeners("web") == []


def test_deleted_lb_row_is_kept() -> None:
    """The LB row stays DELETED; the API answers 404 for it, and a child
    create on it fails the lock (409), as Octavia's lookups see deleted rows."""
    cp = deployment()
    resp, _ = call(cp, "delete", LB, "lb1", cascade=True)
    finish(cp, resp.job, True)
    assert cp.get(LB, "lb1").provisioning_status == DEL  # type: ignore[union-attr]
    assert [o.type for o in cp.objects()] == [LB]
    for op in ("update", "delete", "failover"):
        assert call(cp, op, LB, "lb1", {} if op == "update" else None)[0].code == 404
    body = {"loadbalancer": "lb1", "protocol": "TCP", "protocol_port": 1}
    assert call(cp, "create", LST, "late", body)[0].code == 409


def test_update_body_is_written_at_request_time() -> None:
    """The API writes the new values in its own transaction (the DB keeps
    them even if the worker later fails); the job carries them."""
    cp = deployment()
    resp, _ = call(cp, "update", MEM, "web-1", {"weight": 7})
    assert cp.get(MEM, "web-1").attrs["weight"] == 7  # type: ignore[union-attr]
    assert resp.job is not None and dict(resp.job.body) == {"weight": 7}
    finish(cp, resp.job, False)
    assert cp.get(MEM, "web-1").attrs["weight"] == 7  # type: ignore[union-attr]


def test_change_order_object_first_then_parents() -> None:
    """Changes list the object, then its pool, listeners and LB; nothing
    unchanged is reported; a created row starts from None."""
    cp = deployment()
    resp = cp.request(
        "create", MEM, "web-3", {"pool": "web", "address": "10.0.0.13", "protocol_port": 1}
    )
    assert [(c.name, c.field, c.old, c.new) for c in resp.changes] == [
        ("web-3", PROV, None, PC),
        ("web-3", OPER, None, "OFFLINE"),
        ("web", PROV, A, PU),
        ("http", PROV, A, PU),
        ("tcp", PROV, A, PU),
        ("lb1", PROV, A, PU),
    ]
    assert resp.job is not None
    done = cp.complete(resp.job, True)
    assert [c.name for c in done] == ["web-3", "web", "http", "tcp", "lb1"]


def test_complete_twice_is_an_error() -> None:
    """A job completes once."""
    cp = deployment()
    resp = cp.request("update", LB, "lb1", {})
    assert resp.job is not None
    cp.complete(resp.job, True)
    with pytest.raises(ValueError):
        cp.complete(resp.job, True)


# --------------------------------------------------------------------------
# §2.4 / §2.5 / §2.6: fully-populated LB create
# --------------------------------------------------------------------------


def tree_specs() -> list[ObjSpec]:
    return [
        ObjSpec(LB, "lb1"),
        ObjSpec(LST, "http", {"protocol": "HTTP", "protocol_port": 80, "default_pool": "web"}),
        ObjSpec(POOL, "web", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
        ObjSpec(POOL, "side", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
        ObjSpec(HM, "hm", {"pool": "web", "type": "HTTP"}),
        ObjSpec(HM, "side-hm", {"pool": "side", "type": "HTTP"}),
        ObjSpec(MEM, "web-1", {"pool": "web", "address": "10.0.0.11", "protocol_port": 80}),
        ObjSpec(POOL, "bare", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
        ObjSpec(MEM, "bare-1", {"pool": "bare", "address": "10.0.0.21", "protocol_port": 80}),
    ]


def test_tree_create_initial_statuses() -> None:
    """§2.4: all PENDING_CREATE; operating OFFLINE, members NO_MONITOR unless
    their pool has an HM."""
    cp = ControlPlane()
    resp = cp.create_loadbalancer_tree(tree_specs())
    assert resp.code == 201 and resp.job is not None
    snap = snapshot(cp)
    assert {k: v for k, v in snap.items() if k[2] == PROV} == {
        (s.type, s.name, PROV): PC for s in tree_specs()
    }
    ops = {(k[0], k[1]): v for k, v in snap.items() if k[2] == OPER}
    assert ops.pop((MEM, "bare-1")) == "NO_MONITOR"
    assert set(ops.values()) == {"OFFLINE"}
    changes_match({}, snap, resp.changes)


def test_tree_create_success_marks_everything_active() -> None:
    """mark_subobjects: every row ACTIVE; enabled HMs of listeners' default
    pools go ONLINE (MarkHealthMonitorsOnlineInDB), the others stay OFFLINE."""
    cp = ControlPlane()
    resp = cp.create_loadbalancer_tree(tree_specs())
    d = finish(cp, resp.job, True)
    assert d == {
        **{(s.type, s.name, PROV): A for s in tree_specs()},
        (HM, "hm", OPER): "ONLINE",
    }


def test_tree_create_failure_marks_everything_error() -> None:
    """Revert of MarkLBActiveInDB(mark_subobjects=True): everything ERROR."""
    cp = ControlPlane()
    resp = cp.create_loadbalancer_tree(tree_specs())
    d = finish(cp, resp.job, False)
    assert d == {(s.type, s.name, PROV): ERR for s in tree_specs()}


def test_tree_create_octavia_rules() -> None:
    """Duplicates and SOURCE_IP_PORT inside a tree are refused like single calls."""
    dup = [*tree_specs(), ObjSpec(LST, "again", {"protocol": "TCP", "protocol_port": 80})]
    assert ControlPlane().create_loadbalancer_tree(dup).code == 409
    bad = [
        *tree_specs(),
        ObjSpec(POOL, "x", {"protocol": "HTTP", "lb_algorithm": "SOURCE_IP_PORT"}),
    ]
    cp = ControlPlane()
    assert cp.create_loadbalancer_tree(bad).code == 501
    assert list(cp.objects()) == []
    with pytest.raises(ValueError):
        ControlPlane().create_loadbalancer_tree([*tree_specs(), ObjSpec(MEM, "m", {"pool": "?"})])


# --------------------------------------------------------------------------
# §2.7 cascade, §5 failover, §1.8 health-manager lock
# --------------------------------------------------------------------------


def test_cascade_delete_order() -> None:
    """Cascade success: pools (with members and HM), then listeners are hard
    deleted, then the LB becomes DELETED, last."""
    cp = deployment()
    resp = cp.request("delete", LB, "lb1", cascade=True)
    assert resp.job is not None and resp.job.cascade
    done = cp.complete(resp.job, True)
    assert all(c.new == DEL and c.field == PROV for c in done)
    kinds = [c.object_type for c in done]
    assert kinds[-1] == LB
    assert max(i for i, k in enumerate(kinds) if k in (POOL, MEM, HM)) < kinds.index(LST)


def test_cascade_delete_failure_keeps_children() -> None:
    cp = deployment()
    resp = cp.request("delete", LB, "lb1", cascade=True)
    assert finish(cp, resp.job, False) == {(LB, "lb1", PROV): ERR}
    assert len(list(cp.objects())) == 10


@pytest.mark.parametrize("via", ["api", "health_manager"])
def test_failover_success_clears_child_errors(via: str) -> None:
    """Failover ends with MarkLBActiveInDB(mark_subobjects=True): children in
    ERROR come back ACTIVE; it works from an LB in ERROR too."""
    cp = deployment()
    make_error(cp, POOL, "web")
    make_error(cp, MEM, "spare-1")
    make_error(cp, LB, "lb1")
    if via == "api":
        resp, d = call(cp, "failover", LB, "lb1")
        job = resp.job
    else:
        job, changes = cp.lock_for_failover("lb1")
        d = {(c.object_type, c.name, c.field): c.new for c in changes}
    assert job is not None and d == {(LB, "lb1", PROV): PU}
    assert finish(cp, job, True) == prov(LB1, WEB, SPARE1, status=A)


def test_failover_failure_sets_lb_error_only() -> None:
    cp = deployment()
    make_error(cp, MEM, "web-1")
    job, _ = cp.lock_for_failover("lb1")
    assert finish(cp, job, False) == {(LB, "lb1", PROV): ERR}


def test_health_manager_lock_needs_active_or_error() -> None:
    """set_status_for_failover: PENDING_* LBs are skipped (no job, no change);
    a locked LB refuses API calls."""
    cp = deployment()
    held = cp.request("update", LB, "lb1", {})
    assert cp.lock_for_failover("lb1") == (None, ())
    assert cp.lock_for_failover("nope") == (None, ())
    cp.complete(held.job, True)  # type: ignore[arg-type]
    job, changes = cp.lock_for_failover("lb1")
    assert job is not None and job.source == "health_manager"
    assert changes == (Change(LB, "lb1", PROV, A, PU),)
    assert cp.request("update", MEM, "web-1", {}).code == 409
    assert cp.lock_for_failover("lb1") == (None, ())


def test_set_operating_status_reports_only_changes() -> None:
    cp = deployment()
    assert cp.set_operating_status(MEM, "web-1", "ONLINE") == ()
    assert cp.set_operating_status(MEM, "web-1", "ERROR") == (
        Change(MEM, "web-1", OPER, "ONLINE", "ERROR"),
    )


# --------------------------------------------------------------------------
# Hypothesis state machine
# --------------------------------------------------------------------------

LBS = ("lb1", "lb2")
LISTENERS = ("l1", "l2", "l3")
POOLS = ("p1", "p2", "p3")
MEMBERS = ("m1", "m2", "m3")
HMS = ("h1", "h2")
NAMES = {LB: LBS, LST: LISTENERS, POOL: POOLS, MEM: MEMBERS, HM: HMS}
PENDING = {PC, PU, PD}


class ControlPlaneMachine(RuleBasedStateMachine):
    """Random API calls and job completions against an independent model of
    Octavia's lock rule."""

    def __init__(self) -> None:
        super().__init__()
        self.cp = ControlPlane()
        self.shadow: dict[Key, str] = {}
        self.locks: dict[int, set[tuple[str, str]]] = {}  # job id -> rows it set PENDING

    @initialize()
    def start(self) -> None:
        self.cp.load_active(
            [
                ObjSpec(LB, "lb1"),
                ObjSpec(LST, "l1", {"protocol": "HTTP", "protocol_port": 80, "default_pool": "p1"}),
                ObjSpec(POOL, "p1", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
                ObjSpec(MEM, "m1", {"pool": "p1", "address": "a", "protocol_port": 80}),
            ]
        )
        self.cp.load_active([ObjSpec(LB, "lb2")])
        self.shadow = snapshot(self.cp)

    # ----------------------------------------------------------- the model

    def status(self, otype: str, name: Any) -> str | None:
        obj = self.cp.get(otype, str(name))
        return None if obj is None else obj.provisioning_status

    def lb_of(self, otype: str, name: str) -> str:
        obj = self.cp.get(otype, name)
        assert obj is not None
        return self.cp.loadbalancer_of(obj)

    def expected(self, op: str, otype: str, name: str, body: dict[str, Any], cascade: bool) -> int:
        """Octavia's answer, from §2.1-2.3 and §4 only."""
        st_ = self.status
        if otype == LB:
            s = st_(LB, name)
            if op == "create":
                return 201 if s in (None, DEL) else 409
            if s in (None, DEL):
                return 404
            kids = self.cp.listeners_of(name) or self.cp.pools_of(name)
            if op == "delete" and kids and not cascade:
                return 400
            ok = {A, ERR} if op in ("delete", "failover") else {A}
            return {"update": 200, "delete": 204, "failover": 202}[op] if s in ok else 409
        taken = self.cp.get(otype, name) is not None
        if op != "create":
            if not taken:
                return 404
            code = 200 if op == "update" else 204
            lb = self.lb_of(otype, name)
            if otype in (MEM, HM):
                pool = self.cp.get(otype, name).attrs["pool"]  # type: ignore[union-attr]
                if st_(POOL, pool) != A:
                    return 409
            return code if st_(LB, lb) == A else 409
        if otype == LST:
            dp = body.get("default_pool")
            if dp is not None:
                p = self.cp.get(POOL, dp)
                if p is None or p.attrs["loadbalancer"] != body["loadbalancer"]:
                    return 404
                if body["protocol"] == "UDP":
                    return 400
            if st_(LB, body["loadbalancer"]) != A:
                return 409
            l4 = "UDP" if body["protocol"] == "UDP" else "TCP"
            for other in self.cp.listeners_of(body["loadbalancer"]):
                ol4 = "UDP" if other.attrs["protocol"] == "UDP" else "TCP"
                if other.attrs["protocol_port"] == body["protocol_port"] and ol4 == l4:
                    return 409
        elif otype == POOL:
            if "listener" in body:
                lst = self.cp.get(LST, body["listener"])
                if lst is None:
                    return 404
                if lst.attrs["protocol"] == "UDP":
                    return 400
                if lst.attrs["default_pool"] is not None:
                    return 409
                lb = lst.attrs["loadbalancer"]
            else:
                lb = body["loadbalancer"]
            if st_(LB, lb) != A:
                return 409
            if body["lb_algorithm"] == "SOURCE_IP_PORT":
                return 501
        else:
            pool = self.cp.get(POOL, body["pool"])
            if pool is None:
                return 404
            if pool.provisioning_status != A or st_(LB, pool.attrs["loadbalancer"]) != A:
                return 409
            for m in self.cp.members_of(pool.name) if otype == MEM else []:
                if (m.attrs["address"], m.attrs["protocol_port"]) == (body["address"], 80):
                    return 409
            if otype == HM and self.cp.healthmonitor_of(pool.name) is not None:
                return 409
        return 409 if taken else 201

    def expected_locks(self, op: str, otype: str, name: str, body: dict[str, Any]) -> set[Any]:
        """Rows a successful call sets PENDING_* (§2.3)."""
        if otype == LB:
            return {(LB, name)}
        if op == "create":
            if otype == LST:
                return {(LST, name), (LB, body["loadbalancer"])}
            if otype == POOL:
                if "listener" in body:
                    lst = self.cp.get(LST, body["listener"])
                    assert lst is not None
                    return {(POOL, name), (LST, lst.name), (LB, lst.attrs["loadbalancer"])}
                return {(POOL, name), (LB, body["loadbalancer"])}
            pool_name = body["pool"]
        else:
            obj = self.cp.get(otype, name)
            assert obj is not None
            if otype == LST:
                return {(LST, name), (LB, obj.attrs["loadbalancer"])}
            pool_name = name if otype == POOL else obj.attrs["pool"]
        pool = self.cp.get(POOL, pool_name)
        assert pool is not None
        users = {(LST, lst.name) for lst in self.cp.pool_listeners(pool_name)}
        return {(otype, name), (POOL, pool_name), (LB, pool.attrs["loadbalancer"])} | users

    # --------------------------------------------------------------- steps

    def apply(self, changes: tuple[Change, ...]) -> None:
        for c in changes:
            assert c.old != c.new
            key = (c.object_type, c.name, c.field)
            assert self.shadow.get(key) == c.old
            if c.field == PROV and c.new == DEL and c.object_type != LB:
                del self.shadow[key]
                del self.shadow[(c.object_type, c.name, OPER)]
            else:
                self.shadow[key] = c.new

    def do(
        self, op: str, otype: str, name: str, body: dict[str, Any], cascade: bool = False
    ) -> None:
        want = self.expected(op, otype, name, body, cascade)
        locks = self.expected_locks(op, otype, name, body) if want < 300 else set()
        lb_busy = {j.loadbalancer for j in self.cp.outstanding_jobs()}
        resp = self.cp.request(op, otype, name, body, cascade=cascade)
        assert resp.code == want, (op, otype, name, body, resp)
        event(f"{op} {otype} -> {resp.code}")
        self.apply(resp.changes)
        if resp.ok:
            assert resp.job is not None
            assert resp.job.loadbalancer not in lb_busy  # the lock serialises
            pending = {(c.object_type, c.name) for c in resp.changes if c.new in PENDING}
            assert pending == locks
            self.locks[resp.job.id] = locks

    @rule(
        name=st.sampled_from(LISTENERS),
        lb=st.sampled_from(LBS),
        protocol=st.sampled_from(["HTTP", "TCP", "UDP"]),
        port=st.sampled_from([80, 81]),
        pool=st.sampled_from([None, *POOLS]),
    )
    def create_listener(self, name: str, lb: str, protocol: str, port: int, pool: Any) -> None:
        body = {"loadbalancer": lb, "protocol": protocol, "protocol_port": port}
        self.do("create", LST, name, {**body, "default_pool": pool})

    @rule(
        name=st.sampled_from(POOLS),
        parent=st.sampled_from(
            [("loadbalancer", lb) for lb in LBS] + [("listener", n) for n in LISTENERS]
        ),
        algorithm=st.sampled_from(["ROUND_ROBIN", "ROUND_ROBIN", "SOURCE_IP_PORT"]),
    )  # fmt: skip
    def create_pool(self, name: str, parent: tuple[str, str], algorithm: str) -> None:
        self.do("create", POOL, name, {parent[0]: parent[1], "protocol": "HTTP",
                                       "lb_algorithm": algorithm})  # fmt: skip

    @rule(name=st.sampled_from(MEMBERS), pool=st.sampled_from(POOLS), addr=st.sampled_from("ab"))
    def create_member(self, name: str, pool: str, addr: str) -> None:
        self.do("create", MEM, name, {"pool": pool, "address": addr, "protocol_port": 80})

    @rule(name=st.sampled_from(HMS), pool=st.sampled_from(POOLS), enabled=st.booleans())
    def create_hm(self, name: str, pool: str, enabled: bool) -> None:
        self.do("create", HM, name, {"pool": pool, "type": "TCP", "admin_state_up": enabled})

    @rule(otype=st.sampled_from(list(NAMES)), data=st.data(), enabled=st.booleans())
    def update(self, otype: str, data: st.DataObject, enabled: bool) -> None:
        name = data.draw(st.sampled_from(NAMES[otype]))
        self.do("update", otype, name, {"admin_state_up": enabled})

    @rule(otype=st.sampled_from(list(NAMES)), data=st.data(), cascade=st.booleans())
    def delete(self, otype: str, data: st.DataObject, cascade: bool) -> None:
        name = data.draw(st.sampled_from(NAMES[otype]))
        self.do("delete", otype, name, {}, cascade=cascade and otype == LB)

    @rule(lb=st.sampled_from(LBS))
    def failover(self, lb: str) -> None:
        self.do("failover", LB, lb, {})

    @rule(lb=st.sampled_from(LBS))
    def recreate_lb(self, lb: str) -> None:
        self.do("create", LB, lb, {})

    @rule(lb=st.sampled_from(LBS))
    def health_manager(self, lb: str) -> None:
        s = self.status(LB, lb)
        job, changes = self.cp.lock_for_failover(lb)
        self.apply(changes)
        assert (job is not None) == (s in (A, ERR))
        if job is not None:
            self.locks[job.id] = {(LB, lb)}

    @precondition(lambda self: bool(self.cp.outstanding_jobs()))
    @rule(data=st.data(), success=st.booleans())
    def complete(self, data: st.DataObject, success: bool) -> None:
        job = data.draw(st.sampled_from(self.cp.outstanding_jobs()))
        lb_rows = [o for o in self.cp.objects() if self.cp.loadbalancer_of(o) == job.loadbalancer]
        self.apply(self.cp.complete(job, success))
        event(f"complete {job.op} {job.object_type} {'ok' if success else 'failed'}")
        self.locks.pop(job.id)
        after = {(o.type, o.name): o.provisioning_status for o in self.cp.objects()}
        me = (job.object_type, job.name)
        if job.object_type == LB:
            want = {"delete": DEL}.get(job.op, A) if success else ERR
            assert after[me] == want
            if job.op == "create":  # mark_subobjects (or its revert) reaches every child
                assert {after[(o.type, o.name)] for o in lb_rows} == {want}
            if want == DEL:  # cascade: no child of this LB is left
                assert all(
                    self.cp.loadbalancer_of(o) != job.name
                    for o in self.cp.objects()
                    if o.type != LB
                )
                assert self.cp.request("update", LB, job.name, {}).code == 404
            return
        assert after[(LB, job.loadbalancer)] == A  # the parent LB is released either way
        if success and job.op == "delete":
            assert me not in after
            assert self.cp.request("update", *me, {}).code == 404
        elif success:
            assert after[me] == A
        else:
            assert after[me] == ERR
        if job.object_type in (MEM, HM) and me in after:
            assert after[(POOL, self.cp.get(*me).attrs["pool"])] == A  # type: ignore[union-attr]
        if not success and job.object_type in (POOL, MEM, HM):
            assert all(after[(LST, o.name)] == A for o in self.cp.listeners_of(job.loadbalancer))

    @precondition(lambda self: bool(self.cp.outstanding_jobs()))
    @rule(data=st.data(), success=st.booleans())
    def complete_soon(self, data: st.DataObject, success: bool) -> None:
        """Same as ``complete``; a second rule makes jobs finish more often
        than they are started, so the machine spends time in unlocked states."""
        self.complete(data, success)

    # ---------------------------------------------------------- invariants

    @invariant()
    def one_job_per_lb_and_no_stray_pending(self) -> None:
        jobs = self.cp.outstanding_jobs()
        assert max(Counter(j.loadbalancer for j in jobs).values(), default=0) <= 1
        assert set(self.locks) == {j.id for j in jobs}
        locked = set().union(*self.locks.values()) if self.locks else set()
        for o in self.cp.objects():
            if o.provisioning_status in PENDING:
                assert (o.type, o.name) in locked, o

    @invariant()
    def changes_replay_to_the_store(self) -> None:
        assert snapshot(self.cp) == self.shadow


ControlPlaneMachine.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestControlPlaneMachine = ControlPlaneMachine.TestCase
