"""L7 policies and rules through ``lbsim serve``'s v2 API in process (FastAPI's test client,
the real Twin, a manual clock): Octavia's shapes, PENDING → ACTIVE, the listener's
``l7policies``, position renumbering, Octavia's refusals, rule and policy deletes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from lbsim.server.app import create_app
from lbsim.server.clock import SimClock
from lbsim.server.octavia.backend import Cloud
from lbsim.server.twin import Twin
from tests.test_server_api import _advance, _tree

POLICY_KEYS = {
    "id", "name", "description", "provisioning_status", "operating_status", "project_id", "tenant_id", "action",
    "listener_id", "redirect_pool_id", "redirect_url", "redirect_prefix", "position", "redirect_http_code",
    "rules", "admin_state_up", "created_at", "updated_at", "tags",
}  # fmt: skip
RULE_KEYS = {
    "id", "type", "compare_type", "key", "value", "invert", "provisioning_status", "operating_status",
    "project_id", "tenant_id", "admin_state_up", "created_at", "updated_at", "tags",
}  # fmt: skip


@pytest.fixture
def api() -> Iterator[tuple[TestClient, Cloud]]:
    cloud = Cloud(Twin(None), SimClock(0.0))
    with TestClient(create_app(cloud, tick=False), raise_server_exceptions=False) as client:
        yield client, cloud


def _policy(c: TestClient, listener: str, **kw: object) -> dict[str, object]:
    r = c.post("/v2/lbaas/l7policies", json={"l7policy": {"listener_id": listener, **kw}})
    assert r.status_code == 201, r.text
    return dict(r.json()["l7policy"])


def test_policy_and_rule_lifecycle(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    p = _policy(c, ids["listener"], name="to-p", action="REDIRECT_TO_POOL", redirect_pool_id=ids["pool"])
    assert set(p) == POLICY_KEYS
    assert (p["provisioning_status"], p["operating_status"]) == ("PENDING_CREATE", "OFFLINE")
    assert (p["listener_id"], p["redirect_pool_id"], p["position"], p["rules"]) == (ids["listener"], ids["pool"], 1, [])
    assert p["name"] == "to-p" and p["tenant_id"] == p["project_id"]
    # the load balancer is locked while the policy is built
    busy = c.post("/v2/lbaas/l7policies", json={"l7policy": {"listener_id": ids["listener"], "action": "REJECT"}})
    assert busy.status_code == 409 and "immutable" in busy.json()["faultstring"]
    _advance(cloud)
    shown = c.get(f"/v2.0/lbaas/l7policies/{p['id']}").json()["l7policy"]
    assert (shown["provisioning_status"], shown["operating_status"]) == ("ACTIVE", "ONLINE")
    listener = c.get(f"/v2/lbaas/listeners/{ids['listener']}").json()["listener"]
    assert listener["l7policies"] == [{"id": p["id"]}]

    r = c.post(
        f"/v2/lbaas/l7policies/{p['id']}/rules",
        json={"rule": {"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "www.example.com"}},
    )
    assert r.status_code == 201, r.text
    rule = r.json()["rule"]
    assert set(rule) == RULE_KEYS
    assert (rule["key"], rule["invert"], rule["provisioning_status"]) == (None, False, "PENDING_CREATE")
    _advance(cloud)
    assert c.get(f"/v2/lbaas/l7policies/{p['id']}").json()["l7policy"]["rules"] == [{"id": rule["id"]}]
    rules = c.get(f"/v2/lbaas/l7policies/{p['id']}/rules").json()
    assert [x["id"] for x in rules["rules"]] == [rule["id"]] and rules["rules_links"] == []
    assert rules["rules"][0]["provisioning_status"] == "ACTIVE"

    # a HEADER rule needs a key: Octavia's wording, nothing created
    bad = c.post(
        f"/v2/lbaas/l7policies/{p['id']}/rules",
        json={"rule": {"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"}},
    )
    assert bad.status_code == 400
    assert bad.json()["faultstring"].startswith("Error parsing L7Rule:") and "key" in bad.json()["faultstring"]
    assert len(c.get(f"/v2/lbaas/l7policies/{p['id']}/rules").json()["rules"]) == 1

    # update a rule: 200, PENDING_UPDATE, then the new value
    up = c.put(f"/v2/lbaas/l7policies/{p['id']}/rules/{rule['id']}", json={"rule": {"value": "api.example.com"}})
    assert up.status_code == 200 and up.json()["rule"]["provisioning_status"] == "PENDING_UPDATE"
    _advance(cloud)
    assert c.get(f"/v2/lbaas/l7policies/{p['id']}/rules/{rule['id']}").json()["rule"]["value"] == "api.example.com"

    # delete the rule, then the policy
    d = c.delete(f"/v2/lbaas/l7policies/{p['id']}/rules/{rule['id']}")
    assert d.status_code == 204 and d.content == b""
    _advance(cloud)
    gone = c.get(f"/v2/lbaas/l7policies/{p['id']}/rules/{rule['id']}")
    assert gone.status_code == 404 and gone.json()["faultstring"] == f"L7 Rule {rule['id']} not found."
    assert c.delete(f"/v2/lbaas/l7policies/{p['id']}").status_code == 204
    _advance(cloud)
    gone = c.get(f"/v2/lbaas/l7policies/{p['id']}")
    assert gone.status_code == 404 and gone.json()["faultstring"] == f"L7 Policy {p['id']} not found."
    assert c.get(f"/v2/lbaas/listeners/{ids['listener']}").json()["listener"]["l7policies"] == []


def test_positions_renumber(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    first = _policy(c, ids["listener"], action="REJECT", name="a")
    _advance(cloud)
    second = _policy(c, ids["listener"], action="REJECT", name="b", position=1)
    assert second["position"] == 1
    _advance(cloud)
    assert c.get(f"/v2/lbaas/l7policies/{first['id']}").json()["l7policy"]["position"] == 2
    listed = c.get("/v2/lbaas/l7policies", params={"listener_id": ids["listener"], "sort": "position:asc"}).json()
    assert [x["name"] for x in listed["l7policies"]] == ["b", "a"]
    # moving a policy to the end with PUT
    r = c.put(f"/v2/lbaas/l7policies/{second['id']}", json={"l7policy": {"position": 5}})
    assert r.status_code == 200, r.text
    _advance(cloud)
    names = {x["name"]: x["position"] for x in c.get("/v2/lbaas/l7policies").json()["l7policies"]}
    assert names == {"a": 1, "b": 2}
    assert c.get("/v2/lbaas/l7policies", params={"listener_id": "nope"}).json()["l7policies"] == []


def test_refusals(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    missing = c.get("/v2/lbaas/l7policies/abc")
    assert missing.status_code == 404 and missing.json()["faultstring"] == "L7 Policy abc not found."
    assert c.get("/v2/lbaas/l7policies/abc/rules").status_code == 404
    r = c.post("/v2/lbaas/l7policies", json={"l7policy": {"listener_id": ids["listener"]}})
    assert r.status_code == 400 and "action" in r.json()["faultstring"]
    r = c.post("/v2/lbaas/l7policies", json={"l7policy": {"listener_id": "nope", "action": "REJECT"}})
    assert r.status_code == 404 and r.json()["faultstring"] == "Listener nope not found."
    r = c.post("/v2/lbaas/l7policies", json={"l7policy": {"listener_id": ids["listener"], "action": "REJECT", "x": 1}})
    assert r.status_code == 400 and "x" in r.json()["faultstring"]
    r = c.post("/v2/lbaas/l7policies", json={"l7policy": {"listener_id": ids["listener"], "action": "DANCE"}})
    assert r.status_code == 400 and "DANCE" in r.json()["faultstring"]
    r = c.post(
        "/v2/lbaas/l7policies",
        json={"l7policy": {"listener_id": ids["listener"], "action": "REDIRECT_TO_URL"}},
    )
    assert r.status_code == 400 and "redirect_url" in r.json()["faultstring"]
    r = c.post("/v2/lbaas/l7policies", json={"l7policy": {"listener_id": ids["listener"], "action": "REJECT",
                                                          "name": "n" * 256}})  # fmt: skip
    assert r.status_code == 400 and "maximum character requirement of 255" in r.json()["faultstring"]
    assert c.get("/v2/lbaas/l7policies").json() == {"l7policies": [], "l7policies_links": []}


def test_twin_accepts_l7_kinds() -> None:
    twin = Twin(None)
    cloud = Cloud(twin, SimClock(0.0))
    with TestClient(create_app(cloud, tick=False), raise_server_exceptions=False) as c:
        ids = _tree(c, cloud)
    resp = twin.request("create", "l7policy", None, {"listener_id": ids["listener"], "action": "REJECT", "name": "r"})
    assert resp.ok and resp.key
    rec = twin.record("l7policy", resp.key)
    assert rec is not None and rec.attrs["listener_id"] == ids["listener"] and rec.name == "r"
    assert [x.key for x in twin.records("l7policy")] == [resp.key]
    assert twin.request("update", "l7rule", "nope", {"value": "x"}).code == 404


def test_traffic_follows_the_policy(api: tuple[TestClient, Cloud]) -> None:
    """A REDIRECT_TO_POOL policy made through the API routes the listener's requests: before
    it every request reaches the default pool's member, after it (PATH STARTS_WITH /) none
    does and the redirect pool's member answers them all."""
    c, cloud = api
    ids = _tree(c, cloud)
    p2 = c.post(
        "/v2/lbaas/pools",
        json={"pool": {"name": "p2", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN", "loadbalancer_id": ids["lb"]}},
    ).json()["pool"]["id"]
    _advance(cloud)
    m2 = c.post(
        f"/v2/lbaas/pools/{p2}/members", json={"member": {"name": "m2", "address": "10.0.0.11", "protocol_port": 80}}
    ).json()["member"]["id"]
    _advance(cloud)
    rt = cloud.twin.world.runtimes[ids["lb"]]

    def served() -> dict[str, int]:
        out: dict[str, int] = {}
        for i, s in enumerate(rt.dp.servers):
            out[s.name] = out.get(s.name, 0) + rt.dp.member_requests(i)
        return out

    cloud.twin.set_traffic(ids["listener"], 20.0)
    _advance(cloud, 30)
    before = served()
    assert before.get(ids["member"], 0) > 100 and before.get(m2, 0) == 0
    pid = _policy(c, ids["listener"], action="REDIRECT_TO_POOL", redirect_pool_id=p2)["id"]
    _advance(cloud, 5)
    r = c.post(
        f"/v2/lbaas/l7policies/{pid}/rules",
        json={"rule": {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/"}},
    )
    assert r.status_code == 201, r.text
    _advance(cloud, 5)
    start = served()
    _advance(cloud, 30)
    after = served()
    assert after.get(ids["member"], 0) == start.get(ids["member"], 0)
    assert after.get(m2, 0) - start.get(m2, 0) > 300
