"""The live page's messages built from a real Twin: trees, HAProxy beside the API, traffic,
transitions, events, and bounded size over a long session (no browser)."""

from __future__ import annotations

import asyncio
import json
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbsim.scenario.loader import parse_scenario
from lbsim.server import ui
from lbsim.server.twin import Twin

WEB_TIER = """
version: 1
name: live-page
seed: 7
duration: 3600
loadbalancer:
  name: web-lb
  topology: SINGLE
  listeners:
    - {name: http, protocol: HTTP, protocol_port: 80, default_pool: web}
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: ROUND_ROBIN
      healthmonitor: {type: HTTP, delay: 5, timeout: 3, max_retries: 3, max_retries_down: 3}
      members:
        - {name: web-1, address: 10.0.0.11, protocol_port: 8080, concurrency: 8}
        - {name: web-2, address: 10.0.0.12, protocol_port: 8080, concurrency: 8}
        - {name: web-3, address: 10.0.0.13, protocol_port: 8080, concurrency: 8}
traffic:
  - listener: http
    arrival: {process: poisson, rate: RATE}
"""


def web_tier(rate: float = 20) -> Twin:
    return Twin(parse_scenario(WEB_TIER.replace("RATE", str(rate))))


def encode(msg: dict[str, Any]) -> str:
    """The SSE frame, which must be strict JSON (no NaN) for the browser's JSON.parse."""
    return ui.sse(msg["type"], msg)


def members(msg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        m["name"]: m for lb in msg["loadbalancers"] for li in lb["listeners"] for p in li["pools"] for m in p["members"]
    }


def pool(msg: dict[str, Any]) -> dict[str, Any]:
    return msg["loadbalancers"][0]["listeners"][0]["pools"][0]


def test_empty_cloud() -> None:
    feed = ui.LiveFeed(Twin())
    snap = feed.snapshot()
    encode(snap)
    assert snap["loadbalancers"] == [] and snap["traffic"] == {} and snap["events"] == []
    assert snap["clock"]["now"] == 0.0 and snap["window"] == ui.WINDOW
    delta = feed.delta()
    assert delta["type"] == "delta" and delta["loadbalancers"] == [] and delta["transitions"] == []


def test_snapshot_shows_the_tree_haproxy_and_traffic() -> None:
    twin = web_tier()
    twin.advance_to(60)
    snap = ui.LiveFeed(twin).snapshot()
    encode(snap)
    [lb] = snap["loadbalancers"]
    assert lb["name"] == "web-lb" and lb["provisioning_status"] == "ACTIVE" and lb["operating_status"] == "ONLINE"
    assert [a["role"] for a in lb["amphorae"]] == ["STANDALONE"]
    [li] = lb["listeners"]
    assert (li["name"], li["protocol"], li["protocol_port"]) == ("http", "HTTP", 80)
    assert lb["vip_address"] == twin.record("loadbalancer", lb["id"]).attrs["vip_address"]  # type: ignore[union-attr]
    assert pool(snap)["health_monitor"]["type"] == "HTTP"
    mems = members(snap)
    assert sorted(mems) == ["web-1", "web-2", "web-3"]
    for m in mems.values():
        assert m["haproxy"] == "UP" and m["operating_status"] == "ONLINE" and m["gap"]["agree"] is True
    series = snap["traffic"][li["id"]]
    # one point per complete second (the running second is not in yet)
    assert series["t"] == [float(s) for s in range(1, len(series["t"]) + 1)] and 59 <= series["t"][-1] <= 60
    assert 10 < sum(series["rate"]) / len(series["t"]) < 30  # Poisson at 20/s
    assert all(p is None or 0 < p < 1 for p in series["p95"])
    # the session's first transitions, with names instead of ids
    assert any(t["kind"] == "member" and t["name"] == "web-1" and t["new"] == "UP" for t in snap["transitions"])


