"""L7 policies and rules through Octavia's API (lbsim.octavia.l7 via ControlPlane.request):
locks, statuses, positions, Octavia's refusals, and API events in a scenario run."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lbsim import load_scenario, run_scenario
from lbsim.octavia.controlplane import ControlPlane
from lbsim.octavia.objects import ObjSpec

ROOT = Path(__file__).resolve().parent.parent


def _cp(listener_protocol: str = "HTTP") -> ControlPlane:
    cp = ControlPlane()
    cp.load_active(
        [
            ObjSpec("loadbalancer", "lb"),
            ObjSpec("listener", "http", {"protocol": listener_protocol, "protocol_port": 80, "default_pool": None}),
            ObjSpec("listener", "tcp", {"protocol": "TCP", "protocol_port": 81, "default_pool": None}),
            ObjSpec("pool", "web", {"protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}),
            ObjSpec("pool", "raw", {"protocol": "TCP", "lb_algorithm": "ROUND_ROBIN"}),
        ]
    )
    return cp


def _ok(cp: ControlPlane, op: str, kind: str, name: str, body: dict[str, Any] | None = None) -> None:
    resp = cp.request(op, kind, name, body or {})
    assert resp.ok, (resp.code, resp.message)
    assert resp.job is not None
    cp.complete(resp.job, True)


def _status(cp: ControlPlane, kind: str, name: str) -> tuple[str, str]:
    obj = cp.get(kind, name)
    assert obj is not None
    return obj.provisioning_status, obj.operating_status


def _positions(cp: ControlPlane) -> list[str]:
    rows = [o for o in cp.objects("l7policy") if o.attrs["listener"] == "http"]
    return [o.name for o in sorted(rows, key=lambda o: o.attrs["position"])]


def test_policy_create_locks_and_marks() -> None:
    cp = _cp()
    resp = cp.request("create", "l7policy", "p1", {"listener": "http", "action": "REJECT"})
    assert resp.code == 201 and resp.job is not None
    assert _status(cp, "l7policy", "p1") == ("PENDING_CREATE", "OFFLINE")
    assert cp.get("listener", "http").provisioning_status == "PENDING_UPDATE"  # type: ignore[union-attr]
    assert cp.get("loadbalancer", "lb").provisioning_status == "PENDING_UPDATE"  # type: ignore[union-attr]
    # the LB is locked: another call gets 409
    busy = cp.request("create", "l7policy", "p2", {"listener": "http", "action": "REJECT"})
    assert busy.code == 409 and busy.message == "Load Balancer lb is immutable and cannot be updated."
    cp.complete(resp.job, True)
    assert _status(cp, "l7policy", "p1") == ("ACTIVE", "ONLINE")
    assert cp.get("listener", "http").provisioning_status == "ACTIVE"  # type: ignore[union-attr]
    _ok(cp, "create", "l7policy", "off", {"listener": "http", "action": "REJECT", "admin_state_up": False})
    assert _status(cp, "l7policy", "off") == ("ACTIVE", "OFFLINE")


def test_rule_calls_lock_the_policy_and_mark_it_active() -> None:
    cp = _cp()
    _ok(cp, "create", "l7policy", "p", {"listener": "http", "action": "REJECT"})
    body = {"l7policy": "p", "type": "PATH", "compare_type": "STARTS_WITH", "value": "/admin"}
    resp = cp.request("create", "l7rule", "r", body)
    assert resp.code == 201 and resp.job is not None
    assert _status(cp, "l7policy", "p")[0] == "PENDING_UPDATE"
    assert _status(cp, "l7rule", "r") == ("PENDING_CREATE", "OFFLINE")
    cp.complete(resp.job, True)
    assert _status(cp, "l7rule", "r") == ("ACTIVE", "ONLINE") and _status(cp, "l7policy", "p")[0] == "ACTIVE"
    # a failed rule update: rule ERROR, policy back to ACTIVE, then rules on it are still allowed
    resp = cp.request("update", "l7rule", "r", {"value": "/root"})
    assert resp.job is not None
    cp.complete(resp.job, False)
    assert _status(cp, "l7rule", "r")[0] == "ERROR" and _status(cp, "l7policy", "p")[0] == "ACTIVE"
    bad = cp.request("create", "l7rule", "r2", {**body, "type": "HEADER"})
    assert bad.code == 400 and bad.message == "Error parsing L7Rule: Invalid L7 Rule: L7 rule type requires a key"
    _ok(cp, "delete", "l7rule", "r")
    assert cp.get("l7rule", "r") is None


def test_positions_are_renumbered_at_the_api_call() -> None:
    cp = _cp()
    for name in ("a", "b", "c"):
        _ok(cp, "create", "l7policy", name, {"listener": "http", "action": "REJECT"})
    _ok(cp, "create", "l7policy", "first", {"listener": "http", "action": "REJECT", "position": 1})
    assert _positions(cp) == ["first", "a", "b", "c"]
    _ok(cp, "update", "l7policy", "c", {"position": 2})
    assert _positions(cp) == ["first", "c", "a", "b"]
    _ok(cp, "delete", "l7policy", "c")
    assert _positions(cp) == ["first", "a", "b"]
    assert [cp.get("l7policy", n).attrs["position"] for n in _positions(cp)] == [1, 2, 3]  # type: ignore[union-attr]


def test_octavia_refusals() -> None:
    cp = _cp()
    r = cp.request("create", "l7policy", "p", {"listener": "tcp", "action": "REJECT"})
    assert r.code == 501 and "TCP protocol listeners do not support L7 policies" in r.message
    r = cp.request("create", "l7policy", "p", {"listener": "http", "redirect_pool": "raw"})
    assert r.code == 400 and "The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'." in r.message
    r = cp.request("create", "l7policy", "p", {"listener": "http", "redirect_pool": "nope"})
    assert r.code == 404 and r.message == "Pool nope not found."
    r = cp.request("create", "l7policy", "p", {"listener": "http", "action": "REDIRECT_TO_URL"})
    assert r.code == 400 and r.message == "Invalid L7 Policy arguments: redirect_url must not be None"
    r = cp.request("update", "l7policy", "ghost", {"position": 1})
    assert r.code == 404 and r.message == "L7Policy ghost not found."
    # a pool used by a policy cannot be deleted; deleting the listener takes the policy along
    _ok(cp, "create", "l7policy", "p", {"listener": "http", "redirect_pool": "web"})
    r = cp.request("delete", "pool", "web")
    assert r.code == 409 and r.message == "Pool web is in use by L7 policy p"
    _ok(cp, "create", "l7rule", "r", {"l7policy": "p", "type": "PATH", "compare_type": "EQUAL_TO", "value": "/"})
    _ok(cp, "delete", "listener", "http")
    assert cp.get("l7policy", "p") is None and cp.get("l7rule", "r") is None
    _ok(cp, "delete", "pool", "web")


def test_update_to_reject_clears_the_redirect_fields() -> None:
    cp = _cp()
    _ok(cp, "create", "l7policy", "p", {"listener": "http", "redirect_url": "https://x.example/"})
    p = cp.get("l7policy", "p")
    assert p is not None and p.attrs["action"] == "REDIRECT_TO_URL" and p.attrs["redirect_http_code"] == 302
    _ok(cp, "update", "l7policy", "p", {"action": "REJECT"})
    assert p.attrs["action"] == "REJECT" and p.attrs["redirect_url"] is None and p.attrs["redirect_http_code"] is None


@pytest.mark.parametrize("form", ["loadbalancer", "loadbalancers"])
def test_api_events_change_routing_in_a_run(tmp_path: Path, form: str) -> None:
    """(Both scenario forms: the one-LB engine and the multi-LB world send the same calls.)
    A REDIRECT_TO_POOL created at 10 s takes api traffic once its rule exists (12 s); a
    REJECT policy without rules is not rendered until a rule is added at 20 s; deleting the first policy at 30 s sends api
    traffic back to the default pool."""
    member = {"concurrency": 50, "service_time": {"dist": "constant", "value": 0.001}}
    data = {
        "name": "l7api",
        "duration": 40,
        "loadbalancer": {
            "name": "lb",
            "listeners": [
                {
                    "name": "http",
                    "protocol": "HTTP",
                    "protocol_port": 80,
                    "default_pool": "web",
                    "l7policies": [{"name": "deny", "action": "REJECT"}],
                }
            ],
            "pools": [
                {
                    "name": "web",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"name": "web-1", "address": "10.0.0.1", "protocol_port": 80, **member}],
                },
                {
                    "name": "api",
                    "protocol": "HTTP",
                    "lb_algorithm": "ROUND_ROBIN",
                    "members": [{"name": "api-1", "address": "10.0.1.1", "protocol_port": 80, **member}],
                },
            ],
        },
        "traffic": [
            {
                "listener": "http",
                "arrival": {"process": "constant", "rate": 100},
                "requests": [{"host": "api.x", "path": "/v1"}, {"host": "www.x", "path": "/admin"}],
            }
        ],
        "events": [
            {"at": 10, "api": "create", "l7policy": "to-api", "listener": "http", "set": {"redirect_pool": "api"}},
            {
                "at": 12,
                "api": "create",
                "l7rule": "api-host",
                "l7policy": "to-api",
                "set": {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "api.x"},
            },
            {
                "at": 20,
                "api": "create",
                "l7rule": "admin",
                "l7policy": "deny",
                "set": {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/admin", "invert": False},
            },
            {"at": 30, "api": "delete", "l7policy": "to-api"},
        ],
        "expect": [
            {"at": 15, "listener": "http", "provisioning_status": "ACTIVE"},
        ],
    }
    if form == "loadbalancers":
        data["loadbalancers"] = [data.pop("loadbalancer")]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    res = run_scenario(load_scenario(path), base_dir=tmp_path, log_requests=True)
    assert list(res.api_calls["code"]) == [201, 201, 201, 204]
    log = res.requests
    api_member = log[log["member"] == "api-1"]["time"]
    assert len(api_member) > 0
    assert api_member.min() >= 12 and api_member.max() < 31  # only while to-api existed (plus worker time)
    rejected = log[log["outcome"] == "403"]["time"]
    assert rejected.min() >= 20 and len(rejected) > 0.4 * 100 * 19  # the /admin half after the rule
    assert res.passed
    t = res.transitions
    rows = t[(t["object_type"] == "l7rule") & (t["name"] == "api-host")]
    prov = list(rows[rows["field"] == "provisioning_status"]["new"])
    op = list(rows[rows["field"] == "operating_status"]["new"])
    assert prov == ["PENDING_CREATE", "ACTIVE", "DELETED"] and op == ["OFFLINE", "ONLINE"]


def test_bundled_scenario_api_events() -> None:
    path = ROOT / "scenarios" / "l7" / "host-path-routing.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent)
    assert list(res.api_calls["code"]) == [200, 204]
    table = res.l7.set_index("policy")
    assert table.loc["to-api", "position"] == 1
