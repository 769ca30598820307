"""``lbsim import`` without a server: saved API bodies and ``-f json`` objects to a scenario."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from lbsim.cli.main import main
from lbsim.cli.octavia_import import ImportProblem, build_scenario, objects_from_json
from lbsim.scenario.loader import parse_scenario
from lbsim.server.app import create_app
from lbsim.server.clock import SimClock
from lbsim.server.neutron import PRIVATE_SUBNET
from lbsim.server.octavia.backend import Cloud
from lbsim.server.twin import Twin


def _cloud_dump(n_lbs: int) -> list[Any]:
    cloud = Cloud(Twin(None), SimClock(0.0))
    c = TestClient(create_app(cloud, tick=False))

    def step() -> None:
        cloud.clock.advance(100)
        cloud.sync()

    for k in range(n_lbs):
        lb = c.post(
            "/v2.0/lbaas/loadbalancers", json={"loadbalancer": {"name": f"lb {k}", "vip_subnet_id": PRIVATE_SUBNET}}
        )
        lb_id = lb.json()["loadbalancer"]["id"]
        step()
        li = c.post("/v2.0/lbaas/listeners", json={"listener": {"name": "http", "protocol": "HTTP", "protocol_port": 80,
                                                                "loadbalancer_id": lb_id, "connection_limit": 500}})  # fmt: skip
        step()
        pool = c.post("/v2.0/lbaas/pools", json={"pool": {"name": "web", "protocol": "HTTP", "lb_algorithm": "SOURCE_IP",
                                                          "listener_id": li.json()["listener"]["id"]}})  # fmt: skip
        pool_id = pool.json()["pool"]["id"]
        step()
        for i, name in enumerate(("", "", "m")):
            c.post(f"/v2.0/lbaas/pools/{pool_id}/members",
                   json={"member": {"name": name, "address": f"10.0.{k}.{i + 1}", "protocol_port": 8080, "weight": i + 1}})  # fmt: skip
            step()
        c.post("/v2.0/lbaas/healthmonitors", json={"healthmonitor": {"pool_id": pool_id, "type": "HTTP", "delay": 7,
                                                                     "timeout": 4, "max_retries": 2, "url_path": "/hz"}})  # fmt: skip
        step()
    bodies: list[Any] = [
        c.get(f"/v2.0/lbaas/{p}").json() for p in ("loadbalancers", "listeners", "pools", "healthmonitors")
    ]
    for pool in bodies[2]["pools"]:
        bodies.append(c.get(f"/v2.0/lbaas/pools/{pool['id']}/members").json())
    return bodies


def test_saved_api_bodies_become_a_valid_scenario_with_the_same_objects() -> None:
    doc = build_scenario(objects_from_json(_cloud_dump(1)))
    sc = parse_scenario(yaml.safe_dump(doc), "<import>")
    lb = sc.loadbalancer
    assert lb.name == "lb-0"
    assert [(li.name, li.protocol, li.protocol_port, li.connection_limit, li.default_pool) for li in lb.listeners] == [
        ("http", "HTTP", 80, 500, "web")]  # fmt: skip
    pool = lb.pools[0]
    assert (pool.name, pool.lb_algorithm) == ("web", "SOURCE_IP")
    assert pool.healthmonitor is not None
    hm = pool.healthmonitor
    assert (hm.type, hm.delay, hm.timeout, hm.max_retries, hm.url_path) == ("HTTP", 7, 4, 2, "/hz")
    assert [(m.address, m.weight) for m in pool.members] == [("10.0.0.1", 1), ("10.0.0.2", 2), ("10.0.0.3", 3)]
    names = [m.name for m in pool.members]
    assert len(set(names)) == 3 and names[2] == "m" and all(n.startswith("member-") for n in names[:2])


def test_several_load_balancers_become_loadbalancers_or_one_is_chosen() -> None:
    objects = objects_from_json(_cloud_dump(2))
    doc = build_scenario(objects)
    assert [t["name"] for t in doc["loadbalancers"]] == ["lb-0", "lb-1"]
    sc = parse_scenario(yaml.safe_dump(doc), "<import>")
    assert len(sc.all_loadbalancers) == 2
    one = build_scenario(objects, loadbalancer="lb 1")
    assert one["loadbalancer"]["name"] == "lb-1"
    with pytest.raises(ImportProblem, match="no load balancer named"):
        build_scenario(objects, loadbalancer="nope")
    with pytest.raises(ImportProblem, match="no load balancer found"):
        build_scenario([])


def test_import_command_reads_files_and_reports_bad_input(tmp_path: Path, capsys: Any) -> None:
    dump = tmp_path / "dump.json"
    dump.write_text(json.dumps(_cloud_dump(1)))
    out = tmp_path / "lb.yaml"
    assert main(["import", str(dump), "-o", str(out)]) == 0
    assert main(["validate", str(out)]) == 0
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert main(["import", str(bad)]) == 2
    assert "not JSON" in capsys.readouterr().err
    assert main(["import", str(tmp_path / "missing.json")]) == 2
