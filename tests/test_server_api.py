"""The Octavia v2 API of ``lbsim serve`` in process (FastAPI's test client, the real Twin,
a manual clock): shapes against the recording, faults, routing errors, request ids, lists,
unset defaults, Neutron look-ups, the twin controls and the crash guard."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from lbsim.server.app import create_app
from lbsim.server.clock import SimClock
from lbsim.server.neutron import PRIVATE_NET, PRIVATE_SUBNET
from lbsim.server.octavia.backend import Cloud
from lbsim.server.twin import Twin
from tests.serve_recording import exchanges

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}$")


@pytest.fixture
def api() -> Iterator[tuple[TestClient, Cloud]]:
    cloud = Cloud(Twin(None), SimClock(0.0))
    with TestClient(create_app(cloud, tick=False), raise_server_exceptions=False) as client:
        yield client, cloud


def _advance(cloud: Cloud, seconds: float = 120.0) -> None:
    cloud.clock.advance(seconds)
    cloud.sync()


def _tree(c: TestClient, cloud: Cloud) -> dict[str, str]:
    lb = c.post("/v2.0/lbaas/loadbalancers", json={"loadbalancer": {"name": "lb", "vip_subnet_id": PRIVATE_SUBNET}})
    assert lb.status_code == 201, lb.text
    ids = {"lb": lb.json()["loadbalancer"]["id"]}
    _advance(cloud)
    li = c.post("/v2.0/lbaas/listeners", json={"listener": {"name": "web", "protocol": "HTTP", "protocol_port": 80,
                                                            "loadbalancer_id": ids["lb"]}})  # fmt: skip
    ids["listener"] = li.json()["listener"]["id"]
    _advance(cloud)
    pool = c.post("/v2.0/lbaas/pools", json={"pool": {"name": "p", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN",
                                                      "listener_id": ids["listener"]}})  # fmt: skip
    ids["pool"] = pool.json()["pool"]["id"]
    _advance(cloud)
    m = c.post(f"/v2.0/lbaas/pools/{ids['pool']}/members", json={"member": {"name": "m1", "address": "10.0.0.10",
                                                                            "protocol_port": 80}})  # fmt: skip
    ids["member"] = m.json()["member"]["id"]
    _advance(cloud)
    hm = c.post("/v2.0/lbaas/healthmonitors", json={"healthmonitor": {"name": "hm", "pool_id": ids["pool"], "type": "HTTP",
                                                                      "delay": 5, "timeout": 3, "max_retries": 3}})  # fmt: skip
    ids["hm"] = hm.json()["healthmonitor"]["id"]
    _advance(cloud)
    return ids


def _recorded_keys(kind: str) -> set[str]:
    for h in exchanges():
        body = h.get("resp_body")
        if h["method"] == "POST" and h["status"] == 201 and isinstance(body, dict) and kind in body:
            return set(body[kind])
    raise AssertionError(f"no recorded create of {kind}")


def test_versions_and_bare_v2(api: tuple[TestClient, Cloud]) -> None:
    c, _ = api
    doc = c.get("/", headers={"Host": "10.1.2.3:5555"}).json()["versions"]
    assert [v["id"] for v in doc][:2] == ["v2.0", "v2.1"]
    assert doc[-1]["status"] == "CURRENT" and all(v["status"] == "SUPPORTED" for v in doc[:-1])
    assert {v["links"][0]["href"] for v in doc} == {"http://10.1.2.3:5555/v2"}
    for path in ("/v2", "/v2.0", "/v2.0/"):
        r = c.get(path)
        assert (r.status_code, r.text) == (200, '"v2"')


def test_every_response_has_a_request_id_and_routing_errors_are_pecan_shaped(api: tuple[TestClient, Cloud]) -> None:
    c, _ = api
    cases = [
        (c.get("/v2.0/lbaas/loadbalancers"), 200, None),
        (c.get("/v2.0/lbaas/nothing"), 404, {"code": 404, "title": "Not Found", "description": ""}),
        (c.patch("/v2.0/lbaas/loadbalancers"), 405, {"code": 405, "title": "Method Not Allowed", "description": ""}),
        (c.get("/v2/lbaas/loadbalancers/not-a-uuid"), 404,
         {"faultcode": "Client", "faultstring": "Load Balancer not-a-uuid not found.", "debuginfo": None}),
        (c.post("/v2.0/lbaas/loadbalancers", content=b'{"loadbalancer": {', headers={"Content-Type": "application/json"}),
         400, {"faultcode": "Client", "faultstring": "Request is not in valid JSON format", "debuginfo": None}),
        (c.post("/v2.0/lbaas/loadbalancers", content=b"x", headers={"Content-Type": "text/plain"}), 415,
         {"faultcode": "Client", "faultstring": "Unknown mimetype: text/plain", "debuginfo": None}),
        (c.get("/v2/subnets?name=private-subnet"), 200, None),
    ]  # fmt: skip
    ids = set()
    for r, code, body in cases:
        assert r.status_code == code
        assert re.fullmatch(r"req-[0-9a-f-]{36}", r.headers["x-openstack-request-id"])
        ids.add(r.headers["x-openstack-request-id"])
        if body is not None:
            assert r.json() == body
    assert len(ids) == len(cases)


def test_a_crash_is_a_server_fault_and_the_server_keeps_serving(
    api: tuple[TestClient, Cloud], monkeypatch: Any
) -> None:
    c, cloud = api

    def boom(kind: str) -> list[Any]:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(cloud.twin, "records", boom)
    r = c.get("/v2.0/lbaas/loadbalancers")
    assert r.status_code == 500 and r.json()["faultcode"] == "Server" and "simulated bug" in r.json()["faultstring"]
    assert r.headers["x-openstack-request-id"].startswith("req-")
    monkeypatch.undo()
    assert c.get("/v2.0/lbaas/loadbalancers").status_code == 200


def test_created_objects_have_octavias_fields_and_relations(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    shown = {
        "loadbalancer": c.get(f"/v2.0/lbaas/loadbalancers/{ids['lb']}").json()["loadbalancer"],
        "listener": c.get(f"/v2.0/lbaas/listeners/{ids['listener']}").json()["listener"],
        "pool": c.get(f"/v2.0/lbaas/pools/{ids['pool']}").json()["pool"],
        "member": c.get(f"/v2.0/lbaas/pools/{ids['pool']}/members/{ids['member']}").json()["member"],
        "healthmonitor": c.get(f"/v2.0/lbaas/healthmonitors/{ids['hm']}").json()["healthmonitor"],
    }
    for kind, obj in shown.items():
        want = _recorded_keys(kind) | ({"healthmonitor_id"} if kind == "pool" else set())
        assert set(obj) == want, kind
        assert STAMP.match(obj["created_at"]) and STAMP.match(obj["updated_at"])
    lb, li, pool, m, hm = (shown[k] for k in ("loadbalancer", "listener", "pool", "member", "healthmonitor"))
    assert lb["listeners"] == [{"id": ids["listener"]}] and lb["pools"] == [{"id": ids["pool"]}]
    assert li["loadbalancers"] == [{"id": ids["lb"]}] and li["default_pool_id"] == ids["pool"]
    assert pool["loadbalancers"] == [{"id": ids["lb"]}] and pool["listeners"] == [{"id": ids["listener"]}]
    assert pool["members"] == [{"id": ids["member"]}] and pool["healthmonitor_id"] == ids["hm"]
    assert hm["pools"] == [{"id": ids["pool"]}]
    assert (li["connection_limit"], li["timeout_client_data"], li["timeout_member_connect"]) == (-1, 50000, 5000)
    assert (li["insert_headers"], li["client_authentication"], li["sni_container_refs"]) == ({}, "NONE", [])
    assert (m["weight"], m["backup"], m["vnic_type"], m["subnet_id"]) == (1, False, "normal", None)
    assert (hm["max_retries_down"], hm["http_method"], hm["url_path"], hm["expected_codes"]) == (3, "GET", "/", "200")
    assert (lb["provider"], lb["vip_vnic_type"], lb["vip_sg_ids"], lb["vip_subnet_id"]) == (
        "amphora", "normal", [], PRIVATE_SUBNET)  # fmt: skip
    assert lb["vip_network_id"] == PRIVATE_NET and lb["project_id"] == lb["tenant_id"]


def test_unset_restores_defaults_and_pending_states_lock(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    r = c.put(
        f"/v2.0/lbaas/listeners/{ids['listener']}", json={"listener": {"connection_limit": "1000", "description": "x"}}
    )
    assert r.status_code == 200 and r.json()["listener"]["provisioning_status"] == "PENDING_UPDATE"
    assert r.json()["listener"]["connection_limit"] == 1000
    again = c.put(f"/v2.0/lbaas/listeners/{ids['listener']}", json={"listener": {"description": "y"}})
    assert (
        again.status_code == 409
        and again.json()["faultstring"] == f"Load Balancer {ids['lb']} is immutable and cannot be updated."
    )
    _advance(cloud)
    r = c.put(
        f"/v2.0/lbaas/listeners/{ids['listener']}", json={"listener": {"connection_limit": None, "description": None}}
    )
    assert (r.json()["listener"]["connection_limit"], r.json()["listener"]["description"]) == (-1, "")
    _advance(cloud)
    r = c.put(
        f"/v2.0/lbaas/healthmonitors/{ids['hm']}",
        json={"healthmonitor": {"url_path": "/h", "expected_codes": "200-204"}},
    )
    _advance(cloud)
    r = c.put(
        f"/v2.0/lbaas/healthmonitors/{ids['hm']}", json={"healthmonitor": {"url_path": None, "expected_codes": None}}
    )
    assert (r.json()["healthmonitor"]["url_path"], r.json()["healthmonitor"]["expected_codes"]) == ("/", "200")
    _advance(cloud)
    r = c.put(f"/v2.0/lbaas/pools/{ids['pool']}/members/{ids['member']}", json={"member": {"weight": None}})
    assert r.json()["member"]["weight"] == 1


def test_octavias_refusals(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    r = c.post(
        "/v2.0/lbaas/pools",
        json={"pool": {"protocol": "HTTP", "lb_algorithm": "SOURCE_IP_PORT", "loadbalancer_id": ids["lb"]}},
    )
    assert r.status_code == 501 and r.json() == {
        "faultcode": "Server", "debuginfo": None,
        "faultstring": "Provider 'amphora' does not support a requested option: Amphora provider does not support "
        "SOURCE_IP_PORT algorithm."}  # fmt: skip
    r = c.post("/v2.0/lbaas/loadbalancers", json={"loadbalancer": {"name": "x"}})
    assert (
        r.json()["faultstring"]
        == "Validation failure: VIP must contain one of: vip_port_id, vip_network_id, vip_subnet_id."
    )
    r = c.post(
        "/v2.0/lbaas/loadbalancers", json={"loadbalancer": {"vip_subnet_id": PRIVATE_SUBNET, "provider": "nope"}}
    )
    assert (r.status_code, r.json()["faultstring"]) == (400, "Provider 'nope' is not enabled.")
    r = c.put(f"/v2.0/lbaas/pools/{ids['pool']}", json={"pool": {"session_persistence": {"type": "APP_COOKIE"}}})
    assert r.json()["faultstring"].startswith('Validation failure: Field "cookie_name" must be specified')
    # UDP persistence options: Octavia's PUT wording on a non-UDP pool, POST rules for UDP pools
    sp = {"type": "SOURCE_IP", "persistence_timeout": 30}
    r = c.put(f"/v2.0/lbaas/pools/{ids['pool']}", json={"pool": {"session_persistence": sp}})
    assert (r.status_code, r.json()["faultstring"]) == (
        400,
        "Validation failure: persistence_timeout and persistence_granularity is only for UDP protocol pools.",
    )
    udp = {"protocol": "UDP", "lb_algorithm": "ROUND_ROBIN", "loadbalancer_id": ids["lb"]}
    r = c.post("/v2.0/lbaas/pools", json={"pool": {**udp, "session_persistence": {"type": "HTTP_COOKIE"}}})
    assert r.json()["faultstring"] == (
        "Validation failure: Session persistence of type HTTP_COOKIE is not supported for UDP/SCTP protocol pools."
    )
    r = c.delete(f"/v2.0/lbaas/loadbalancers/{ids['lb']}")
    assert r.status_code == 400 and "it has children" in r.json()["faultstring"]
    r = c.delete(f"/v2.0/lbaas/loadbalancers/{ids['lb']}?cascade=True")
    assert r.status_code == 204 and r.content == b"" and "content-type" not in r.headers
    _advance(cloud)
    assert c.get(f"/v2.0/lbaas/loadbalancers/{ids['lb']}").status_code == 404
    assert c.get("/v2.0/lbaas/loadbalancers").json() == {"loadbalancers": [], "loadbalancers_links": []}


def test_lists_filter_select_sort_and_page(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    made = []
    for name in ("b", "a", "c"):
        r = c.post("/v2.0/lbaas/loadbalancers", json={"loadbalancer": {"name": name, "vip_network_id": PRIVATE_NET}})
        made.append(r.json()["loadbalancer"]["id"])
    assert [o["id"] for o in c.get("/v2.0/lbaas/loadbalancers?name=a").json()["loadbalancers"]] == [made[1]]
    assert [o["name"] for o in c.get(f"/v2.0/lbaas/loadbalancers?id={made[2]}").json()["loadbalancers"]] == ["c"]
    assert c.get("/v2.0/lbaas/loadbalancers?fields=id&fields=name").json()["loadbalancers"][0] == {
        "id": made[0],
        "name": "b",
    }
    assert [o["name"] for o in c.get("/v2.0/lbaas/loadbalancers?sort=name:desc").json()["loadbalancers"]] == [
        "c",
        "b",
        "a",
    ]
    page = c.get("/v2/lbaas/loadbalancers?limit=2").json()
    assert [o["id"] for o in page["loadbalancers"]] == made[:2]
    assert page["loadbalancers_links"] == [
        {"href": f"http://testserver/v2/lbaas/loadbalancers?limit=2&marker={made[1]}", "rel": "next"}]  # fmt: skip
    nxt = c.get(f"/v2/lbaas/loadbalancers?limit=2&marker={made[1]}").json()
    assert [o["id"] for o in nxt["loadbalancers"]] == made[2:]
    assert [link["rel"] for link in nxt["loadbalancers_links"]] == ["previous"]
    bad = c.get("/v2.0/lbaas/loadbalancers?marker=00000000-0000-0000-0000-000000000000")
    assert (
        bad.json()["faultstring"] == "Supplied pagination marker '00000000-0000-0000-0000-000000000000' is not valid."
    )
    assert c.get("/v2.0/lbaas/loadbalancers?bogus=1").status_code == 400
    assert c.get("/v2.0/lbaas/loadbalancers?provisioning_status=BOGUS").json()["loadbalancers"] == []
    _advance(cloud)
    assert len(c.get("/v2.0/lbaas/loadbalancers?provisioning_status=ACTIVE").json()["loadbalancers"]) == 3


def test_project_header_and_default_project(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    r = c.post("/v2.0/lbaas/loadbalancers", json={"loadbalancer": {"vip_subnet_id": PRIVATE_SUBNET}},
               headers={"X-Project-Id": "p-other"})  # fmt: skip
    assert r.json()["loadbalancer"]["project_id"] == "p-other"
    r = c.post("/v2.0/lbaas/loadbalancers", json={"loadbalancer": {"vip_subnet_id": PRIVATE_SUBNET}})
    assert r.json()["loadbalancer"]["project_id"] == cloud.project
    assert len(c.get("/v2.0/lbaas/loadbalancers?project_id=p-other").json()["loadbalancers"]) == 1


def test_neutron_lookups_the_cli_makes(api: tuple[TestClient, Cloud]) -> None:
    c, _ = api
    assert [s["id"] for s in c.get("/v2/subnets?name=private-subnet").json()["subnets"]] == [PRIVATE_SUBNET]
    assert [s["name"] for s in c.get(f"/v2.0/subnets?id={PRIVATE_SUBNET}").json()["subnets"]] == ["private-subnet"]
    assert c.get("/v2/subnets?name=nosuch").json() == {"subnets": []}
    assert [n["id"] for n in c.get("/v2/networks?name=private").json()["networks"]] == [PRIVATE_NET]
    assert len(c.get("/v2/qos/policies?name=bw-limiter").json()["policies"]) == 1
    assert c.get("/v2/ports?name=lb-vip-port").json()["ports"][0]["fixed_ips"][0]["subnet_id"] == PRIVATE_SUBNET
    assert c.get("/v2.0/networks/nope").status_code == 404


def test_providers_quotas_flavors_azs_and_l7(api: tuple[TestClient, Cloud]) -> None:
    c, _ = api
    assert [p["name"] for p in c.get("/v2/lbaas/providers").json()["providers"]] == ["amphora", "octavia"]
    assert c.get("/v2/lbaas/quotas").json() == {"quotas": [], "quotas_links": []}
    assert c.get("/v2.0/lbaas/flavors").json() == {"flavors": [], "flavors_links": []}
    assert c.get("/v2.0/lbaas/availabilityzones").json() == {"availability_zones": [], "availability_zones_links": []}
    assert c.get("/v2.0/lbaas/l7policies").json() == {"l7policies": [], "l7policies_links": []}
    r = c.post("/v2.0/lbaas/l7policies", json={"l7policy": {"action": "REJECT"}})
    assert r.status_code == 400 and "listener_id" in r.json()["faultstring"]  # L7: tests/test_server_l7.py


def test_amphorae_and_failover(api: tuple[TestClient, Cloud]) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    amps = c.get(f"/v2.0/octavia/amphorae?loadbalancer_id={ids['lb']}").json()["amphorae"]
    assert len(amps) == 1 and amps[0]["role"] == "STANDALONE" and amps[0]["status"] == "ALLOCATED"
    assert c.get(f"/v2.0/octavia/amphorae/{amps[0]['id']}").json()["amphora"]["id"] == amps[0]["id"]
    r = c.put(f"/v2.0/lbaas/loadbalancers/{ids['lb']}/failover")
    assert (r.status_code, r.content) == (202, b"")
    r = c.put(f"/v2.0/lbaas/loadbalancers/{ids['lb']}/failover")
    assert (
        r.status_code == 409
        and r.json()["faultstring"] == f"Invalid state PENDING_UPDATE of loadbalancer resource {ids['lb']}"
    )
    status = c.get(f"/v2.0/lbaas/loadbalancers/{ids['lb']}/status").json()["statuses"]["loadbalancer"]
    assert status["id"] == ids["lb"] and status["listeners"][0]["pools"][0]["members"][0]["id"] == ids["member"]
    assert set(c.get(f"/v2.0/lbaas/loadbalancers/{ids['lb']}/stats").json()["stats"]) == {
        "active_connections", "bytes_in", "bytes_out", "request_errors", "total_connections"}  # fmt: skip


def test_twin_controls(api: tuple[TestClient, Cloud], tmp_path: Path) -> None:
    c, cloud = api
    ids = _tree(c, cloud)
    before = c.get("/lbsim/v1/clock").json()["now"]
    assert c.post("/lbsim/v1/clock/advance", json={"seconds": 5}).json()["now"] == pytest.approx(before + 5)
    assert c.post("/lbsim/v1/clock/advance", json={"seconds": -1}).status_code == 400
    assert c.put("/lbsim/v1/clock/speed", json={"speed": 3}).json()["speed"] == 3
    c.put("/lbsim/v1/clock/speed", json={"speed": 0})
    r = c.put("/lbsim/v1/members/m1/behaviour", json={"behaviour": "refuse"})
    assert r.status_code == 200 and r.json()["member"] == ids["member"]
    assert c.put("/lbsim/v1/members/m1/behaviour", json={"behaviour": "explode"}).status_code == 400
    assert c.put("/lbsim/v1/members/nope/behaviour", json={"behaviour": "refuse"}).status_code == 404
    assert c.put("/lbsim/v1/listeners/web/traffic", json={"rate": 50}).status_code == 200
    c.post("/lbsim/v1/clock/advance", json={"seconds": 40})
    status = c.get("/lbsim/v1/status").json()
    member = status["loadbalancers"][0]["loadbalancer"]["listeners"][0]["pools"][0]["members"][0]
    assert member["operating_status"] == "ERROR"
    assert status["loadbalancers"][0]["haproxy"][ids["member"]].startswith("DOWN")
    text = c.get("/lbsim/v1/metrics").text
    assert "lbsim_listener_connections_total" in text and "lbsim_simulated_seconds" in text
    saved = c.post("/lbsim/v1/save", json={"folder": str(tmp_path / "session")}).json()
    assert (Path(saved["folder"]) / "transitions.csv").is_file() and (Path(saved["folder"]) / "scenario.yaml").is_file()


def test_openapi_describes_the_real_models(api: tuple[TestClient, Cloud]) -> None:
    c, _ = api
    spec = c.get("/openapi.json").json()
    post = spec["paths"]["/v2.0/lbaas/listeners"]["post"]
    ref = post["requestBody"]["content"]["application/json"]["schema"]["$ref"].split("/")[-1]
    inner = spec["components"]["schemas"][ref]["properties"]["listener"]
    listener_post = spec["components"]["schemas"][inner["$ref"].split("/")[-1]]
    assert set(listener_post["required"]) == {"protocol", "protocol_port", "loadbalancer_id"}
    assert listener_post["properties"]["protocol_port"]["maximum"] == 65535
    shown = spec["paths"]["/v2.0/lbaas/listeners/{oid}"]["get"]["responses"]["200"]["content"]["application/json"]
    assert shown["schema"]["$ref"].endswith("ListenerRoot")
    assert "/v2/lbaas/listeners" not in spec["paths"]  # the /v2 aliases are not described twice
