"""Octavia features beyond the core objects (issue 13, part 2): listener allowed_cidrs,
unset, quotas, ... — one behavioural test each that fails without the feature."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from lbsim import load_scenario, run_scenario
from lbsim.haproxy.config import render
from lbsim.scenario.access import address_filter
from lbsim.scenario.errors import ScenarioError

ROOT = Path(__file__).resolve().parent.parent
FEATURES = ROOT / "scenarios" / "features"


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


# --------------------------------------------------------------------------------------
# allowed_cidrs
# --------------------------------------------------------------------------------------


def test_address_filter() -> None:
    allowed = address_filter(["198.51.100.0/24", "10.1.2.3/32"])
    assert allowed is not None
    assert allowed("198.51.100.77") and allowed(int.from_bytes(bytes([10, 1, 2, 3]), "big"))
    assert not allowed("198.51.101.1") and not allowed("10.1.2.4")
    assert address_filter([]) is None and address_filter(None) is None


def test_denied_clients_never_reach_haproxy() -> None:
    path = FEATURES / "allowed-cidrs.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent, log_requests=True)
    log = res.requests
    denied = log[log["outcome"] == "denied"]
    # only the internet source (50 req/s) is denied, and only until the update's flow ends
    assert 0.9 * 50 * 60 < len(denied) < 1.1 * 50 * 61
    assert denied["time"].max() < 62
    assert all(str(c).startswith("192.0.2.") for c in denied["client"].head(100))
    served = log[log["outcome"] == "ok"]
    before = served[served["time"] < 60]
    assert all(str(c).startswith("198.51.100.") for c in before["client"])
    assert any(str(c).startswith("192.0.2.") for c in served[served["time"] > 62]["client"])
    # HAProxy's own counters never saw the denied connections
    stats = res.stats
    at_60 = stats[stats["time"] < 60]["total_connections"].max()
    assert at_60 < 1.15 * 100 * 60
    assert res.summary["errors"] == {"denied": len(denied)}


def test_allowed_cidrs_are_not_in_haproxy_cfg_and_are_validated(tmp_path: Path) -> None:
    base = yaml.safe_load((FEATURES / "allowed-cidrs.yaml").read_text())
    base.pop("events")
    base.pop("expect")
    with_acl = load_scenario(_write(tmp_path, base))
    base["loadbalancer"]["listeners"][0].pop("allowed_cidrs")
    without = load_scenario(_write(tmp_path, base))
    assert render(with_acl) == render(without)  # a security group, not an HAProxy ACL
    base["loadbalancer"]["listeners"][0]["allowed_cidrs"] = ["10.0.0.0/33"]
    assert "Value should be IPv4 or IPv6 CIDR format" in _problems(_write(tmp_path, base))
    base["loadbalancer"]["listeners"][0]["allowed_cidrs"] = ["2001:db8::/64"]
    out = _problems(_write(tmp_path, base))
    assert "CIDR 2001:db8::/64 IP version incompatible with all VIPs" in out
    base["loadbalancer"]["listeners"][0]["allowed_cidrs"] = ["10.0.0.0/8", "10.0.0.0/8"]
    assert load_scenario(_write(tmp_path, base)).loadbalancer.listeners[0].allowed_cidrs == ["10.0.0.0/8"]
