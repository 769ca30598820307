"""Tests for lbsim.server.twin: the live world behind ``lbsim serve``.

Expected statuses and times come from reference/octavia-api.md (§4 locks and 409s, §5
PENDING windows, §7 operating status OFFLINE until the first heartbeat after ACTIVE) and
octavia-semantics.md §1 (heartbeat → ERROR/DEGRADED) with HAProxy's rise/fall counting
(haproxy-semantics.md): a member that refuses is DOWN after ``fall`` failed checks spaced
``delay`` apart, the next heartbeat shows it ERROR and its pool and LB DEGRADED. Durations
are the scenario's ``octavia.workers`` (lbsim defaults: LB create 60 s, child 1 s, LB
delete 10 s). Everything here is pure Python (no sockets).
"""

from __future__ import annotations

import gc
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from lbsim.api import run_scenario
from lbsim.octavia.objects import OPERATING_STATUSES
from lbsim.results.folder import status_tree_from_folder, summarise
from lbsim.scenario import model as m
from lbsim.scenario.errors import ScenarioError
from lbsim.scenario.loader import load_scenario, parse_scenario
from lbsim.server.twin import Twin, TwinError, TwinResponse
from lbsim.sim.engine import simulate
from lbsim.sim.world import LAT_BUFFER_KEPT, WINDOW_SECONDS, World, simulate_world

ROOT = Path(__file__).resolve().parents[1]
PROVISIONING = {"ACTIVE", "PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE", "DELETED", "ERROR"}
HB = 10.0  # heartbeat_interval default
DELAY, FALL, RISE = 5, 3, 3


def cloud(**octavia: Any) -> m.Scenario:
    """An empty cloud (``loadbalancers: []``) with the given octavia settings."""
    return m.Scenario.model_validate(
        {"name": "cloud", "duration": 1.0, "seed": 7, "loadbalancers": [], "octavia": octavia}
    )


def ok(resp: TwinResponse) -> str:
    assert resp.ok, (resp.code, resp.message)
    assert resp.key is not None
    return resp.key


def wait_active(t: Twin, lb: str, step: float = 0.5, limit: float = 600.0) -> float:
    """Advance until the LB is ACTIVE again; returns the time it was first seen ACTIVE."""
    end = t.now + limit
    while t.now < end:
        rec = t.record("loadbalancer", lb)
        assert rec is not None
        if rec.provisioning_status == "ACTIVE":
            return t.now
        t.advance_to(t.now + step)
    raise AssertionError(f"{lb} never became ACTIVE")


def first_change(t: Twin, kind: str, key: str, fld: str, new: str, after: float = 0.0) -> float:
    for row in t.world.timeline.rows:
        if row.object_type == kind and row.name == key and row.field == fld and row.new == new and row.time >= after:
            return row.time
    raise AssertionError(f"{kind} {key} {fld} never became {new} after {after}")


