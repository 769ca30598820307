"""Shared fixtures: a small valid scenario to build test cases from, and ways to write it.

The scenario is deliberately tiny (5 simulated seconds, 20 requests per second, two
members) so that a test can *run* it in tens of milliseconds, yet it uses every kind of
object the loader knows: Octavia settings, a listener, a pool with a health monitor and
members, traffic, a member fault, an API update and an expectation. Tests get a fresh
deep copy each time and mutate it freely.

Fixtures:

* ``scenario_dict`` -- a fresh copy of :data:`BASE_SCENARIO` (a plain ``dict``).
* ``to_yaml`` -- block-style YAML of a scenario dict (one key per line, keys in
  insertion order), so a test can find the line of any key by searching the text.
* ``line_of`` -- the 1-based line of the n-th line containing a needle.
* ``write_scenario`` -- write a dict (as YAML) or raw text into ``tmp_path``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

#: A valid scenario that runs in milliseconds. Do not mutate: use the fixtures.
BASE_SCENARIO: dict[str, Any] = {
    "version": 1,
    "name": "tiny",
    "seed": 7,
    "duration": 5,
    "warmup": 0,
    "octavia": {"heartbeat_interval": 1, "heartbeat_timeout": 6, "health_check_interval": 1},
    "loadbalancer": {
        "name": "lb1",
        "topology": "SINGLE",
        "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": 80, "default_pool": "web"}],
        "pools": [
            {
                "name": "web",
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
                "healthmonitor": {
                    "type": "HTTP",
                    "delay": 1,
                    "timeout": 1,
                    "max_retries": 1,
                    "max_retries_down": 2,
                    "url_path": "/healthz",
                },
                "members": [
                    {
                        "name": "web-1",
                        "address": "10.0.0.11",
                        "protocol_port": 8080,
                        "concurrency": 4,
                        "service_time": {"dist": "exponential", "mean": 0.01},
                    },
                    {
                        "name": "web-2",
                        "address": "10.0.0.12",
                        "protocol_port": 8080,
                        "concurrency": 4,
                        "service_time": {"dist": "exponential", "mean": 0.01},
                    },
                ],
            }
        ],
    },
    "traffic": [
        {
            "listener": "http",
            "arrival": {"process": "poisson", "rate": 20},
            "clients": {"count": 50, "cidr": "198.51.100.0/24"},
        }
    ],
    "events": [
        {"at": 2, "member": "web-1", "behaviour": "refuse"},
        {"at": 3, "api": "update", "member": "web-2", "set": {"weight": 2}},
    ],
    "expect": [{"at": 1, "loadbalancer": "lb1", "provisioning_status": "ACTIVE"}],
}


def make_scenario() -> dict[str, Any]:
    """A fresh deep copy of :data:`BASE_SCENARIO`."""
    return copy.deepcopy(BASE_SCENARIO)


def scenario_yaml(data: Any) -> str:
    """Block-style YAML: every mapping key on its own line, in insertion order."""
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)


def find_line(text: str, needle: str, nth: int = 1, exact: bool = False) -> int:
    """The 1-based number of the ``nth`` line of ``text`` that contains ``needle``.

    With ``exact``, the line itself (without indentation and list dashes) must equal
    ``needle``, so that ``protocol_port: 80`` does not match ``protocol_port: 8080``.
    Fails the test if there are fewer than ``nth`` such lines, so a typo in a needle
    cannot silently turn into a wrong expected line.
    """

    def hit(line: str) -> bool:
        return line.strip().lstrip("- ") == needle if exact else needle in line

    hits = [i for i, line in enumerate(text.splitlines(), start=1) if hit(line)]
    assert len(hits) >= nth, f"{needle!r} occurs {len(hits)} times in:\n{text}"
    return hits[nth - 1]


@pytest.fixture
def scenario_dict() -> dict[str, Any]:
    """A fresh, valid, millisecond-fast scenario as a dict."""
    return make_scenario()


@pytest.fixture
def to_yaml() -> Callable[[Any], str]:
    """Block-style YAML rendering of a scenario dict (see :func:`scenario_yaml`)."""
    return scenario_yaml


@pytest.fixture
def line_of() -> Callable[..., int]:
    """``line_of(text, needle, nth=1, exact=False)``: see :func:`find_line`."""
    return find_line


@pytest.fixture
def write_scenario(tmp_path: Path) -> Callable[..., Path]:
    """``write_scenario(data_or_text, name="scenario.yaml")``: a file in ``tmp_path``."""

    def write(data: Any, name: str = "scenario.yaml") -> Path:
        path = tmp_path / name
        text = data if isinstance(data, str) else scenario_yaml(data)
        path.write_text(text, encoding="utf-8")
        return path

    return write
