"""``start: running`` versus ``start: fresh``: the twin's start-up health (quick, twin only).

``running`` is a long-running HAProxy: every checked server at full health (``UP``), so a
member that is already failing needs ``fall`` failed checks to go DOWN. ``fresh`` is an
HAProxy that has just started: every checked server at health = rise (``UP 1/<fall>``)
until its first check, which alone takes a failing member DOWN. Both keep HAProxy's
start-up spreading of the first checks. The real-HAProxy side of ``fresh`` is checked in
``test_haproxy_health.py`` (cases ``fresh-*``, marker ``haproxy``).
"""

from __future__ import annotations

from typing import Any

import pytest

from lbsim.api import run_scenario
from lbsim.haproxy.healthcheck import first_check_offsets
from lbsim.scenario import model as m


def _scenario(start: str, behaviour: str = "refuse", fall: int = 3, rise: int = 2) -> m.Scenario:
    members: list[dict[str, Any]] = [
        {"name": f"m{i}", "address": f"10.0.0.{10 + i}", "protocol_port": 8080} for i in range(3)
    ]
    members[1]["behaviour"] = behaviour
    return m.Scenario.model_validate(
        {
            "name": f"start-{start}",
            "duration": 8,
            "start": start,
            "loadbalancer": {
                "name": "lb",
                "listeners": [{"name": "l", "protocol": "HTTP", "protocol_port": 80, "default_pool": "p"}],
                "pools": [
                    {
                        "name": "p",
                        "protocol": "HTTP",
                        "lb_algorithm": "ROUND_ROBIN",
                        "members": members,
                        "healthmonitor": {
                            "type": "HTTP",
                            "delay": 1,
                            "timeout": 1,
                            "max_retries": rise,
                            "max_retries_down": fall,
                        },
                    }
                ],
            },
        }
    )


def _states(start: str, **kw: Any) -> list[tuple[float, str]]:
    tr = run_scenario(_scenario(start, **kw)).transitions
    rows = tr[(tr["object_type"] == "member") & (tr["name"] == "m1") & (tr["field"] == "data_plane_state")]
    return [(round(float(t), 6), str(s)) for t, s in zip(rows["time"], rows["new"], strict=True)]


FIRST = first_check_offsets([1000, 1000, 1000])[1]  # m1's first check: 1/3 s after start


def test_running_starts_at_full_health() -> None:
    """Long-running HAProxy: m1 is ``UP`` at t=0 and needs fall=3 failed checks (one per
    second from its spread offset) to go DOWN."""
    states = _states("running")
    assert states[0] == (0.0, "UP")
    assert [s for _, s in states] == ["UP", "UP 2/3", "UP 1/3", "DOWN"]
    assert states[-1][0] == pytest.approx(FIRST + 2.0)


def test_fresh_starts_at_rise_and_one_failure_takes_it_down() -> None:
    """Freshly started HAProxy: m1 is ``UP 1/3`` at t=0 and its first check (failed) takes
    it DOWN at once."""
    states = _states("fresh")
    assert states[0] == (0.0, "UP 1/3")
    assert states[1] == (pytest.approx(FIRST), "DOWN")


def test_fresh_healthy_member_reaches_full_health_at_its_first_check() -> None:
    """A healthy member of a fresh HAProxy goes ``UP 1/3`` -> ``UP`` at its first check."""
    states = _states("fresh", behaviour="healthy")
    assert [s for _, s in states] == ["UP 1/3", "UP"]
    assert states[1][0] == pytest.approx(FIRST)


def test_fresh_with_fall_1_is_plain_up() -> None:
    """With fall = 1, health = rise is already full health: ``UP`` from the start."""
    assert _states("fresh", fall=1, behaviour="healthy") == [(0.0, "UP")]


def test_fresh_and_running_keep_the_same_control_plane_start() -> None:
    """Both start with the tree ACTIVE and ONLINE at t=0 (only HAProxy's counters differ)."""
    for start in ("running", "fresh"):
        tr = run_scenario(_scenario(start, behaviour="healthy")).transitions
        lb = tr[(tr["object_type"] == "loadbalancer") & (tr["time"] == 0)]
        got = dict(zip(lb["field"], lb["new"], strict=False))
        assert got.get("provisioning_status") == "ACTIVE", (start, got)
        assert got.get("operating_status") == "ONLINE", (start, got)