def test_a_fault_shows_in_haproxy_first_then_in_the_api_with_the_gap() -> None:
    twin = web_tier()
    twin.advance_to(60)
    feed = ui.LiveFeed(twin)
    feed.snapshot()
    web1 = next(r.key for r in twin.records("member") if r.name == "web-1")
    twin.set_member_behaviour(web1, "refuse")
    seen: list[tuple[float, str, str, dict[str, Any]]] = []
    transitions: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    t = 60.0
    while t < 120:
        t += 0.5
        twin.advance_to(t)
        d = feed.delta()
        encode(d)
        transitions += d["transitions"]
        events += d["events"]
        m = members(d)["web-1"]
        seen.append((t, m["haproxy"], m["operating_status"], m["gap"]))
    # the control shows as an injected event, with the member's name
    assert [e["text"] for e in events] == ["member=web-1 behaviour=refuse"] and events[0]["at"] == 60.0
    t_down = next(t for t, hp, _, _ in seen if hp == "DOWN")
    t_error = next(t for t, _, api, _ in seen if api == "ERROR")
    assert 60 < t_down < t_error
    # while HAProxy says DOWN and the API still ONLINE, the page says how long the API is behind
    waiting = [(t, g) for t, hp, api, g in seen if hp == "DOWN" and api == "ONLINE"]
    assert waiting and all(g["agree"] is False and g["expected"] == "ERROR" for _, g in waiting)
    down_at = next(
        r["t"] for r in transitions if r["name"] == "web-1" and r["field"] == "data_plane_state" and r["new"] == "DOWN"
    )
    error_at = next(
        r["t"] for r in transitions if r["name"] == "web-1" and r["field"] == "operating_status" and r["new"] == "ERROR"
    )
    assert all(g["behind"] == pytest.approx(t - down_at, abs=1e-3) for t, g in waiting)
    # once the API followed, the gap is the time between the two transitions
    final = seen[-1][3]
    assert final == {"agree": True, "lag": pytest.approx(error_at - down_at, abs=1e-3)}
    assert final["lag"] > 0
    assert pool(d)["operating_status"] == "DEGRADED" and d["loadbalancers"][0]["operating_status"] == "DEGRADED"


def test_two_load_balancers_the_second_made_through_the_api() -> None:
    twin = web_tier()
    twin.advance_to(30)
    resp = twin.request("create", "loadbalancer", None, {"name": "lb-two", "vip_subnet_id": None})
    assert resp.ok, resp
    feed = ui.LiveFeed(twin)
    snap = feed.snapshot()
    assert [lb["name"] for lb in snap["loadbalancers"]] == ["web-lb", "lb-two"]
    assert snap["loadbalancers"][1]["provisioning_status"] == "PENDING_CREATE"
    assert any("api=create" in e["text"] and "lb-two" in e["text"] for e in snap["events"])
    twin.advance_to(150)  # amphora boot and agent calls: about a minute
    d = feed.delta()
    two = d["loadbalancers"][1]
    assert two["id"] == resp.key and two["provisioning_status"] == "ACTIVE" and two["listeners"] == []
    assert len(two["amphorae"]) == 1
    # a transition of the new LB carries its name
    assert any(t["id"] == resp.key and t["name"] == "lb-two" for t in d["transitions"])


def test_a_deleted_load_balancer_leaves_the_page_and_the_feed_forgets_its_members() -> None:
    twin = web_tier()
    twin.advance_to(30)
    feed = ui.LiveFeed(twin)
    feed.snapshot()
    before = feed.memory_footprint()
    lb = twin.records("loadbalancer")[0].key
    assert twin.request("delete", "loadbalancer", lb, {}, cascade=True).ok
    d = feed.delta()
    assert d["loadbalancers"][0]["provisioning_status"] == "PENDING_DELETE"
    twin.advance_to(120)
    assert feed.delta()["loadbalancers"] == []
    snap = feed.snapshot()
    assert snap["loadbalancers"] == [] and snap["traffic"] == {}
    assert feed.memory_footprint() < before  # the members' change times are gone (names stay, bounded)
    # its transitions keep their names after it is gone
    assert any(t["name"] == "web-lb" and t["new"] == "DELETED" for t in snap["transitions"])


def test_deltas_carry_only_new_traffic_seconds() -> None:
    twin = web_tier()
    twin.advance_to(20)
    feed = ui.LiveFeed(twin)
    [(lid, first)] = feed.snapshot()["traffic"].items()
    last = first["t"][-1]
    twin.advance_to(23)
    d = feed.delta()["traffic"][lid]
    assert d["t"] == [last + 1, last + 2, last + 3] and all(len(v) == 3 for v in d.values())
    assert feed.delta()["traffic"][lid]["t"] == []  # nothing new


