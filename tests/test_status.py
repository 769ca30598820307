"""Unit and property tests for lbsim.octavia.status (octavia-semantics.md §1).

One test per row of the decision tables in §1.2 (refresh), §1.3 (listeners), §1.4
(pools, plus the [HAProxy] backend rule), §1.5 (members) and §1.6 (load balancer), one
per row of the §1.9 "selected outputs" table, and hypothesis properties of the
aggregation. Every expected value below is taken from the reference tables, not from the
code. Exact agreement with upstream Octavia on random cases is proven separately by
tests/conformance/test_upstream_octavia.py.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.octavia.status import (
    DbListener,
    DbPool,
    DbView,
    HealthUpdate,
    StatusWrite,
    amphora_member_string,
    apply_update,
    backend_status,
    pool_key,
    update_health,
)

# --------------------------------------------------------------------------- builders


def view(
    *,
    enabled: bool = True,
    prov: str = "ACTIVE",
    op: str = "ONLINE",
    listeners: dict[str, tuple[str, bool]] | None = None,
    pools: dict[str, tuple[str, dict[str, str]]] | None = None,
    protocol: str = "HTTP",
) -> DbView:
    """LB "lb"; by default listener l1 ONLINE and pool p1 ONLINE with m1, m2 ONLINE."""
    if listeners is None:
        listeners = {"l1": ("ONLINE", True)}
    if pools is None:
        pools = {"p1": ("ONLINE", {"m1": "ONLINE", "m2": "ONLINE"})}
    return DbView(
        lb_id="lb",
        enabled=enabled,
        provisioning_status=prov,
        operating_status=op,
        listeners={lid: DbListener(lid, s, protocol, en) for lid, (s, en) in listeners.items()},
        pools={pid: DbPool(pid, s, m) for pid, (s, m) in pools.items()},
    )


def hb(
    listeners: dict[str, str] | None = None,
    pools: dict[str, tuple[str, dict[str, str]]] | None = None,
) -> dict[str, Any]:
    """A v3 heartbeat; by default l1 OPEN and backend p1:l1 UP with m1, m2 UP."""
    if listeners is None:
        listeners = {"l1": "OPEN"}
    if pools is None:
        pools = {"p1:l1": ("UP", {"m1": "UP", "m2": "UP"})}
    return {
        "id": "amp",
        "seq": 1,
        "ver": 3,
        "listeners": {lid: {"status": s, "stats": {}} for lid, s in listeners.items()},
        "pools": {k: {"status": s, "members": dict(m)} for k, (s, m) in pools.items()},
    }


def W(kind: str, oid: str, status: str) -> StatusWrite:
    return StatusWrite(kind, oid, status)  # type: ignore[arg-type]


def writes(v: DbView | None, h: dict[str, Any], **kw: Any) -> list[StatusWrite]:
    return list(update_health(v, h, **kw).writes)


# --------------------------------------------------------------------------- §1.2


def test_refresh_no_lb_means_no_refresh_and_no_processing() -> None:
    assert update_health(None, hb()) == HealthUpdate(False, False, ())


def test_refresh_pending_lb_ignores_listener_count() -> None:
    up = update_health(view(prov="PENDING_UPDATE"), hb(listeners={}, pools={}))
    assert up.refresh_amphora and up.processed


def test_refresh_disabled_lb_ignores_listener_count() -> None:
    up = update_health(view(enabled=False), hb(listeners={}, pools={}))
    assert up.refresh_amphora and up.processed


def test_refresh_count_equals_enabled_listeners() -> None:
    # l2 is disabled: HAProxy does not render it, so one reported listener is enough.
    v = view(listeners={"l1": ("ONLINE", True), "l2": ("OFFLINE", False)})
    up = update_health(v, hb())
    assert up.refresh_amphora and up.processed and up.writes == ()


def test_refresh_count_differs_no_refresh_but_statuses_processed() -> None:
    v = view(listeners={"l1": ("ONLINE", True), "l2": ("ONLINE", True)})
    up = update_health(v, hb())
    assert not up.refresh_amphora
    assert up.processed
    assert up.writes == (W("listener", "l2", "ERROR"),)


def test_refresh_extra_unknown_listener_also_breaks_the_count() -> None:
    up = update_health(view(), hb(listeners={"l1": "OPEN", "lx": "OPEN"}))
    assert not up.refresh_amphora and up.processed


@pytest.mark.parametrize("delay", [10.0, 10.5, 30.0])
def test_refresh_slow_processing_drops_heartbeat(delay: float) -> None:
    # Statuses would change (m2 DOWN) but nothing at all happens.
    h = hb(pools={"p1:l1": ("UP", {"m1": "UP", "m2": "DOWN"})})
    up = update_health(view(), h, processing_delay=delay, heartbeat_interval=10.0)
    assert up == HealthUpdate(False, False, ())


def test_refresh_delay_just_below_interval_is_processed() -> None:
    up = update_health(view(), hb(), processing_delay=9.999, heartbeat_interval=10.0)
    assert up.refresh_amphora and up.processed


def test_refresh_delay_not_checked_when_count_differs() -> None:
    v = view(listeners={"l1": ("ONLINE", True), "l2": ("ONLINE", True)})
    up = update_health(v, hb(), processing_delay=60.0, heartbeat_interval=10.0)
    assert not up.refresh_amphora
    assert up.processed and up.writes == (W("listener", "l2", "ERROR"),)


def test_refresh_delay_checked_on_ignored_count_path() -> None:
    up = update_health(
        view(prov="PENDING_CREATE"), hb(listeners={}), processing_delay=3.0, heartbeat_interval=3.0
    )
    assert up == HealthUpdate(False, False, ())


@pytest.mark.parametrize(
    "bad",
    [
        {"id": "a", "listeners": {}, "pools": {}},
        {"id": "a", "ver": 1, "listeners": {}, "pools": {}},
        {"id": "a", "ver": 3, "listeners": {}},
        {"id": "a", "ver": 3, "pools": {}},
    ],
)
def test_unmodelled_heartbeat_versions_and_shapes_are_rejected(bad: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        update_health(view(), bad)


# --------------------------------------------------------------------------- §1.3


def test_listener_missing_enabled_active_is_error_and_lb_unaffected() -> None:
    v = view(listeners={"l1": ("ONLINE", True), "l2": ("ONLINE", True)})
    assert writes(v, hb()) == [W("listener", "l2", "ERROR")]


@pytest.mark.parametrize(
    ("prov", "enabled"),
    [("ACTIVE", False), ("PENDING_UPDATE", True), ("ERROR", True), ("PENDING_CREATE", True)],
)
def test_listener_missing_not_expected_is_offline(prov: str, enabled: bool) -> None:
    v = view(prov=prov, listeners={"l1": ("ONLINE", True), "l2": ("ONLINE", enabled)})
    assert writes(v, hb()) == [W("listener", "l2", "OFFLINE")]


def test_listener_open_is_online() -> None:
    v = view(listeners={"l1": ("OFFLINE", True)})
    assert writes(v, hb()) == [W("listener", "l1", "ONLINE")]


def test_listener_full_is_degraded_and_degrades_online_lb() -> None:
    assert writes(view(), hb(listeners={"l1": "FULL"})) == [
        W("listener", "l1", "DEGRADED"),
        W("loadbalancer", "lb", "DEGRADED"),
    ]


@pytest.mark.parametrize("status", ["STOP", "open", "", "CLOSED"])
def test_listener_other_status_is_left_unchanged(status: str) -> None:
    v = view(listeners={"l1": ("OFFLINE", True)})
    assert writes(v, hb(listeners={"l1": status})) == []


def test_listener_without_status_key_is_left_unchanged() -> None:
    h = hb()
    del h["listeners"]["l1"]["status"]
    assert writes(view(listeners={"l1": ("ERROR", True)}), h) == []


def test_disabled_active_lb_enabled_listeners_error_lb_offline() -> None:
    v = view(enabled=False)
    assert writes(v, hb(listeners={}, pools={})) == [
        W("listener", "l1", "ERROR"),
        W("pool", "p1", "OFFLINE"),
        W("loadbalancer", "lb", "OFFLINE"),
    ]


# --------------------------------------------------------------------------- §1.4


def test_pool_missing_goes_offline_last_and_members_untouched() -> None:
    v = view(
        listeners={"l1": ("ONLINE", True)},
        pools={"p1": ("ONLINE", {"m1": "ONLINE"}), "p2": ("OFFLINE", {"m2": "NO_MONITOR"})},
    )
    h = hb(pools={"p2:l1": ("UP", {"m2": "UP"})})
    # p1 comes first in the DB but its OFFLINE is written after p2's processing.
    assert writes(v, h) == [
        W("member", "m2", "ONLINE"),
        W("pool", "p2", "ONLINE"),
        W("pool", "p1", "OFFLINE"),
    ]


def test_pool_missing_several_go_offline_in_db_order_after_reported_ones() -> None:
    v = view(
        pools={
            "p1": ("ONLINE", {}),
            "p2": ("OFFLINE", {}),
            "p3": ("ERROR", {}),
            "p4": ("DEGRADED", {}),
        }
    )
    assert writes(v, hb(pools={"p2:l1": ("UP", {})})) == [
        W("pool", "p2", "ONLINE"),
        W("pool", "p1", "OFFLINE"),
        W("pool", "p3", "OFFLINE"),
        W("pool", "p4", "OFFLINE"),
    ]


def test_pool_missing_already_offline_writes_nothing() -> None:
    v = view(pools={"p1": ("OFFLINE", {"m1": "ERROR"})})
    assert writes(v, hb(pools={})) == []


def test_pool_up_is_online() -> None:
    v = view(pools={"p1": ("OFFLINE", {"m1": "ONLINE"})})
    assert writes(v, hb(pools={"p1:l1": ("UP", {"m1": "UP"})})) == [W("pool", "p1", "ONLINE")]


def test_pool_up_with_no_members_is_online() -> None:
    v = view(pools={"p1": ("OFFLINE", {})})
    assert writes(v, hb(pools={"p1:l1": ("UP", {})})) == [W("pool", "p1", "ONLINE")]


def test_pool_down_is_error_and_lb_error() -> None:
    h = hb(pools={"p1:l1": ("DOWN", {"m1": "DOWN", "m2": "DOWN"})})
    assert writes(view(), h) == [
        W("member", "m1", "ERROR"),
        W("member", "m2", "ERROR"),
        W("pool", "p1", "ERROR"),
        W("loadbalancer", "lb", "ERROR"),
    ]


def test_pool_down_overrides_degraded_from_full_listener() -> None:
    h = hb(listeners={"l1": "FULL"}, pools={"p1:l1": ("DOWN", {"m1": "UP", "m2": "UP"})})
    assert writes(view(), h)[-1] == W("loadbalancer", "lb", "ERROR")


def test_pool_down_overrides_offline_of_disabled_lb() -> None:
    h = hb(pools={"p1:l1": ("DOWN", {"m1": "UP", "m2": "UP"})})
    assert writes(view(enabled=False, op="OFFLINE"), h) == [
        W("pool", "p1", "ERROR"),
        W("loadbalancer", "lb", "ERROR"),
    ]


@pytest.mark.parametrize("status", ["MAINT", "up", "no check", ""])
def test_pool_other_status_unchanged_but_members_processed(status: str) -> None:
    v = view(pools={"p1": ("OFFLINE", {"m1": "ONLINE", "m2": "ONLINE"})})
    h = hb(pools={"p1:l1": (status, {"m1": "UP", "m2": "DOWN"})})
    # The DOWN member cannot degrade a pool whose own status is unknown.
    assert writes(v, h) == [W("member", "m2", "ERROR")]


def test_pool_shared_by_listeners_last_key_wins() -> None:
    v = view(listeners={"l1": ("ONLINE", True), "l2": ("ONLINE", True)})
    both = {"l1": "OPEN", "l2": "OPEN"}
    down = ("DOWN", {"m1": "DOWN", "m2": "DOWN"})
    up = ("UP", {"m1": "UP", "m2": "UP"})
    assert writes(v, hb(both, {"p1:l1": up, "p1:l2": down}))[-1] == W("loadbalancer", "lb", "ERROR")
    assert writes(v, hb(both, {"p1:l2": down, "p1:l1": up})) == []


def test_pool_bare_key_for_udp() -> None:
    v = view(protocol="UDP", pools={"p1": ("OFFLINE", {"m1": "OFFLINE"})})
    assert writes(v, hb(pools={"p1": ("UP", {"m1": "UP"})})) == [
        W("member", "m1", "ONLINE"),
        W("pool", "p1", "ONLINE"),
    ]


def test_pool_key_helper_round_trips_through_normalisation() -> None:
    v = view(pools={"p1": ("OFFLINE", {})})
    assert writes(v, hb(pools={pool_key("p1", "l1"): ("UP", {})})) == [W("pool", "p1", "ONLINE")]


def test_heartbeat_pool_not_in_db_is_ignored() -> None:
    h = hb(pools={"p1:l1": ("UP", {"m1": "UP", "m2": "UP"}), "px:l1": ("DOWN", {})})
    assert writes(view(), h) == []


# [HAProxy] backend rule (§1.4): UP iff usable weight > 0 or no servers at all.


def test_backend_no_servers_is_up() -> None:
    assert backend_status([]) == "UP"


@pytest.mark.parametrize("up", ["UP", "UP 1/3", "no check"])
def test_backend_one_usable_server_is_up(up: str) -> None:
    assert backend_status([("DOWN", 1, False), (up, 1, False)]) == "UP"


@pytest.mark.parametrize(
    "servers",
    [
        [("DOWN", 1, False), ("DOWN 1/2", 1, False)],  # all down
        [("MAINT", 1, False), ("MAINT(via)", 3, False)],  # all admin-disabled
        [("UP", 0, False), ("no check", 0, False)],  # all drained (weight 0)
        [("DRAIN", 1, False), ("NOLB", 1, False)],  # drain / stopping carry no weight
    ],
)
def test_backend_servers_without_usable_weight_is_down(
    servers: list[tuple[str, int, bool]],
) -> None:
    assert backend_status(servers) == "DOWN"


def test_backend_backups_count_only_without_active_servers() -> None:
    assert backend_status([("DOWN", 1, False), ("UP", 1, True)]) == "UP"
    assert backend_status([("DOWN", 1, False), ("DOWN", 1, True)]) == "DOWN"
    assert backend_status([("UP", 0, False), ("UP", 2, True)]) == "UP"


# --------------------------------------------------------------------------- §1.5


def _member(db: str, reported: str | None, backend: str = "UP") -> list[StatusWrite]:
    members = {} if reported is None else {"m1": reported}
    v = view(pools={"p1": ("ONLINE", {"m1": db})})
    return writes(v, hb(pools={"p1:l1": (backend, members)}))


def test_member_absent_goes_offline() -> None:
    assert _member("ONLINE", None) == [W("member", "m1", "OFFLINE")]


def test_member_absent_keeps_no_monitor() -> None:
    assert _member("NO_MONITOR", None) == []


def test_member_absent_keep_rule_is_case_sensitive_as_upstream() -> None:
    # Upstream compares the DB value with "NO_MONITOR" exactly; any other spelling is
    # treated like ONLINE and written OFFLINE (the later write guard ignores case).
    assert _member("no_monitor", None) == [W("member", "m1", "OFFLINE")]
    assert _member("offline", None) == []


@pytest.mark.parametrize("text", ["UP", "UP 1/3", "UP 2/3"])
def test_member_up_is_online(text: str) -> None:
    assert _member("OFFLINE", text) == [W("member", "m1", "ONLINE")]


@pytest.mark.parametrize("text", ["DOWN", "DOWN 1/2"])
def test_member_down_is_error_and_degrades_up_pool_and_lb(text: str) -> None:
    assert _member("ONLINE", text) == [
        W("member", "m1", "ERROR"),
        W("pool", "p1", "DEGRADED"),
        W("loadbalancer", "lb", "DEGRADED"),
    ]


def test_member_down_in_down_backend_pool_is_error_not_degraded() -> None:
    assert _member("ONLINE", "DOWN", backend="DOWN") == [
        W("member", "m1", "ERROR"),
        W("pool", "p1", "ERROR"),
        W("loadbalancer", "lb", "ERROR"),
    ]


def test_member_drain_is_draining() -> None:
    assert _member("ONLINE", "DRAIN") == [W("member", "m1", "DRAINING")]


def test_member_maint_is_offline() -> None:
    assert _member("ONLINE", "MAINT") == [W("member", "m1", "OFFLINE")]


def test_member_no_check_is_no_monitor() -> None:
    assert _member("OFFLINE", "no check") == [W("member", "m1", "NO_MONITOR")]


def test_member_restarting_is_unchanged() -> None:
    assert _member("ERROR", "RESTARTING") == []


@pytest.mark.parametrize("text", ["NOLB", "MAINT(via)", "MAINT (resolution)", "down", ""])
def test_member_other_strings_unchanged(text: str) -> None:
    assert _member("ERROR", text) == []


def test_member_in_heartbeat_but_not_in_db_is_ignored() -> None:
    v = view(pools={"p1": ("ONLINE", {"m1": "ONLINE"})})
    assert writes(v, hb(pools={"p1:l1": ("UP", {"m1": "UP", "mx": "DOWN"})})) == []


def test_amphora_drain_rewrite() -> None:
    assert amphora_member_string("UP", 0) == "DRAIN"
    assert amphora_member_string("UP", 1) == "UP"
    assert amphora_member_string("UP 1/3", 0) == "UP 1/3"  # only an exact "UP"
    assert amphora_member_string("DOWN", 0) == "DOWN"  # weight-0 DOWN member → ERROR
    assert amphora_member_string("no check", 0) == "no check"  # no HM → NO_MONITOR


# --------------------------------------------------------------------------- §1.6


def _lb_after(h: dict[str, Any], **kw: Any) -> str:
    v = view(**kw)
    return apply_update(v, update_health(v, h)).operating_status


def test_lb_any_down_backend_is_error() -> None:
    h = hb(listeners={"l1": "FULL"}, pools={"p1:l1": ("DOWN", {"m1": "DOWN", "m2": "UP"})})
    assert _lb_after(h, op="DEGRADED") == "ERROR"


@pytest.mark.parametrize(
    "h",
    [
        hb(listeners={"l1": "FULL"}),
        hb(pools={"p1:l1": ("UP", {"m1": "UP", "m2": "DOWN 1/2"})}),
    ],
)
def test_lb_full_listener_or_down_member_in_up_backend_is_degraded(h: dict[str, Any]) -> None:
    assert _lb_after(h, op="ERROR") == "DEGRADED"


def test_lb_otherwise_online_even_with_missing_listeners_and_pools() -> None:
    v = view(
        op="ERROR",
        listeners={"l1": ("ONLINE", True), "l2": ("ONLINE", True)},
        pools={"p1": ("ONLINE", {"m1": "ONLINE"}), "p2": ("ONLINE", {})},
    )
    after = apply_update(v, update_health(v, hb(pools={"p1:l1": ("UP", {"m1": "UP"})})))
    assert after.operating_status == "ONLINE"
    assert after.listeners["l2"].operating_status == "ERROR"
    assert after.pools["p2"].operating_status == "OFFLINE"


def test_lb_disabled_stays_offline_despite_full_and_down_members() -> None:
    h = hb(listeners={"l1": "FULL"}, pools={"p1:l1": ("UP", {"m1": "DOWN", "m2": "UP"})})
    assert _lb_after(h, enabled=False) == "OFFLINE"


def test_lb_status_compare_is_case_insensitive() -> None:
    assert writes(view(op="online"), hb()) == []


# --------------------------------------------------------------------------- §1.9


def test_selected_m2_down_backend_up() -> None:
    h = hb(pools={"p1:l1": ("UP", {"m1": "UP", "m2": "DOWN"})})
    assert writes(view(), h) == [
        W("member", "m2", "ERROR"),
        W("pool", "p1", "DEGRADED"),
        W("loadbalancer", "lb", "DEGRADED"),
    ]


def test_selected_backend_down_all_members_down() -> None:
    h = hb(pools={"p1:l1": ("DOWN", {"m1": "DOWN", "m2": "DOWN"})})
    assert writes(view(), h) == [
        W("member", "m1", "ERROR"),
        W("member", "m2", "ERROR"),
        W("pool", "p1", "ERROR"),
        W("loadbalancer", "lb", "ERROR"),
    ]


def test_selected_transitional_strings() -> None:
    v = view(pools={"p1": ("ONLINE", {"m1": "OFFLINE", "m2": "ONLINE"})})
    h = hb(pools={"p1:l1": ("UP", {"m1": "UP 1/3", "m2": "DOWN 1/2"})})
    assert writes(v, h) == [
        W("member", "m1", "ONLINE"),
        W("member", "m2", "ERROR"),
        W("pool", "p1", "DEGRADED"),
        W("loadbalancer", "lb", "DEGRADED"),
    ]


def test_selected_drain_maint_no_check() -> None:
    v = view(pools={"p1": ("ONLINE", {"a": "ONLINE", "b": "ONLINE", "c": "ONLINE"})})
    h = hb(pools={"p1:l1": ("UP", {"a": "DRAIN", "b": "MAINT", "c": "no check"})})
    assert writes(v, h) == [
        W("member", "a", "DRAINING"),
        W("member", "b", "OFFLINE"),
        W("member", "c", "NO_MONITOR"),
    ]


def test_selected_member_absent_db_online() -> None:
    h = hb(pools={"p1:l1": ("UP", {"m1": "UP"})})
    assert writes(view(), h) == [W("member", "m2", "OFFLINE")]


def test_selected_member_absent_db_no_monitor() -> None:
    v = view(pools={"p1": ("ONLINE", {"m1": "ONLINE", "m2": "NO_MONITOR"})})
    assert writes(v, hb(pools={"p1:l1": ("UP", {"m1": "UP"})})) == []


def test_selected_listener_full() -> None:
    assert writes(view(), hb(listeners={"l1": "FULL"})) == [
        W("listener", "l1", "DEGRADED"),
        W("loadbalancer", "lb", "DEGRADED"),
    ]


def test_selected_listener_absent_lb_active() -> None:
    up = update_health(view(), hb(listeners={}, pools={}))
    assert not up.refresh_amphora
    assert list(up.writes) == [W("listener", "l1", "ERROR"), W("pool", "p1", "OFFLINE")]


def test_selected_listener_absent_lb_pending_update() -> None:
    up = update_health(view(prov="PENDING_UPDATE"), hb(listeners={}, pools={}))
    assert up.refresh_amphora
    assert list(up.writes) == [W("listener", "l1", "OFFLINE"), W("pool", "p1", "OFFLINE")]


def test_selected_lb_disabled_nothing_reported() -> None:
    assert writes(view(enabled=False), hb(listeners={}, pools={})) == [
        W("listener", "l1", "ERROR"),
        W("pool", "p1", "OFFLINE"),
        W("loadbalancer", "lb", "OFFLINE"),
    ]


def test_selected_lb_disabled_backend_down() -> None:
    h = hb(listeners={}, pools={"p1:l1": ("DOWN", {"m1": "DOWN", "m2": "DOWN"})})
    assert W("loadbalancer", "lb", "ERROR") in writes(view(enabled=False, op="OFFLINE"), h)


def test_selected_nolb_and_maint_via() -> None:
    h = hb(pools={"p1:l1": ("UP", {"m1": "NOLB", "m2": "MAINT(via)"})})
    assert writes(view(), h) == []


def test_selected_fresh_lb_first_heartbeat_no_hm() -> None:
    v = view(
        op="OFFLINE",
        listeners={"l1": ("OFFLINE", True)},
        pools={"p1": ("OFFLINE", {"m1": "NO_MONITOR", "m2": "NO_MONITOR"})},
    )
    h = hb(pools={"p1:l1": ("UP", {"m1": "no check", "m2": "no check"})})
    assert writes(v, h) == [
        W("listener", "l1", "ONLINE"),
        W("pool", "p1", "ONLINE"),
        W("loadbalancer", "lb", "ONLINE"),
    ]


# --------------------------------------------------------------------------- DbView, apply


def test_view_rejects_mismatched_keys_and_shared_members() -> None:
    with pytest.raises(ValueError):
        DbView("lb", True, "ACTIVE", "ONLINE", {"x": DbListener("l1", "ONLINE", "HTTP", True)})
    with pytest.raises(ValueError):
        DbView("lb", True, "ACTIVE", "ONLINE", {}, {"x": DbPool("p1", "ONLINE")})
    with pytest.raises(ValueError):
        DbView(
            "lb",
            True,
            "ACTIVE",
            "ONLINE",
            {},
            {
                "p1": DbPool("p1", "ONLINE", {"m": "ONLINE"}),
                "p2": DbPool("p2", "ONLINE", {"m": "ONLINE"}),
            },
        )


def test_view_is_not_aliased_to_caller_dicts() -> None:
    members = {"m1": "ONLINE"}
    pool = DbPool("p1", "ONLINE", members)
    members["m1"] = "ERROR"
    assert pool.members["m1"] == "ONLINE"
    with pytest.raises(TypeError):
        pool.members["m1"] = "ERROR"  # type: ignore[index]


def test_apply_update_sets_every_written_status_and_keeps_order() -> None:
    v = view(
        listeners={"l1": ("ONLINE", True), "l2": ("OFFLINE", False)},
        pools={"p1": ("ONLINE", {"m1": "ONLINE", "m2": "ONLINE"}), "p2": ("ONLINE", {})},
    )
    up = HealthUpdate(
        True,
        True,
        (
            W("listener", "l2", "ERROR"),
            W("member", "m2", "DRAINING"),
            W("pool", "p2", "OFFLINE"),
            W("loadbalancer", "lb", "DEGRADED"),
        ),
    )
    after = apply_update(v, up)
    assert after.operating_status == "DEGRADED"
    assert [(li.id, li.operating_status, li.enabled) for li in after.listeners.values()] == [
        ("l1", "ONLINE", True),
        ("l2", "ERROR", False),
    ]
    assert dict(after.pools["p1"].members) == {"m1": "ONLINE", "m2": "DRAINING"}
    assert list(after.pools) == ["p1", "p2"] and after.pools["p2"].operating_status == "OFFLINE"
    assert v.pools["p1"].members["m2"] == "ONLINE"  # input untouched


def test_apply_update_unknown_object_raises() -> None:
    with pytest.raises(KeyError):
        apply_update(view(), HealthUpdate(True, True, (W("pool", "nope", "ERROR"),)))


# --------------------------------------------------------------------------- properties

OPS = ["ONLINE", "OFFLINE", "DEGRADED", "ERROR", "DRAINING", "NO_MONITOR"]
MEMBER_TEXT = [
    "UP",
    "UP 1/3",
    "DOWN",
    "DOWN 1/2",
    "DRAIN",
    "MAINT",
    "no check",
    "NOLB",
    "MAINT(via)",
    "RESTARTING",
]


@st.composite
def cases(draw: st.DrawFn) -> tuple[DbView, dict[str, Any], float]:
    """A DB view and a heartbeat that reports a random part of it, plus a delay."""
    n_l = draw(st.integers(0, 3))
    listeners = {f"l{i}": (draw(st.sampled_from(OPS)), draw(st.booleans())) for i in range(n_l)}
    pools = {
        f"p{i}": (
            draw(st.sampled_from(OPS)),
            {f"m{i}{j}": draw(st.sampled_from(OPS)) for j in range(draw(st.integers(0, 3)))},
        )
        for i in range(draw(st.integers(0, 3)))
    }
    v = view(
        enabled=draw(st.booleans()),
        prov=draw(st.sampled_from(["ACTIVE", "ACTIVE", "PENDING_UPDATE", "ERROR"])),
        op=draw(st.sampled_from(OPS)),
        listeners=listeners,
        pools=pools,
    )
    rep_l = {
        lid: draw(st.sampled_from(["OPEN", "FULL", "STOP"]))
        for lid in listeners
        if draw(st.booleans())
    }
    lids = [*listeners, "lx"]
    rep_p: dict[str, tuple[str, dict[str, str]]] = {}
    for pid, (_, members) in pools.items():
        for _ in range(draw(st.integers(0, 2))):
            key = f"{pid}:{draw(st.sampled_from(lids))}"
            rep_p[key] = (
                draw(st.sampled_from(["UP", "DOWN", "?"])),
                {m: draw(st.sampled_from(MEMBER_TEXT)) for m in members if draw(st.booleans())},
            )
    delay = draw(st.sampled_from([0.0, 0.0, 0.0, 9.0, 10.0, 11.0]))
    return v, hb(rep_l, rep_p), delay


def _reported_entry(h: dict[str, Any], pool_id: str) -> dict[str, Any] | None:
    """Heartbeat entry for a DB pool: the last key naming it wins (§1.4), None if absent."""
    found = None
    for key, entry in h["pools"].items():
        if key.rsplit(":", 1)[0] == pool_id:
            found = entry
    return found


def _reported_backend(h: dict[str, Any], pool_id: str) -> str | None:
    entry = _reported_entry(h, pool_id)
    return None if entry is None else entry["status"]


@settings(max_examples=200, deadline=None)
@given(cases())
def test_prop_enabled_lb_with_down_backend_ends_error(case: Any) -> None:
    v, h, delay = case
    up = update_health(v, h, processing_delay=delay)
    if up.processed and any(_reported_backend(h, p) == "DOWN" for p in v.pools):
        assert apply_update(v, up).operating_status == "ERROR"


@settings(max_examples=200, deadline=None)
@given(cases())
def test_prop_lb_status_follows_precedence(case: Any) -> None:
    v, h, _ = case
    after = apply_update(v, update_health(v, h))
    backends = {p: _reported_backend(h, p) for p in v.pools}
    if "DOWN" in backends.values():
        assert after.operating_status == "ERROR"
    elif not v.enabled:
        assert after.operating_status == "OFFLINE"
    else:
        full = any(e["status"] == "FULL" for lid, e in h["listeners"].items() if lid in v.listeners)
        down_member = False
        for pool in v.pools.values():
            entry = _reported_entry(h, pool.id)
            if entry is not None and entry["status"] == "UP":
                texts = [entry["members"].get(m, "") for m in pool.members]
                down_member |= any(t.startswith("DOWN") for t in texts)
        assert after.operating_status == ("DEGRADED" if full or down_member else "ONLINE")


@settings(max_examples=200, deadline=None)
@given(cases())
def test_prop_writes_only_changed_values_once_each_in_order(case: Any) -> None:
    v, h, delay = case
    up = update_health(v, h, processing_delay=delay)
    old: dict[tuple[str, str], str] = {("loadbalancer", v.lb_id): v.operating_status}
    old |= {("listener", li.id): li.operating_status for li in v.listeners.values()}
    old |= {("pool", p.id): p.operating_status for p in v.pools.values()}
    old |= {("member", m): s for p in v.pools.values() for m, s in p.members.items()}
    targets = [(w.object_type, w.object_id) for w in up.writes]
    assert len(targets) == len(set(targets))
    for w in up.writes:
        assert w.operating_status.lower() != old[(w.object_type, w.object_id)].lower()
    kinds = [w.object_type for w in up.writes]
    n_listener = kinds.count("listener")
    assert kinds[:n_listener] == ["listener"] * n_listener
    assert "loadbalancer" not in kinds[:-1]
    if not up.processed:
        assert up.writes == () and not up.refresh_amphora


@settings(max_examples=200, deadline=None)
@given(cases())
def test_prop_reapplying_same_heartbeat_is_a_fixed_point(case: Any) -> None:
    v, h, delay = case
    first = update_health(v, h, processing_delay=delay)
    second = update_health(apply_update(v, first), h, processing_delay=delay)
    assert second.writes == ()
    assert (second.refresh_amphora, second.processed) == (first.refresh_amphora, first.processed)


@settings(max_examples=200, deadline=None)
@given(cases())
def test_prop_members_of_unreported_pools_are_never_written(case: Any) -> None:
    v, h, _ = case
    up = update_health(v, h)
    unreported = {
        m for p in v.pools.values() if _reported_backend(h, p.id) is None for m in p.members
    }
    assert not unreported & {w.object_id for w in up.writes if w.object_type == "member"}


@settings(max_examples=200, deadline=None)
@given(cases())
def test_prop_refresh_depends_on_counts_not_on_statuses(case: Any) -> None:
    v, h, _ = case
    up = update_health(v, h)
    expected = (
        "PENDING" in v.provisioning_status
        or not v.enabled
        or len(h["listeners"]) == sum(li.enabled for li in v.listeners.values())
    )
    assert up.refresh_amphora == expected
