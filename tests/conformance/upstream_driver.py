"""Run upstream Octavia's ``UpdateHealthDb._update_health`` on JSON cases (one per line).

This script runs under the Python of the separate Octavia venv (``.ci/octavia-venv.sh``),
never under the project's interpreter, and imports nothing from lbsim. It is started
once per test session by ``test_upstream_octavia.py`` and then serves cases over
stdin/stdout until stdin closes.

Input line (JSON)::

    {"lb": <get_lb_for_health_update dict, {} for an amphora without LB>,
     "health": <heartbeat dict>, "delay": <seconds>, "heartbeat_interval": <int>}

Output line (JSON)::

    first: {"ready": true, "octavia": "<installed version>"}
    then, per case: {"refresh": bool, "processed": bool,
                     "writes": [[object_type, object_id, status], ...]}
    or {"error": "<traceback>"}

How the unmodified upstream code is isolated (what ``_update_health`` touches, read from
the 19.0.0 source):

* ``db_api.get_session()`` → a ``MagicMock`` session (``begin()`` is used both as a
  context manager and as a plain call, then ``commit``/``rollback``);
* ``self.amphora_repo.get_lb_for_health_update(session, amp_id)`` → the case's ``lb``;
  ``self.amphora_repo.get(session, id=...)`` → None (unknown amphora: nothing to delete);
* ``self.amphora_health_repo.replace(...)`` → recorded as the health refresh;
* ``self.{listener,pool,member,loadbalancer}_repo.update(session, id,
  operating_status=...)`` → recorded, in call order, as the status writes;
* ``time.time()`` inside the module → a constant 0.0, with ``recv_time = -delay``, so
  the processing delay upstream computes is exactly the case's delay;
* ``CONF.health_manager.heartbeat_interval`` (an IntOpt) → ``set_override`` per case;
* ``LOG`` → a ``MagicMock``; the "processed too slowly" warning marks an unprocessed
  heartbeat.
"""

from __future__ import annotations

import json
import sys
import traceback
import types
import warnings
from importlib.metadata import version
from typing import Any
from unittest import mock

warnings.simplefilter("ignore")

from octavia.amphorae.drivers.health import heartbeat_udp  # noqa: E402
from octavia.common import config  # noqa: E402, F401  (registers the oslo.config options)
from oslo_config import cfg  # noqa: E402

_NOW = 0.0


class _StatusRepo:
    """Stand-in for a repository whose only used method is ``update``."""

    def __init__(self, object_type: str, writes: list[list[str]]) -> None:
        self._type = object_type
        self._writes = writes

    def update(self, session: Any, id: str, **fields: Any) -> None:
        if set(fields) != {"operating_status"}:
            raise AssertionError(f"unexpected update fields {fields!r}")
        self._writes.append([self._type, id, fields["operating_status"]])


class _AmphoraRepo:
    def __init__(self, lb: dict[str, Any]) -> None:
        self._lb = lb

    def get_lb_for_health_update(self, session: Any, amphora_id: str) -> dict[str, Any]:
        return self._lb

    def get(self, session: Any, id: str) -> None:
        return None


class _HealthRepo:
    def __init__(self) -> None:
        self.refreshed = False

    def replace(self, session: Any, amphora_id: str, **fields: Any) -> None:
        self.refreshed = True


def run_case(updater: Any, case: dict[str, Any]) -> dict[str, Any]:
    """Run one case through the upstream ``_update_health`` and report what it did."""
    writes: list[list[str]] = []
    health_repo = _HealthRepo()
    updater.amphora_repo = _AmphoraRepo(case["lb"])
    updater.amphora_health_repo = health_repo
    updater.listener_repo = _StatusRepo("listener", writes)
    updater.pool_repo = _StatusRepo("pool", writes)
    updater.member_repo = _StatusRepo("member", writes)
    updater.loadbalancer_repo = _StatusRepo("loadbalancer", writes)
    cfg.CONF.set_override("heartbeat_interval", case["heartbeat_interval"], group="health_manager")
    health = dict(case["health"])
    health["recv_time"] = _NOW - case["delay"]
    log = mock.MagicMock()
    with mock.patch.object(heartbeat_udp, "LOG", log):
        updater._update_health(health, "127.0.0.1")
    too_slow = any(
        "processed too slowly" in str(call.args[0]) for call in log.warning.call_args_list
    )
    return {
        "refresh": health_repo.refreshed,
        "processed": bool(case["lb"]) and not too_slow,
        "writes": writes,
    }


def main() -> None:
    """Serve cases from stdin until EOF."""
    heartbeat_udp.time = types.SimpleNamespace(time=lambda: _NOW)
    heartbeat_udp.db_api = types.SimpleNamespace(get_session=lambda: mock.MagicMock())
    updater = heartbeat_udp.UpdateHealthDb()
    print(json.dumps({"ready": True, "octavia": version("octavia")}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            result = run_case(updater, json.loads(line))
        except Exception:
            result = {"error": traceback.format_exc()}
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