def test_a_long_session_stays_bounded() -> None:
    """An hour and forty minutes of simulated time, a fault flapping all along: every message is
    bounded by the limits and the feed's own memory stops growing with the session."""
    twin = web_tier(rate=2)
    feed = ui.LiveFeed(twin, window=120)
    web = [r.key for r in twin.records("member")]
    sizes: list[int] = []
    footprints: list[int] = []
    t = 0.0
    for cycle in range(300):
        t += 20
        if cycle % 2 == 0:  # a control every 40 s: more events than MAX_EVENTS in the end
            twin.set_member_behaviour(web[(cycle // 2) % 3], "refuse" if cycle % 4 == 0 else "healthy")
        twin.advance_to(t)
        msg = feed.snapshot() if cycle % 10 == 0 else feed.delta()
        text = encode(msg)
        assert len(msg["transitions"]) <= ui.MAX_TRANSITIONS and len(msg["events"]) <= ui.MAX_EVENTS
        for series in msg["traffic"].values():
            assert all(len(col) <= 121 for col in series.values())
        if msg["type"] == "snapshot":
            sizes.append(len(text))
            footprints.append(feed.memory_footprint())
    assert len(twin.session_events()) > ui.MAX_EVENTS
    _, all_rows = twin.transitions_since(0)
    assert len(all_rows) > 2 * ui.MAX_TRANSITIONS  # the session outgrew what a message carries
    last = feed.snapshot()
    assert len(last["events"]) == ui.MAX_EVENTS and len(last["transitions"]) == ui.MAX_TRANSITIONS
    # once the window and the lists are full (the last third of the session), a snapshot stops growing
    steady = sizes[-10:]
    assert max(steady) <= 1.05 * min(steady) and max(sizes) <= 1.05 * min(steady)
    assert len(set(footprints)) == 1


class _Request:
    """Stands in for Starlette's request: disconnects after ``n`` checks."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.app = SimpleNamespace(state=SimpleNamespace(server=SimpleNamespace(should_exit=False)))

    async def is_disconnected(self) -> bool:
        self.n -= 1
        return self.n < 0


def test_event_stream_snapshots_then_deltas_and_stops_on_disconnect() -> None:
    twin = web_tier()
    twin.advance_to(10)
    world = ui.LiveWorld(twin=twin, clock=None)

    async def collect() -> list[str]:
        return [chunk async for chunk in ui.event_stream(_Request(6), world, interval=0.001, snapshot_every=3)]  # type: ignore[arg-type]

    chunks = asyncio.run(collect())
    assert chunks[0] == "retry: 2000\n\n"
    kinds = [c.split("\n", 1)[0] for c in chunks[1:]]
    assert kinds == ["event: snapshot", "event: delta", "event: delta"] * 2 + ["event: snapshot"]
    for c in chunks[1:]:
        data = json.loads(c.split("\n")[1].removeprefix("data: "))
        assert data["clock"]["now"] == 10.0


def test_event_stream_ends_when_the_server_should_exit() -> None:
    twin = web_tier()
    request = _Request(1000)
    world = ui.LiveWorld(twin=twin, clock=None)

    async def collect() -> list[str]:
        out = []
        async for chunk in ui.event_stream(request, world, interval=0.001):  # type: ignore[arg-type]
            out.append(chunk)
            if len(out) == 4:
                request.app.state.server.should_exit = True  # Ctrl-C
        return out

    chunks = asyncio.run(collect())
    assert len(chunks) == 4 and request.n > 990  # ended at once, not by a disconnect


# --------------------------------------------------------------------- property: nothing lost, nothing twice

steps = st.lists(
    st.tuples(
        st.floats(min_value=0.0, max_value=40.0),  # simulated seconds to advance
        st.sampled_from(["delta", "delta", "delta", "snapshot"]),
        st.sampled_from([None, "refuse", "healthy", "hang", "error"]),  # a control before advancing
        st.integers(min_value=0, max_value=2),  # which member
    ),
    min_size=1,
    max_size=25,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps)
def test_snapshot_plus_deltas_give_every_transition_event_and_second_once(plan: list[Any]) -> None:
    twin = web_tier(rate=3)
    keys = [r.key for r in twin.records("member")]
    feed = ui.LiveFeed(twin)
    first = feed.snapshot()
    got_transitions = list(first["transitions"])
    got_events = list(first["events"])
    seconds = {lid: list(s["t"]) for lid, s in first["traffic"].items()}
    for dt, kind, behaviour, which in plan:
        if behaviour is not None:
            twin.set_member_behaviour(keys[which], behaviour)
        twin.advance_to(twin.now + dt)
        msg = feed.snapshot() if kind == "snapshot" else feed.delta()
        encode(msg)
        if msg["type"] == "snapshot":  # the page replaces its state
            got_transitions = list(msg["transitions"])
            got_events = list(msg["events"])
            seconds = {lid: list(s["t"]) for lid, s in msg["traffic"].items()}
        else:
            got_transitions += msg["transitions"]
            got_events += msg["events"]
            for lid, s in msg["traffic"].items():
                seconds.setdefault(lid, []).extend(s["t"])
    _, every = twin.transitions_since(0)
    expected = [(round(tr.time, 6), tr.name, tr.field, tr.new) for tr in every]
    shown = [(tr["t"], tr["id"], tr["field"], tr["new"]) for tr in got_transitions]
    assert shown == expected[len(expected) - len(shown) :]  # the latest ones, in order, none twice
    assert len(shown) >= min(len(expected), ui.MAX_TRANSITIONS)
    controls = [(round(e["at"], 6), e["behaviour"]) for e in twin.session_events()]
    assert [(e["at"], e["text"].split("behaviour=")[1]) for e in got_events] == controls
    window = twin.traffic_window(ui.WINDOW)
    for lid, ts in seconds.items():
        assert ts == sorted(set(ts))  # strictly increasing: no second twice
        assert set(window[lid]["t"]) <= set(ts)  # and every second of the window is there