def web_tier(t: Twin, project: str = "p1", members: int = 3, port: int = 80) -> dict[str, Any]:
    """LB → HTTP listener → ROUND_ROBIN pool with an HTTP monitor and members, all by API."""
    lb = ok(
        t.request("create", "loadbalancer", None, {"name": "lb", "vip_subnet_id": "private-subnet"}, project_id=project)
    )
    wait_active(t, lb)
    li = ok(t.request("create", "listener", None, {"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": port}))
    wait_active(t, lb)
    pool = ok(t.request("create", "pool", None, {"listener_id": li, "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}))
    wait_active(t, lb)
    hm_body = {
        "pool_id": pool,
        "type": "HTTP",
        "delay": DELAY,
        "timeout": 3,
        "max_retries": RISE,
        "url_path": "/healthz",
    }
    hm = ok(t.request("create", "healthmonitor", None, hm_body))
    wait_active(t, lb)
    mems = []
    for i in range(members):
        body = {"pool_id": pool, "address": f"10.0.0.{11 + i}", "protocol_port": 8080, "name": f"web-{i}"}
        mems.append(ok(t.request("create", "member", None, {**body, "concurrency": 8})))
        wait_active(t, lb)
    return {"lb": lb, "listener": li, "pool": pool, "hm": hm, "members": mems}


# ---------------------------------------------------------------------------- life cycle


def test_two_load_balancers_in_two_projects_pending_then_active_then_online() -> None:
    t = Twin(cloud())
    a = ok(t.request("create", "loadbalancer", None, {"name": "a"}, project_id="p1"))
    t.advance_to(5.0)
    b = ok(t.request("create", "loadbalancer", None, {"name": "b", "topology": "ACTIVE_STANDBY"}, project_id="p2"))
    ra, rb = t.record("loadbalancer", a), t.record("loadbalancer", b)
    assert ra is not None and rb is not None
    assert (ra.provisioning_status, ra.operating_status) == ("PENDING_CREATE", "OFFLINE")
    assert (ra.project_id, rb.project_id) == ("p1", "p2")
    assert (ra.name, ra.created_at, rb.created_at) == ("a", 0.0, 5.0)
    assert ra.updated_at is None  # Octavia: null until the first change
    # create_loadbalancer takes 60 s (lbsim default): ACTIVE at 60 and 65 exactly
    t.advance_to(59.999)
    assert t.record("loadbalancer", a).provisioning_status == "PENDING_CREATE"  # type: ignore[union-attr]
    booting = {(r["loadbalancer_id"], r["role"], r["status"]): r["id"] for r in t.amphorae()}
    assert set(booting) == {(a, "STANDALONE", "BOOTING"), (b, "MASTER", "BOOTING"), (b, "BACKUP", "BOOTING")}
    t.advance_to(60.001)
    assert first_change(t, "loadbalancer", a, "provisioning_status", "ACTIVE") == pytest.approx(60.0)
    assert t.record("loadbalancer", a).operating_status == "OFFLINE"  # type: ignore[union-attr]
    assert t.record("loadbalancer", a).updated_at == pytest.approx(60.0)  # type: ignore[union-attr]
    t.advance_to(80.0)
    assert first_change(t, "loadbalancer", b, "provisioning_status", "ACTIVE") == pytest.approx(65.0)
    # §7: OFFLINE until the first heartbeat after ACTIVE, so ONLINE within one interval
    for lb, active in ((a, 60.0), (b, 65.0)):
        online = first_change(t, "loadbalancer", lb, "operating_status", "ONLINE")
        assert active < online <= active + HB
    amps = t.amphorae()
    assert sorted((r["loadbalancer_id"], r["role"]) for r in amps) == sorted(
        [(a, "STANDALONE"), (b, "MASTER"), (b, "BACKUP")]
    )
    assert len({r["id"] for r in amps}) == 3 and all(r["status"] == "ALLOCATED" for r in amps)
    assert {r["id"] for r in amps} == set(booting.values())  # the ids shown while booting
    assert all(r["created_at"] == pytest.approx(60.0 if r["loadbalancer_id"] == a else 65.0) for r in amps)
    assert [r.key for r in t.records("loadbalancer")] == [a, b]


def test_409_while_pending_and_child_windows() -> None:
    t = Twin(cloud())
    lb = ok(t.request("create", "loadbalancer", None, {"name": "lb"}))
    t.advance_to(1.0)
    resp = t.request("create", "listener", None, {"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 80})
    assert (resp.code, resp.faultcode) == (409, "Client")
    assert resp.message == f"Load Balancer {lb} is immutable and cannot be updated."
    upd = t.request("update", "loadbalancer", lb, {"name": "renamed"})
    assert upd.code == 409 and upd.message == f"Invalid state PENDING_CREATE of loadbalancer resource {lb}"
    wait_active(t, lb)
    start = t.now
    li = ok(t.request("create", "listener", None, {"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 80}))
    assert t.record("listener", li).provisioning_status == "PENDING_CREATE"  # type: ignore[union-attr]
    assert t.record("loadbalancer", lb).provisioning_status == "PENDING_UPDATE"  # type: ignore[union-attr]
    again = t.request("create", "listener", None, {"loadbalancer_id": lb, "protocol": "TCP", "protocol_port": 81})
    assert again.code == 409
    done = wait_active(t, lb, step=0.25)
    assert done - start == pytest.approx(1.0, abs=0.26)  # workers.update: 1 s
    assert t.record("listener", li).provisioning_status == "ACTIVE"  # type: ignore[union-attr]
    # a refused call is not part of the session
    kinds = [(e["api"], next(k for k in ("listener", "loadbalancer") if k in e)) for e in t.session_events()]
    assert kinds == [("create", "loadbalancer"), ("create", "listener")]


def test_bad_bodies_are_answers_not_exceptions() -> None:
    t = Twin(cloud())
    lb = ok(t.request("create", "loadbalancer", None, {"name": "lb"}))
    wait_active(t, lb)
    bad = t.request("create", "listener", None, {"loadbalancer_id": lb, "protocol": "HTTP", "protocol_port": 70000})
    assert bad.code == 400 and "protocol_port" in bad.message
    assert t.request("create", "listener", None, {"protocol": "HTTP", "protocol_port": 80}).code == 400
    assert t.request("create", "member", None, {"address": "10.0.0.5", "protocol_port": 80}).code == 400
    missing = t.request(
        "create", "pool", None, {"loadbalancer_id": "nope", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    )
    assert missing.code == 404
    assert t.request("update", "pool", "nope", {"name": "x"}).code == 404
    assert t.request("delete", "loadbalancer", None, {}).code == 404
    assert t.request("explode", "loadbalancer", lb, {}).code == 405
    topo = t.request("create", "loadbalancer", None, {"topology": "TRIANGLE"})
    assert topo.code == 400 and "topology" in topo.message


def test_cascade_delete_removes_the_tree_and_the_amphorae() -> None:
    t = Twin(cloud())
    tier = web_tier(t, members=2)
    lb = tier["lb"]
    refused = t.request("delete", "loadbalancer", lb, {})
    assert (
        refused.code == 400
        and refused.message == f"Validation failure: Cannot delete Load Balancer {lb} - it has children"
    )
    start = t.now
    assert t.request("delete", "loadbalancer", lb, {}, cascade=True).code == 204
    assert t.record("loadbalancer", lb).provisioning_status == "PENDING_DELETE"  # type: ignore[union-attr]
    t.advance_to(start + 9.9)
    assert t.record("listener", tier["listener"]) is not None
    t.advance_to(start + 10.1)  # workers.delete_loadbalancer: 10 s
    assert t.record("loadbalancer", lb).provisioning_status == "DELETED"  # type: ignore[union-attr]
    for kind in ("listener", "pool", "healthmonitor"):
        assert t.record(kind, tier[kind if kind != "healthmonitor" else "hm"]) is None
    assert all(t.record("member", k) is None for k in tier["members"])
    assert t.records("loadbalancer") == [] and t.records("member") == []
    assert t.amphorae() == []
    assert t.request("update", "loadbalancer", lb, {"name": "x"}).code == 404


# ---------------------------------------------------------------------------- faults and replay


def _fault_session() -> tuple[Twin, dict[str, Any], float, float]:
    t = Twin(cloud())
    tier = web_tier(t)
    t.set_traffic(tier["listener"], 50.0)
    t.advance_to(t.now + 30)
    t_refuse = t.now
    t.set_member_behaviour(tier["members"][0], "refuse")
    t.advance_to(t_refuse + 60)
    t_heal = t.now
    t.set_member_behaviour(tier["members"][0], "healthy")
    t.advance_to(t_heal + 60)
    return t, tier, t_refuse, t_heal


def test_member_refuses_then_heals_statuses_follow_checks_and_heartbeats(tmp_path: Path) -> None:
    t, tier, t_refuse, t_heal = _fault_session()
    bad = tier["members"][0]
    down = first_change(t, "member", bad, "data_plane_state", "DOWN", t_refuse)
    # fall=3 checks delay=5 s apart; the first check after the fault comes within one delay
    assert (FALL - 1) * DELAY <= down - t_refuse <= FALL * DELAY
    err = first_change(t, "member", bad, "operating_status", "ERROR", t_refuse)
    assert down <= err <= down + HB  # the next heartbeat
    assert first_change(t, "pool", tier["pool"], "operating_status", "DEGRADED", t_refuse) == err
    assert first_change(t, "loadbalancer", tier["lb"], "operating_status", "DEGRADED", t_refuse) == err
    # the listener follows its frontend (OPEN), not its pool
    assert t.world.timeline.value_at("listener", tier["listener"], "operating_status", err) == "ONLINE"
    up = first_change(t, "member", bad, "data_plane_state", "UP", t_heal)
    assert (RISE - 1) * DELAY <= up - t_heal <= RISE * DELAY
    back = first_change(t, "member", bad, "operating_status", "ONLINE", t_heal)
    assert up <= back <= up + HB
    assert first_change(t, "loadbalancer", tier["lb"], "operating_status", "ONLINE", t_heal) == back
    tree = t.status_tree(tier["lb"])["loadbalancer"]
    assert tree["operating_status"] == "ONLINE"
    assert [mm["name"] for mm in tree["listeners"][0]["pools"][0]["members"]] == ["web-0", "web-1", "web-2"]
    assert t.haproxy_view(tier["lb"]) == dict.fromkeys(tier["members"], "UP")
    stats = t.stats("loadbalancer", tier["lb"])
    assert stats["total_connections"] > 0.8 * 50 * 150
    assert stats["bytes_in"] == 300 * stats["total_connections"]  # request_bytes per connection
    assert stats["bytes_out"] == pytest.approx(3000 * stats["total_connections"], rel=0.01)  # minus in flight
    text = t.metrics_text()
    for line in text.splitlines():  # Prometheus exposition: comments or `name{labels} value`
        assert line.startswith("# ") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? [0-9.e+-]+", line), line
    conns = f'lbsim_listener_connections_total{{loadbalancer="{tier["lb"]}",listener="{tier["listener"]}"}}'
    assert int(next(x for x in text.splitlines() if x.startswith(conns)).split()[-1]) >= stats["total_connections"]
    win = t.traffic_window(60)[tier["listener"]]
    assert len(win["t"]) == 60 and 25 < sum(win["rate"]) / 60 < 75
    assert all(p is not None and 0 < p < 1 for p in win["p95"])


def test_saved_session_replays_byte_for_byte(tmp_path: Path) -> None:
    t, tier, _t_refuse, _ = _fault_session()
    folder = t.save(tmp_path / "session")
    expected = {"scenario.yaml", "summary.json", "members.csv", "transitions.csv", "status.json", "api.csv"}
    assert expected <= {p.name for p in folder.iterdir()}
    sc = load_scenario(folder / "scenario.yaml")  # validated: every event form is valid
    assert sc.loadbalancers == [] and sc.duration == pytest.approx(t.now)
    kinds = [next(k for k in ("api", "traffic", "member") if k in ev) for ev in t.session_events()]
    assert kinds.count("api") == 7 and kinds.count("traffic") == 1 and kinds.count("member") == 2
    replay = run_scenario(sc)
    replay.save(tmp_path / "replay")
    got = (tmp_path / "replay" / "transitions.csv").read_bytes()
    assert got == (folder / "transitions.csv").read_bytes()
    assert b"DEGRADED" in got and b"ERROR" in got
    # the whole folder's status tree too: the LB made through the API, with its children
    status = (tmp_path / "replay" / "status.json").read_bytes()
    assert status == (folder / "status.json").read_bytes()
    tree = json.loads(status)
    assert [lb["loadbalancer"]["name"] for lb in tree["loadbalancers"]] == [tier["lb"]]
    assert tree["statuses"]["loadbalancer"]["listeners"][0]["name"] == tier["listener"]
    # and `lbsim status` rebuilds it from the folder, at the end and earlier
    assert status_tree_from_folder(tmp_path / "replay") == tree
    early = status_tree_from_folder(tmp_path / "replay", at=30.0)["statuses"]["loadbalancer"]
    assert (early["provisioning_status"], early["operating_status"], early["listeners"]) == (
        "PENDING_CREATE",
        "OFFLINE",
        [],
    )
    # and a Twin started from the saved scenario replays it live
    t2 = Twin(sc)
    t2.advance_to(t.now)
    t2.save(tmp_path / "again")
    assert (tmp_path / "again" / "transitions.csv").read_bytes() == got


def test_two_load_balancers_are_isolated() -> None:
    t = Twin(cloud())
    one = web_tier(t, project="p1", members=2)
    two = web_tier(t, project="p2", members=2, port=8080)
    t.set_traffic(one["listener"], 20.0)
    t.set_traffic(two["listener"], 20.0)
    t.advance_to(t.now + 20)
    mark = len(t.world.timeline.rows)
    amp = next(r["id"] for r in t.amphorae() if r["loadbalancer_id"] == one["lb"])
    t.set_member_behaviour(one["members"][1], "hang")
    t.fail_amphora(amp)
    t.advance_to(t.now + 200)
    two_keys = {two["lb"], two["listener"], two["pool"], two["hm"], *two["members"]}
    later = [r for r in t.world.timeline.rows[mark:] if r.name in two_keys]
    assert later == []  # nothing about the second LB changed
    assert t.status_tree(two["lb"])["loadbalancer"]["operating_status"] == "ONLINE"
    # the first went through the health manager's failover and shows the hung member
    rows = t.world.timeline.rows[mark:]
    assert any(r.name == one["lb"] and r.new == "PENDING_UPDATE" for r in rows)
    assert any(r.object_type == "amphora" and r.name == amp and r.new == "DELETED" for r in rows)
    assert t.record("member", one["members"][1]).operating_status == "ERROR"  # type: ignore[union-attr]
    assert t.status_tree(one["lb"])["loadbalancer"]["operating_status"] == "DEGRADED"


def test_amphora_partition_is_failed_over_while_traffic_flows() -> None:
    t = Twin(cloud())
    tier = web_tier(t, members=1)
    t.set_traffic(tier["listener"], 20.0)
    t.advance_to(t.now + 5)
    amp = t.amphorae()[0]["id"]
    cut = t.now
    t.partition_amphora(amp, True)
    t.advance_to(cut + 30)
    assert t.amphorae()[0]["id"] == amp  # heartbeats lost, but not yet stale (60 s)
    assert all(e == 0 for e in t.traffic_window(20)[tier["listener"]]["error_rate"])
    t.advance_to(cut + 200)
    new = [r["id"] for r in t.amphorae()]
    assert amp not in new and len(new) == 1
    stale = first_change(t, "amphora", amp, "provisioning_status", "PENDING_DELETE", cut)
    # stale once the last heartbeat before the cut is heartbeat_timeout (60 s) old; scan every 3 s
    assert 60.0 - HB <= stale - cut <= 60.0 + 3.0


def test_operator_amphora_failover_and_controls_validate() -> None:
    t = Twin(cloud())
    tier = web_tier(t, members=1)
    amp = t.amphorae()[0]["id"]
    assert t.failover_amphora("nope").code == 404
    resp = t.failover_amphora(amp)
    assert resp.code == 202
    assert t.failover_amphora(amp).code in (404, 409)
    assert t.record("loadbalancer", tier["lb"]).provisioning_status == "PENDING_UPDATE"  # type: ignore[union-attr]
    wait_active(t, tier["lb"])
    assert [r["id"] for r in t.amphorae()] != [amp]
    with pytest.raises(TwinError, match="not found"):
        t.set_member_behaviour("nope", "refuse")
    with pytest.raises(TwinError, match="behaviour"):
        t.set_member_behaviour(tier["members"][0], "explode")
    with pytest.raises(TwinError):
        t.set_member_behaviour(tier["members"][0], "error", status=42)
    with pytest.raises(TwinError, match="period"):
        t.set_member_behaviour(tier["members"][0], "flap")
    t.set_member_behaviour(tier["members"][0], "flap", period=20, duty=0.5, fault="refuse")
    assert t.session_events()[-1] == {
        "at": t.now,
        "member": tier["members"][0],
        "behaviour": "flap",
        "period": 20,
        "duty": 0.5,
        "fault": "refuse",
    }
    with pytest.raises(TwinError, match="rate"):
        t.set_traffic(tier["listener"], -1)
    with pytest.raises(TwinError, match="not found"):
        t.fail_amphora("nope")


# ---------------------------------------------------------------------------- scenarios


def test_twin_from_a_scenario_keys_by_uuid_and_fires_its_events() -> None:
    sc = load_scenario(ROOT / "scenarios" / "default.yaml")
    t = Twin(sc)
    lbs = t.records("loadbalancer")
    assert [r.name for r in lbs] == ["lb1"]
    members = {r.name: r.key for r in t.records("member")}
    assert set(members) == {"web-1", "web-2", "web-3"}
    assert all(len(k) == 36 for k in members.values())
    t.advance_to(150.0)  # the scenario's event at 120 s made web-1 refuse
    assert t.record("member", members["web-1"]).operating_status == "ERROR"  # type: ignore[union-attr]
    assert t.status_tree(lbs[0].key)["loadbalancer"]["operating_status"] == "DEGRADED"
    t.advance_to(300.0)
    assert t.record("member", members["web-1"]).operating_status == "ONLINE"  # type: ignore[union-attr]


def test_objects_a_scenario_creates_later_are_records_with_their_names() -> None:
    text = (
        (ROOT / "scenarios" / "default.yaml")
        .read_text()
        .replace(
            "events:\n",
            "events:\n  - {at: 50, api: create, member: web-4, pool: web, set: {address: 10.0.0.14, protocol_port: 8080}}\n",
        )
    )
    t = Twin(parse_scenario(text, "four.yaml"))
    t.advance_to(49.0)
    assert [r.name for r in t.records("member")] == ["web-1", "web-2", "web-3"]
    t.advance_to(80.0)
    recs = t.records("member")
    assert [r.name for r in recs] == ["web-1", "web-2", "web-3", "web-4"]
    assert (recs[3].created_at, recs[3].provisioning_status, recs[3].attrs["address"]) == (50.0, "ACTIVE", "10.0.0.14")
    # ACTIVE after workers.update (51 s), then ONLINE at the next heartbeat: its last change
    assert recs[3].operating_status == "ONLINE" and 51.0 < (recs[3].updated_at or 0.0) <= 51.0 + HB
    assert t.session_events() == []  # the scenario's own events are not the session's


def test_a_world_runs_one_lb_scenarios_exactly_as_the_engine() -> None:
    sc = load_scenario(ROOT / "scenarios" / "regression" / "h-conflict-and-revert.yaml")
    a, b = simulate(sc), simulate_world(sc)
    assert a.timeline.frame().equals(b.timeline.frame())
    assert (a.dp.ok, a.dp.errors, a.heartbeats) == (b.dp.ok, b.dp.errors, b.heartbeats)


def test_loadbalancers_list_and_event_validation() -> None:
    text = """
name: two
duration: 200
loadbalancers:
  - name: a
    listeners: [{name: la, protocol: HTTP, protocol_port: 80, default_pool: pa}]
    pools: [{name: pa, protocol: HTTP, lb_algorithm: ROUND_ROBIN,
             members: [{name: ma, address: 10.0.0.5, protocol_port: 80}]}]
  - name: b
    listeners: [{name: lb-l, protocol: HTTP, protocol_port: 80, default_pool: pb}]
    pools: [{name: pb, protocol: HTTP, lb_algorithm: ROUND_ROBIN,
             members: [{name: mb, address: 10.0.0.6, protocol_port: 80}]}]
traffic: [{listener: la, arrival: {process: poisson, rate: 20}}]
events:
  - {at: 10, traffic: lb-l, rate: 30}
  - {at: 20, member: mb, behaviour: error}
  - {at: 30, amphora: STANDALONE, loadbalancer: b, behaviour: fail}
  - {at: 40, api: create, loadbalancer: c, set: {topology: ACTIVE_STANDBY}}
"""
    sc = parse_scenario(text, "two.yaml")
    assert [lb.name for lb in sc.all_loadbalancers] == ["a", "b"]
    raw = simulate_world(sc)
    tl = raw.timeline
    assert tl.value_at("loadbalancer", "a", "operating_status", 199) == "ONLINE"
    assert raw.dp.member_errors[1].get("500", 0) > 0 and raw.dp.member_errors[0] == {}
    failed_over = [r for r in tl.rows if r.object_type == "amphora" and r.new == "DELETED"]
    # only b's amphora (b is not the first tree: its amphorae have UUIDs) was replaced
    assert len(failed_over) == 1 and len(failed_over[0].name) == 36 and 90 < failed_over[0].time < 200
    assert tl.value_at("loadbalancer", "b", "provisioning_status", 199) == "ACTIVE"
    assert tl.value_at("loadbalancer", "c", "provisioning_status", 199) == "ACTIVE"
    assert raw.dp.member_ok(0) > 0 and raw.member_names[:2] == ["ma", "mb"]
    with pytest.raises(ScenarioError, match="either 'loadbalancer' or 'loadbalancers'"):
        parse_scenario(text + "loadbalancer: {name: x}\n", "both.yaml")
    bad = text.replace("traffic: lb-l", "traffic: nope").replace("loadbalancer: b,", "loadbalancer: zz,")
    with pytest.raises(ScenarioError) as err:
        parse_scenario(bad, "bad.yaml")
    msg = str(err.value)
    assert "no listener named 'nope'" in msg and "no loadbalancer named 'zz'" in msg
    single = (ROOT / "scenarios" / "default.yaml").read_text()
    single = single.replace("events:\n", "events:\n  - {at: 5, api: create, loadbalancer: lb2}\n")
    with pytest.raises(ScenarioError, match="use 'loadbalancers:'"):
        parse_scenario(single, "single.yaml")
    net = (
        text
        + "network:\n  networks: [{name: n, subnets: [{name: s1, cidr: 10.1.0.0/16}, {name: s2, cidr: 10.1.2.0/24}]}]\n"
    )
    with pytest.raises(ScenarioError, match="overlaps subnet 's1'"):
        parse_scenario(net, "net.yaml")
    vip = text.replace("  - name: b\n", "  - name: b\n    vip_subnet: public-subnet\n    vip_address: 10.0.0.9\n")
    with pytest.raises(ScenarioError, match=r"10\.0\.0\.9 is not an address of subnet 'public-subnet'"):
        parse_scenario(vip, "vip.yaml")
    t = Twin(parse_scenario(vip.replace("10.0.0.9", "203.0.113.9"), "vip.yaml"))
    vips = {r.name: (r.attrs["vip_address"], r.attrs["vip_subnet_id"]) for r in t.records("loadbalancer")}
    assert vips == {"a": ("10.0.0.2", "private-subnet"), "b": ("203.0.113.9", "public-subnet")}


def test_traffic_to_a_listener_created_later_starts_when_it_exists() -> None:
    text = """
name: later
duration: 200
loadbalancers: []
traffic: [{listener: web, arrival: {process: poisson, rate: 20}}]
events:
  - {at: 0, api: create, loadbalancer: lb}
  - {at: 70, api: create, listener: web, loadbalancer: lb, set: {protocol: HTTP, protocol_port: 80}}
"""
    raw = simulate_world(parse_scenario(text, "later.yaml"))
    # no pool: every request gets HAProxy's 503, from the listener's creation on (not before)
    assert raw.dp.errors.get("503", 0) > 0.8 * 20 * 120
    assert raw.dp.errors.get("connect", 0) < 0.2 * 20 * 70

    # and random failures of a member made later start on its load balancer once it exists
    text += """
  - {at: 80, api: create, pool: p, listener: web, set: {protocol: HTTP, lb_algorithm: ROUND_ROBIN}}
  - {at: 90, api: create, member: m1, pool: p, set: {address: 10.0.0.7, protocol_port: 80}}
failures: [{members: [m1], mttf: {dist: constant, value: 20}, mttr: {dist: constant, value: 10}, fault: error}]
"""
    raw = simulate_world(parse_scenario(text, "later.yaml"))
    assert raw.dp.member_errors[0].get("500", 0) > 0
    times = [f.time for f in raw.faults if f.kind == "stochastic_error"]
    # in HAProxy from 91 s (create job), polled once a second; then up 20 s, down 10 s
    assert 111.0 <= times[0] <= 112.0 and times[1] - times[0] == 30.0


def test_a_deleted_load_balancer_key_can_be_created_again() -> None:
    text = """
name: again
duration: 400
loadbalancers:
  - name: a
    listeners: [{name: l, protocol: HTTP, protocol_port: 80}]
events:
  - {at: 10, api: delete, loadbalancer: a, cascade: true}
  - {at: 30, api: create, loadbalancer: a}
"""
    raw = simulate_world(parse_scenario(text, "again.yaml"))
    tl = raw.timeline
    assert tl.value_at("loadbalancer", "a", "provisioning_status", 25) == "DELETED"
    assert tl.value_at("loadbalancer", "a", "provisioning_status", 89) == "PENDING_CREATE"
    assert tl.value_at("loadbalancer", "a", "provisioning_status", 91) == "ACTIVE"
    assert tl.value_at("loadbalancer", "a", "operating_status", 399) == "ONLINE"
    amps = {
        name: tl.current("amphora", name, "provisioning_status") for kind, name in tl.objects() if kind == "amphora"
    }
    assert sorted(amps.values()) == ["ALLOCATED", "DELETED"]  # the old one deleted, a new one built
    # the deleted amphora's health row went with it: no failover of the new load balancer
    assert not any(r.new in ("PENDING_UPDATE", "FAILOVER_STOPPED") for r in tl.rows if r.time > 30)


# ---------------------------------------------------------------------------- bounded memory


def _sizes(t: Twin) -> dict[str, int]:
    w = t.world
    out = {
        "timeline": len(w.timeline.rows),
        "api_calls": len(w.api_calls),
        "fast": len(w.env.fast),
        "queue": len(w.env._queue),
        "windows": sum(len(x.rows) for x in w.windows.values()),
    }
    for k, rt in enumerate(w.runtimes.values()):
        dp = rt.dp
        out[f"stats_rows{k}"] = len(rt.hm.stats_rows)
        out[f"samples{k}"] = len(dp.samples)
        out[f"lat_buffer{k}"] = len(dp.latency._lat)
        out[f"ok_per_second{k}"] = dp.latency.ok_per_second.size
        out[f"errors{k}"] = len(getattr(dp.per_second_err, "counts", dp.per_second_err))
        out[f"log{k}"] = len(dp.log)
    return out


def test_memory_stays_bounded_over_six_simulated_hours() -> None:
    t = Twin(cloud())
    tier = web_tier(t, members=2)
    t.set_traffic(tier["listener"], 3.0)
    t.set_member_behaviour(tier["members"][1], "error", status=503)  # errors every second too
    t.advance_to(t.now + WINDOW_SECONDS + 100)
    gc.collect()
    before, objs_before = _sizes(t), len(gc.get_objects())
    t.advance_to(6 * 3600.0)
    gc.collect()
    after, objs_after = _sizes(t), len(gc.get_objects())
    assert after["windows"] == WINDOW_SECONDS  # a full window, no more
    for k, v in before.items():
        if k in ("fast", "queue"):
            assert after[k] <= v + 50, k  # in-flight requests and timers only
        elif k.startswith("lat_buffer"):
            assert after[k] <= LAT_BUFFER_KEPT, k
        else:
            assert after[k] <= max(v, 2 * 4096 if k.startswith("stats_rows") else v), k
    assert objs_after - objs_before < 2000
    assert t.stats("listener", tier["listener"])["total_connections"] > 3 * 6 * 3600 * 0.9


# ---------------------------------------------------------------------------- random sessions


class RandomSessions(RuleBasedStateMachine):
    """Random API calls, controls and clock steps: the Twin never raises, statuses stay in
    Octavia's sets, and answers are Octavia's codes."""

    def __init__(self) -> None:
        super().__init__()
        fast = {"dist": "constant", "value": 2.0}
        self.t = Twin(cloud(workers={"create_loadbalancer": fast, "delete_loadbalancer": fast}))
        self.codes: set[int] = set()

    def keys(self, kind: str) -> list[str]:
        return [r.key for r in self.t.records(kind)] + ["missing"]

    def answer(self, resp: TwinResponse) -> None:
        assert resp.code in {200, 201, 202, 204, 400, 404, 409, 501}, resp
        self.codes.add(resp.code)

    @rule(topology=st.sampled_from(["SINGLE", "ACTIVE_STANDBY"]))
    def create_lb(self, topology: str) -> None:
        self.answer(self.t.request("create", "loadbalancer", None, {"name": "x", "topology": topology}))

    @rule(data=st.data(), proto=st.sampled_from(["HTTP", "TCP", "UDP", "PROMETHEUS"]), port=st.integers(79, 81))
    def create_listener(self, data: st.DataObject, proto: str, port: int) -> None:
        lb = data.draw(st.sampled_from(self.keys("loadbalancer")))
        body = {"loadbalancer_id": lb, "protocol": proto, "protocol_port": port}
        self.answer(self.t.request("create", "listener", None, body))

    @rule(data=st.data(), alg=st.sampled_from(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP_PORT"]))
    def create_pool(self, data: st.DataObject, alg: str) -> None:
        parent = data.draw(st.sampled_from(["listener_id", "loadbalancer_id"]))
        key = data.draw(st.sampled_from(self.keys("listener" if parent == "listener_id" else "loadbalancer")))
        proto = data.draw(st.sampled_from(["HTTP", "TCP", "UDP"]))
        self.answer(self.t.request("create", "pool", None, {parent: key, "protocol": proto, "lb_algorithm": alg}))

    @rule(data=st.data(), port=st.integers(1, 3))
    def create_member(self, data: st.DataObject, port: int) -> None:
        pool = data.draw(st.sampled_from(self.keys("pool")))
        body = {
            "pool_id": pool,
            "address": f"10.0.0.{port}",
            "protocol_port": port,
            "weight": data.draw(st.integers(0, 3)),
        }
        self.answer(self.t.request("create", "member", None, body))

    @rule(data=st.data(), typ=st.sampled_from(["HTTP", "TCP", "PING"]))
    def create_hm(self, data: st.DataObject, typ: str) -> None:
        pool = data.draw(st.sampled_from(self.keys("pool")))
        body = {"pool_id": pool, "type": typ, "delay": 2, "timeout": 1, "max_retries": 2}
        self.answer(self.t.request("create", "healthmonitor", None, body))

    @rule(data=st.data(), kind=st.sampled_from(["loadbalancer", "listener", "pool", "member", "healthmonitor"]))
    def update(self, data: st.DataObject, kind: str) -> None:
        key = data.draw(st.sampled_from(self.keys(kind)))
        body = data.draw(
            st.sampled_from(
                [
                    {"admin_state_up": False},
                    {"admin_state_up": True},
                    {"name": "n", "description": "d", "tags": ["t"]},
                    {"weight": None, "backup": True},
                    {"delay": None},
                    {"url_path": None, "max_retries_down": 1, "delay": 1},
                    {"connection_limit": None, "timeout_member_data": 1000},
                    {"default_pool_id": None},
                    {"lb_algorithm": "SOURCE_IP_PORT"},
                    {"lb_algorithm": "LEAST_CONNECTIONS", "session_persistence": {"type": "SOURCE_IP"}},
                    {"session_persistence": {"type": "APP_COOKIE"}},
                    {"protocol": "TCP"},
                    {},
                ]
            )
        )
        self.answer(self.t.request("update", kind, key, body))

    @rule(data=st.data())
    def set_default_pool(self, data: st.DataObject) -> None:
        listener = data.draw(st.sampled_from(self.keys("listener")))
        pool = data.draw(st.sampled_from([*self.keys("pool"), None]))
        self.answer(self.t.request("update", "listener", listener, {"default_pool_id": pool}))

    @rule(data=st.data(), kind=st.sampled_from(["loadbalancer", "listener", "pool", "member", "healthmonitor"]))
    def delete(self, data: st.DataObject, kind: str) -> None:
        key = data.draw(st.sampled_from(self.keys(kind)))
        self.answer(self.t.request("delete", kind, key, {}, cascade=data.draw(st.booleans())))

    @rule(data=st.data())
    def failover(self, data: st.DataObject) -> None:
        self.answer(
            self.t.request("failover", "loadbalancer", data.draw(st.sampled_from(self.keys("loadbalancer"))), {})
        )

    @rule(data=st.data(), behaviour=st.sampled_from(["healthy", "refuse", "hang", "error", "slow"]))
    def member_fault(self, data: st.DataObject, behaviour: str) -> None:
        key = data.draw(st.sampled_from(self.keys("member")))
        if key == "missing":
            with pytest.raises(TwinError):
                self.t.set_member_behaviour(key, behaviour)
        else:
            self.t.set_member_behaviour(key, behaviour)

    @precondition(lambda self: bool(self.t.amphorae()))
    @rule(data=st.data(), what=st.sampled_from(["fail", "cut", "heal", "failover"]))
    def amphora(self, data: st.DataObject, what: str) -> None:
        row = data.draw(st.sampled_from(self.t.amphorae()))
        amp = row["id"]
        if row["status"] == "BOOTING":
            if what == "failover":
                assert self.t.failover_amphora(amp).code == 409
            else:
                with pytest.raises(TwinError, match="booting"):
                    self.t.fail_amphora(amp)
            return
        if what == "fail":
            self.t.fail_amphora(amp)
        elif what == "failover":
            self.answer(self.t.failover_amphora(amp))
        else:
            self.t.partition_amphora(amp, what == "cut")

    @precondition(lambda self: bool(self.t.records("listener")))
    @rule(data=st.data(), rate=st.sampled_from([None, 5.0, 20.0]))
    def traffic(self, data: st.DataObject, rate: float | None) -> None:
        self.t.set_traffic(data.draw(st.sampled_from([r.key for r in self.t.records("listener")])), rate)

    @rule(dt=st.floats(0.0, 40.0))
    def advance(self, dt: float) -> None:
        self.t.advance_to(self.t.now + dt)

    @invariant()
    def statuses_in_octavia_sets(self) -> None:
        for kind in ("loadbalancer", "listener", "pool", "member", "healthmonitor"):
            for rec in self.t.records(kind):
                assert rec.provisioning_status in PROVISIONING, rec
                assert rec.operating_status in OPERATING_STATUSES, rec
                tree = self.t.status_tree(rec.key) if kind == "loadbalancer" else None
                if tree:
                    assert tree["loadbalancer"]["id"] == rec.key
        for row in self.t.amphorae():
            assert row["status"] in {"BOOTING", "ALLOCATED", "PENDING_DELETE", "ERROR", "FAILOVER_STOPPED"}

    def teardown(self) -> None:
        # whatever happened, the recorded events replay it: same transitions, same times
        sc = self.t.replay_scenario()
        raw = simulate_world(sc)
        assert raw.timeline.rows == self.t.timeline_before(self.t.horizon).rows


TestRandomSessions = RandomSessions.TestCase
TestRandomSessions.settings = settings(
    max_examples=20, stateful_step_count=25, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def test_random_session_replays(tmp_path: Path) -> None:
    """A session of every kind of call, including refused ones and an LB delete, replays."""
    fast = {"dist": "constant", "value": 3.0}
    t = Twin(cloud(workers={"create_loadbalancer": fast}))
    tiers = [web_tier(t, members=2), web_tier(t, members=1, port=81)]
    t.set_traffic(tiers[0]["listener"], 30.0)
    t.set_traffic(tiers[1]["listener"], 10.0)
    t.advance_to(t.now + 7.3)
    t.request("update", "member", tiers[0]["members"][0], {"weight": 0})
    t.request("update", "member", tiers[0]["members"][1], {"weight": 2})  # 409 while PENDING
    t.advance_to(t.now + 4.2)
    t.request("update", "healthmonitor", tiers[0]["hm"], {"delay": 2, "max_retries_down": 1})
    t.partition_amphora(t.amphorae()[0]["id"], True)
    t.set_member_behaviour(tiers[1]["members"][0], "slow", factor=20)
    t.advance_to(t.now + 100)
    t.set_traffic(tiers[0]["listener"], None)
    t.request("delete", "loadbalancer", tiers[1]["lb"], {}, cascade=True)
    t.advance_to(t.now + 50.5)
    folder = t.save(tmp_path / "s")
    replay = run_scenario(load_scenario(folder / "scenario.yaml"))
    replay.save(tmp_path / "r")
    assert (tmp_path / "r" / "transitions.csv").read_bytes() == (folder / "transitions.csv").read_bytes()


QUICK_SCENARIOS = [
    "default.yaml",
    "failures/amphora-active-standby.yaml",
    "failures/partition.yaml",
    "failures/flapping-member.yaml",
    "regression/h-conflict-and-revert.yaml",
]
ALL_SCENARIOS = sorted(str(p.relative_to(ROOT / "scenarios")) for p in (ROOT / "scenarios").rglob("*.yaml"))


def _twin_replays(name: str, tmp_path: Path, until: float) -> None:
    path = ROOT / "scenarios" / name
    sc = load_scenario(path)
    t = Twin(sc, base_dir=path.parent)
    t.advance_to(min(sc.duration, until))
    folder = t.save(tmp_path / "s")
    replay = run_scenario(load_scenario(folder / "scenario.yaml"), base_dir=path.parent)
    replay.save(tmp_path / "r")
    assert (tmp_path / "r" / "transitions.csv").read_bytes() == (folder / "transitions.csv").read_bytes()


@pytest.mark.parametrize("name", QUICK_SCENARIOS)
def test_a_twin_of_a_bundled_scenario_replays(name: str, tmp_path: Path) -> None:
    _twin_replays(name, tmp_path, 150.0)


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_SCENARIOS)
def test_a_twin_of_every_bundled_scenario_replays_to_its_end(name: str, tmp_path: Path) -> None:
    _twin_replays(name, tmp_path, float("inf"))


@pytest.mark.slow
@pytest.mark.parametrize("name", ALL_SCENARIOS)
def test_a_world_runs_every_bundled_scenario_as_the_engine(name: str, tmp_path: Path) -> None:
    path = ROOT / "scenarios" / name
    sc = load_scenario(path)
    one = summarise(simulate(sc, base_dir=path.parent, engine="exact"))
    many = summarise(simulate_world(sc, base_dir=path.parent))
    one.save(tmp_path / "one")
    many.save(tmp_path / "many")
    for f in sorted((tmp_path / "one").iterdir()):
        assert f.read_bytes() == (tmp_path / "many" / f.name).read_bytes(), f.name


def test_world_is_the_engine_for_live_worlds() -> None:
    w = World(cloud(), live=True)
    w.run_until(5.0)
    assert w.env.now == 5.0 and w.runtimes == {}


def _session(seed: int) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Ids and operating-status changes of the same calls on a Twin with ``seed``."""
    t = Twin(cloud(), seed=seed)
    ids = [ok(t.request("create", "loadbalancer", None, {"name": n})) for n in ("a", "b")]
    t.advance_to(95.0)
    changes = [
        (r.time, r.name, r.new, r.object_type)
        for r in t.world.timeline.rows
        if r.field == "operating_status"
    ]
    return ids, changes


def test_same_seed_same_ids_and_heartbeat_phases() -> None:
    """Same seed, same calls: the same UUIDs (version 4) and so the same amphorae and
    heartbeat phases, hence the same status times (a uuid4 per create made each session
    differ, and the first ONLINE after ACTIVE wandered within a heartbeat interval)."""
    ids, changes = _session(7)
    again = _session(7)
    assert (ids, changes) == again and sum(c[2] == "ONLINE" for c in changes) == 2
    assert all(len(i) == 36 and i[14] == "4" for i in ids) and len(set(ids)) == 2
    other_ids, _ = _session(8)
    assert set(other_ids).isdisjoint(ids)
