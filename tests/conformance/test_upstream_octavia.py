"""lbsim.octavia.status must write exactly what upstream Octavia 19.0.0 writes, heartbeat by heartbeat.

The upstream ``UpdateHealthDb._update_health`` runs unmodified in a separate venv (built
by ``.ci/octavia-venv.sh``) behind ``upstream_driver.py``; its session and repositories
are mocked there. Hypothesis generates (DB view, heartbeat, processing delay) cases that
cover disabled / PENDING load balancers, disabled and missing listeners, FULL and odd
listener states, UDP listeners with bare pool keys, pools shared by several listeners
(several keys in random order: "last key wins"), missing pools and members, every member
string the amphora can send plus unknown ones, lowercase DB statuses, and processing
delays around the heartbeat interval. For each case the refresh decision, whether the
statuses were processed, and the ordered list of writes must be identical.

Interpreter: ``$LBSIM_OCTAVIA_PYTHON``, else ``<repo>/.venv-octavia/bin/python``. Without
either the test is skipped locally, and fails when ``CI=true``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lbsim.octavia.status import DbListener, DbPool, DbView, update_health

pytestmark = pytest.mark.upstream

REPO_ROOT = Path(__file__).resolve().parents[2]
DRIVER = Path(__file__).with_name("upstream_driver.py")
UPSTREAM_VERSION = "19.0.0"
MAX_EXAMPLES = 1500

OP_STATUSES = ["ONLINE", "OFFLINE", "DEGRADED", "ERROR", "DRAINING", "NO_MONITOR"]
# DB values are upper-case in practice; a few lower-case ones probe the case rules.
DB_STATUS = st.sampled_from(OP_STATUSES * 6 + [s.lower() for s in OP_STATUSES])
PROV_STATUSES = ["ACTIVE"] * 5 + ["PENDING_UPDATE", "PENDING_CREATE", "PENDING_DELETE", "ERROR"]
PROTOCOLS = ["HTTP", "HTTPS", "TCP", "TERMINATED_HTTPS", "PROMETHEUS", "UDP", "SCTP"]
LISTENER_STRINGS = ["OPEN"] * 6 + ["FULL"] * 3 + ["open", "STOP", "CLOSED", ""]
BACKEND_STRINGS = ["UP"] * 6 + ["DOWN"] * 4 + ["up", "MAINT", "no check", ""]
MEMBER_STRINGS = [
    "UP",
    "UP 1/3",
    "UP 2/3",
    "DOWN",
    "DOWN 1/2",
    "DRAIN",
    "MAINT",
    "MAINT(via)",
    "MAINT (resolution)",
    "no check",
    "NOLB",
    "NOLB 1/2",
    "RESTARTING",
    "DOWN (agent)",
    "up",
    "down",
    "",
    "UPPER",
    "DRAINING",
]
MISSING = object()  # "leave this key out of the heartbeat entry"


# --------------------------------------------------------------------------- driver


def _octavia_python() -> str:
    """The upstream venv's interpreter, or skip (locally) / fail (CI) without one."""
    explicit = os.environ.get("LBSIM_OCTAVIA_PYTHON")
    if explicit:
        if not Path(explicit).exists():
            pytest.fail(f"LBSIM_OCTAVIA_PYTHON={explicit} does not exist")
        return explicit
    default = REPO_ROOT / ".venv-octavia" / "bin" / "python"
    if default.exists():
        return str(default)
    message = (
        f"upstream octavia=={UPSTREAM_VERSION} venv not found (no $LBSIM_OCTAVIA_PYTHON, "
        f"no {default}); run .ci/octavia-venv.sh to enable"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(message)
    pytest.skip(message)


class UpstreamDriver:
    """Line-oriented JSON client for the long-lived upstream driver subprocess."""

    def __init__(self, python: str) -> None:
        self.proc = subprocess.Popen(
            [python, str(DRIVER)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=sys.stderr,
            text=True,
            bufsize=1,
            cwd=str(REPO_ROOT),
        )
        hello = self._read()
        if hello.get("octavia") != UPSTREAM_VERSION:
            self.close()
            pytest.fail(f"driver runs octavia {hello.get('octavia')}, want {UPSTREAM_VERSION}")

    def _read(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"upstream driver exited (rc={self.proc.poll()})")
        result: dict[str, Any] = json.loads(line)
        return result

    def run(self, case: dict[str, Any]) -> dict[str, Any]:
        """Send one case, return the driver's answer; raise if upstream crashed."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(case) + "\n")
        self.proc.stdin.flush()
        result = self._read()
        if "error" in result:
            raise AssertionError(f"upstream raised on {case!r}:\n{result['error']}")
        return result

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture(scope="session")
def upstream() -> Iterator[UpstreamDriver]:
    driver = UpstreamDriver(_octavia_python())
    try:
        yield driver
    finally:
        driver.close()


# --------------------------------------------------------------------------- cases


def to_upstream_lb(view: DbView | None) -> dict[str, Any]:
    """``DbView`` → the dict ``AmphoraRepository.get_lb_for_health_update`` returns.

    That query omits the ``listeners`` / ``pools`` keys when there are none, wraps each
    member status in ``{"operating_status": ...}``, and returns ``{}`` for no LB.
    """
    if view is None:
        return {}
    lb: dict[str, Any] = {
        "id": view.lb_id,
        "enabled": view.enabled,
        "provisioning_status": view.provisioning_status,
        "operating_status": view.operating_status,
    }
    if view.listeners:
        lb["listeners"] = {
            lid: {
                "operating_status": li.operating_status,
                "protocol": li.protocol,
                "enabled": li.enabled,
            }
            for lid, li in view.listeners.items()
        }
    if view.pools:
        lb["pools"] = {
            pid: {
                "operating_status": p.operating_status,
                "members": {mid: {"operating_status": s} for mid, s in p.members.items()},
            }
            for pid, p in view.pools.items()
        }
    return lb


def _maybe(draw: st.DrawFn, key: str, values: list[str], entry: dict[str, Any]) -> None:
    """Set ``entry[key]`` to one of ``values``, or (rarely) leave it out."""
    value = draw(st.sampled_from([*values, MISSING]))
    if value is not MISSING:
        entry[key] = value


@st.composite
def views(draw: st.DrawFn) -> DbView | None:
    """A DB view: 0-4 listeners, 0-4 pools with 0-4 members each (or no LB at all)."""
    if draw(st.integers(0, 39)) == 0:
        return None
    listeners = {}
    for i in range(draw(st.integers(0, 4))):
        lid = f"L{i}"
        listeners[lid] = DbListener(
            lid,
            draw(DB_STATUS),
            draw(st.sampled_from(PROTOCOLS)),
            draw(st.sampled_from([True] * 4 + [False])),
        )
    pools = {}
    for i in range(draw(st.integers(0, 4))):
        pid = f"P{i}"
        members = {f"M{i}{j}": draw(DB_STATUS) for j in range(draw(st.integers(0, 4)))}
        pools[pid] = DbPool(pid, draw(DB_STATUS), members)
    return DbView(
        lb_id="LB",
        enabled=draw(st.sampled_from([True] * 3 + [False])),
        provisioning_status=draw(st.sampled_from(PROV_STATUSES)),
        operating_status=draw(DB_STATUS),
        listeners=listeners,
        pools=pools,
    )


@st.composite
def heartbeats(draw: st.DrawFn, view: DbView | None) -> dict[str, Any]:
    """A heartbeat loosely following ``view``: most objects reported, some not, extras."""
    db_listeners = list(view.listeners.values()) if view else []
    db_pools = list(view.pools.values()) if view else []
    listener_ids = [li.id for li in db_listeners] + ["LX"]

    listeners: dict[str, Any] = {}
    for li in db_listeners:
        if draw(st.integers(0, 99)) < (85 if li.enabled else 15):
            entry: dict[str, Any] = {
                "stats": {"tx": 1, "rx": 2, "conns": 0, "totconns": 3, "ereq": 0}
            }
            _maybe(draw, "status", LISTENER_STRINGS, entry)
            listeners[li.id] = entry
    if draw(st.integers(0, 9)) == 0:
        listeners["LX"] = {"status": "OPEN", "stats": {}}

    all_member_ids = [m for p in db_pools for m in p.members] + ["MX"]
    keyed: list[tuple[str, dict[str, Any]]] = []
    for pool in [*db_pools, DbPool("PX", "ONLINE", {"MX": "ONLINE"})]:
        n_keys = draw(st.sampled_from([0, 1, 1, 1, 2, 3]))
        for _ in range(n_keys):
            if draw(st.integers(0, 4)) == 0:
                key = pool.id  # UDP / SCTP pools are keyed by the bare pool id
            else:
                key = f"{pool.id}:{draw(st.sampled_from(listener_ids))}"
            entry = {"members": {}}
            _maybe(draw, "status", BACKEND_STRINGS, entry)
            for mid in pool.members:
                if draw(st.integers(0, 9)) < 8:
                    entry["members"][mid] = draw(st.sampled_from(MEMBER_STRINGS))
            if draw(st.integers(0, 9)) == 0:
                stray = draw(st.sampled_from(all_member_ids))
                entry["members"][stray] = draw(st.sampled_from(MEMBER_STRINGS))
            keyed.append((key, entry))
    keyed = draw(st.permutations(keyed))
    return {
        "id": "AMP",
        "seq": draw(st.integers(0, 1000)),
        "ver": draw(st.sampled_from([3, 3, 3, 2])),
        "listeners": listeners,
        "pools": dict(keyed),
    }


@st.composite
def cases(draw: st.DrawFn) -> dict[str, Any]:
    """A full conformance case: view, heartbeat, heartbeat interval, processing delay."""
    view = draw(views())
    interval = draw(st.sampled_from([10, 10, 3, 1]))
    delay = draw(
        st.one_of(
            st.just(0.0),
            st.sampled_from([interval - 1e-6, float(interval), interval + 0.5, 0.25]),
            st.floats(0.0, 2.0 * interval, allow_nan=False),
        )
    )
    return {"view": view, "health": draw(heartbeats(view)), "interval": interval, "delay": delay}


def features(view: DbView | None, health: dict[str, Any], up: dict[str, Any]) -> set[str]:
    """Labels of what a case exercised, to prove the generator reaches every rule."""
    seen = {f"refresh={up['refresh']}", f"processed={up['processed']}"}
    seen |= {f"write:{w[0]}:{w[2]}" for w in up["writes"]}
    if view is None:
        return seen | {"no-lb"}
    if not view.enabled:
        seen.add("lb-disabled")
    if "PENDING" in view.provisioning_status:
        seen.add("lb-pending")
    for li in view.listeners.values():
        seen.add(f"listener-enabled={li.enabled}-reported={li.id in health['listeners']}")
        if li.protocol == "UDP":
            seen.add("udp-listener")
    keys_by_pool: dict[str, list[str]] = {}
    for key in health["pools"]:
        keys_by_pool.setdefault(key.rsplit(":", 1)[0], []).append(key)
    for pool in view.pools.values():
        keys = keys_by_pool.get(pool.id, [])
        if pool.id in keys:
            seen.add("bare-pool-key")
        if len(keys) > 1 and health["pools"][keys[0]] != health["pools"][keys[-1]]:
            seen.add("shared-pool-keys-differ")
        if keys:
            entry = health["pools"][keys[-1]]
            seen.add(f"backend:{entry.get('status', '<missing>')}")
            for mid in pool.members:
                seen.add(f"member:{entry['members'].get(mid, '<absent>')}")
    for entry in health["listeners"].values():
        seen.add(f"listener:{entry.get('status', '<missing>')}")
    return seen


REQUIRED_FEATURES = {
    "no-lb",
    "lb-disabled",
    "lb-pending",
    "udp-listener",
    "bare-pool-key",
    "shared-pool-keys-differ",
    "refresh=True",
    "refresh=False",
    "processed=False",
    "listener-enabled=True-reported=False",
    "listener-enabled=False-reported=False",
    "listener-enabled=False-reported=True",
    "listener:FULL",
    "listener:<missing>",
    "backend:DOWN",
    "backend:<missing>",
    *(f"member:{s}" for s in [*MEMBER_STRINGS, "<absent>"]),
    *(
        f"write:{t}:{s}"
        for t in ["loadbalancer", "pool"]
        for s in ["ONLINE", "OFFLINE", "DEGRADED", "ERROR"]
    ),
    *(f"write:member:{s}" for s in ["ONLINE", "OFFLINE", "ERROR", "DRAINING", "NO_MONITOR"]),
    *(f"write:listener:{s}" for s in ["ONLINE", "OFFLINE", "DEGRADED", "ERROR"]),
}


# --------------------------------------------------------------------------- the test


def test_status_aggregation_matches_upstream(upstream: UpstreamDriver) -> None:
    """≥1,000 generated cases: same refresh decision and same ordered writes as upstream."""
    seen: Counter[str] = Counter()
    count = 0
    started = time.monotonic()

    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=cases())
    def check(case: dict[str, Any]) -> None:
        nonlocal count
        view, health = case["view"], case["health"]
        up = upstream.run(
            {
                "lb": to_upstream_lb(view),
                "health": health,
                "delay": case["delay"],
                "heartbeat_interval": case["interval"],
            }
        )
        ours = update_health(
            view, health, processing_delay=case["delay"], heartbeat_interval=case["interval"]
        )
        got = {
            "refresh": ours.refresh_amphora,
            "processed": ours.processed,
            "writes": [[w.object_type, w.object_id, w.operating_status] for w in ours.writes],
        }
        assert got == up
        count += 1
        seen.update(features(view, health, up))

    check()
    elapsed = time.monotonic() - started
    print(f"\nupstream conformance: {count} cases in {elapsed:.1f}s")
    assert count >= 1000
    missing = REQUIRED_FEATURES - set(seen)
    assert not missing, f"generator never exercised: {sorted(missing)}"
