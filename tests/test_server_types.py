"""The v2 request types: WSME's conversions and wording, checked against what real Octavia
answered in the recording, plus the list semantics (filters, sort, pages) and the clock."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.server.clock import SimClock
from lbsim.server.octavia.errors import Fault
from lbsim.server.octavia.listing import paginate
from lbsim.server.octavia.types import parse_body
from tests.serve_recording import exchanges

KIND_OF_PATH = {"loadbalancers": "loadbalancer", "listeners": "listener", "pools": "pool",
                "members": "member", "healthmonitors": "healthmonitor"}  # fmt: skip


def _kind(path: str) -> str:
    parts = [p for p in path.split("/") if p]
    return KIND_OF_PATH[parts[-1] if parts[-1] in KIND_OF_PATH else parts[-2]]


def _type_faults() -> list[dict[str, Any]]:
    """Recorded 400s that come from the request types (not from the controller or the locks)."""
    out = []
    for h in exchanges():
        body = h.get("resp_body")
        if h["status"] != 400 or not isinstance(body, dict) or h["method"] not in ("POST", "PUT"):
            continue
        msg = body["faultstring"]
        if not msg.startswith(("Invalid input", "Unknown attribute")) or not isinstance(h["req_body"], dict):
            continue
        if h["path"].endswith("/members") and h["method"] == "PUT":
            continue
        out.append(h)
    return out


def test_the_recording_has_type_faults_to_compare() -> None:
    assert len(_type_faults()) >= 10


@pytest.mark.parametrize("h", _type_faults(), ids=lambda h: h["resp_body"]["faultstring"][:60])
def test_field_errors_read_as_real_octavia(h: dict[str, Any]) -> None:
    op = "create" if h["method"] == "POST" else "update"
    with pytest.raises(Fault) as err:
        parse_body(_kind(h["path"]), op, h["req_body"])
    assert err.value.code == 400
    assert err.value.faultcode == "Client"
    expected = h["resp_body"]["faultstring"]
    if expected.startswith("Unknown attributes"):  # WSME lists them in set order: compare as sets
        head, _, names = expected.partition(": ")
        got_head, _, got_names = err.value.message.partition(": ")
        assert got_head == head and set(got_names.split(", ")) == set(names.split(", "))
    elif "Value not an unambiguous boolean" in expected:  # WSME prints the argument in its own key order
        assert err.value.message.startswith("Invalid input for field/attribute load_balancer. Value: '{")
        assert err.value.message.endswith("'. Value not an unambiguous boolean: maybe")
    else:
        assert err.value.message == expected


def test_recorded_successful_bodies_are_accepted() -> None:
    accepted = 0
    for h in exchanges():
        if h["method"] not in ("POST", "PUT") or h["status"] not in (200, 201) or not isinstance(h["req_body"], dict):
            continue
        path = h["path"]
        kind = _kind(path)
        op = "create" if h["method"] == "POST" else "update"
        parse_body(kind, op, h["req_body"])
        accepted += 1
    assert accepted >= 20


def test_create_fills_wsme_defaults_and_converts_numeric_strings() -> None:
    body = parse_body("listener", "create", {"listener": {"loadbalancer_id": "76a4c6c2-f564-424c-9b25-fb65d7065a90",
                                                          "protocol": "HTTP", "protocol_port": "80",
                                                          "connection_limit": "1000"}})  # fmt: skip
    assert body["protocol_port"] == 80 and body["connection_limit"] == 1000
    assert body["admin_state_up"] is True and body["client_authentication"] == "NONE"
    update = parse_body("listener", "update", {"listener": {"connection_limit": None}})
    assert update == {"connection_limit": None}  # unset: the server restores the default


@pytest.mark.parametrize(
    ("kind", "inner", "message"),
    [
        ("member", {"address": "10.0.0.1"}, "Invalid input for field/attribute protocol_port. Value: 'None'. Mandatory field missing."),
        ("member", {"address": "10.0.0.1", "protocol_port": "x"}, "invalid literal for int() with base 10: 'x'"),
        ("member", {"address": "10.0.0.1", "protocol_port": 80, "weight": 257}, "Value should be lower or equal to 256"),
        ("pool", {"protocol": "HTTP", "lb_algorithm": "RANDOM"}, "Value should be one of: ROUND_ROBIN"),
        ("healthmonitor", {"pool_id": "nope", "type": "TCP", "delay": 1, "timeout": 1, "max_retries": 1}, "Value should be UUID format"),
        ("loadbalancer", {"name": 5}, "Wrong type"),
        ("loadbalancer", {"tags": "web"}, "Value should be a list"),
    ],
)  # fmt: skip
def test_bad_fields_are_400_with_the_field_named(kind: str, inner: dict[str, Any], message: str) -> None:
    root = {"healthmonitor": "healthmonitor"}.get(kind, kind)
    with pytest.raises(Fault) as err:
        parse_body(kind, "create", {root: inner})
    assert err.value.code == 400
    assert message in err.value.message


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=300, deadline=None)
@given(kind=st.sampled_from(["loadbalancer", "listener", "pool", "member", "healthmonitor"]),
       op=st.sampled_from(["create", "update"]), inner=st.dictionaries(
           st.sampled_from(["name", "protocol", "protocol_port", "weight", "admin_state_up", "address", "delay",
                            "session_persistence", "tags", "timeout_client_data", "vip_address", "bogus"]),
           JSONISH, max_size=5))  # fmt: skip
def test_any_json_is_accepted_or_refused_with_a_400(kind: str, op: str, inner: dict[str, Any]) -> None:
    try:
        parse_body(kind, op, {kind: inner})
    except Fault as err:
        assert err.code == 400 and err.message


# ------------------------------------------------------------------ lists


def _items(n: int) -> list[dict[str, Any]]:
    return [{"id": f"id-{i:03d}", "name": f"n{(i * 7) % 5}", "created_at": f"2026-11-30T10:00:{i:02d}.000000",
             "tags": ["a"] if i % 2 else [], "operating_status": "ONLINE"} for i in range(n)]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(n=st.integers(0, 25), limit=st.integers(1, 7), sort=st.sampled_from(["", "name", "name:desc", "id:desc"]))
def test_following_next_links_visits_every_item_once_in_order(n: int, limit: int, sort: str) -> None:
    items = _items(n)
    base = [("sort", sort)] if sort else []
    everything, _ = paginate(items, base, "http://h/v2/lbaas/x")
    seen: list[str] = []
    query = [*base, ("limit", str(limit))]
    for _ in range(n + 2):
        page, links = paginate(items, query, "http://h/v2/lbaas/x")
        seen += [o["id"] for o in page]
        nxt = [link for link in links if link["rel"] == "next"]
        if not nxt:
            break
        marker = nxt[0]["href"].split("marker=")[1]
        query = [*base, ("limit", str(limit)), ("marker", marker)]
    assert seen == [o["id"] for o in everything]
    assert sorted(seen) == sorted(o["id"] for o in items)


def test_previous_link_pages_back() -> None:
    items = _items(10)
    page, links = paginate(items, [("limit", "3"), ("marker", "id-005")], "http://h/x")
    assert [o["id"] for o in page] == ["id-006", "id-007", "id-008"]
    prev = next(link for link in links if link["rel"] == "previous")
    assert prev["href"] == "http://h/x?limit=3&marker=id-006&page_reverse=True"
    back, _ = paginate(items, [("limit", "3"), ("marker", "id-006"), ("page_reverse", "True")], "http://h/x")
    assert [o["id"] for o in back] == ["id-003", "id-004", "id-005"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ([("marker", "nope")], "Supplied pagination marker 'nope' is not valid."),
        ([("sort", "bogus:asc")], "Supplied sort key 'bogus' is not valid."),
        ([("sort", "name:sideways")], "Supplied sort direction 'sideways' is not valid."),
        ([("limit", "ten")], "Supplied pagination limit 'ten' is not valid."),
        ([("bogus", "1")], "One or more arguments are either duplicate or invalid"),
        ([("name", "a"), ("name", "b")], "One or more arguments are either duplicate or invalid"),
    ],
)
def test_bad_list_arguments_are_400(query: list[tuple[str, str]], message: str) -> None:
    with pytest.raises(Fault) as err:
        paginate(_items(3), query, "http://h/x")
    assert (err.value.code, err.value.message) == (400, message)


def test_filters_and_tags() -> None:
    items = _items(6)
    assert [o["id"] for o in paginate(items, [("name", "n2")], "u")[0]] == ["id-001"]
    assert len(paginate(items, [("tags", "a")], "u")[0]) == 3
    assert len(paginate(items, [("not-tags", "a")], "u")[0]) == 3
    assert paginate(items, [("operating_status", "BOGUS")], "u")[0] == []


# ------------------------------------------------------------------ clock


class FakeWall:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_clock_maps_wall_time_times_speed_and_never_goes_back() -> None:
    wall = FakeWall()
    clock = SimClock(10.0, wall_now=wall)
    wall.t += 2
    assert clock.sim_now() == pytest.approx(20.0)
    clock.set_speed(0.5)
    wall.t += 4
    assert clock.sim_now() == pytest.approx(22.0)
    clock.pause()
    wall.t += 100
    assert clock.sim_now() == pytest.approx(22.0)
    assert clock.advance(3) == pytest.approx(25.0)
    clock.resume()
    wall.t += 2
    assert clock.sim_now() == pytest.approx(26.0)
    clock.catch_up(30.0)
    assert clock.sim_now() == pytest.approx(30.0)
    clock.catch_up(10.0)
    assert clock.sim_now() == pytest.approx(30.0)


def test_manual_clock_moves_only_by_hand() -> None:
    wall = FakeWall()
    clock = SimClock(0.0, wall_now=wall)
    wall.t += 50
    assert clock.sim_now() == 0.0 and not clock.running
    clock.advance(7.5)
    assert clock.sim_now() == 7.5
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        clock.set_speed(float("nan"))


def test_clock_held_back_runs_slower_instead_of_piling_up_work() -> None:
    wall = FakeWall()
    clock = SimClock(60.0, wall_now=wall)
    wall.t += 10  # the clock says 600 s, the twin only got to 300 s
    clock.hold_back(300.0)
    assert clock.sim_now() == pytest.approx(300.0)
    wall.t += 1
    assert clock.sim_now() == pytest.approx(360.0)  # still 60x from the new base
    clock.hold_back(400.0)  # ahead of the clock: nothing to hold back
    assert clock.sim_now() == pytest.approx(360.0)
