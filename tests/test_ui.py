"""The live page's server side: pure helpers, routes, and self-containment of the static page."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from lbsim.server import ui

STATIC = Path(ui.__file__).with_name("static")


# --------------------------------------------------------------------- HAProxy vs the API


@pytest.mark.parametrize(
    ("haproxy", "api"),
    [
        ("UP", "ONLINE"),
        ("UP 1/3", "ONLINE"),
        ("DOWN", "ERROR"),
        ("DOWN 1/2", "ERROR"),
        ("DRAIN", "DRAINING"),
        ("MAINT", "OFFLINE"),
        ("no check", "NO_MONITOR"),
        ("RESTARTING", None),
        ("", None),
    ],
)
def test_api_status_for_follows_the_heartbeat_rules(haproxy: str, api: str | None) -> None:
    assert ui.api_status_for(haproxy) == api


def test_gap_when_the_api_has_not_followed_yet() -> None:
    # HAProxy took the member DOWN at t=40; at t=47 the API still says ONLINE: 7 s behind.
    gap = ui._gap("DOWN", "ONLINE", t_haproxy=40.0, t_api=0.0, now=47.0)
    assert gap == {"agree": False, "expected": "ERROR", "behind": 7.0}


def test_gap_when_the_api_followed() -> None:
    # HAProxy DOWN at 40, the health manager wrote ERROR at 49.5: the API was 9.5 s late.
    assert ui._gap("DOWN", "ERROR", t_haproxy=40.0, t_api=49.5, now=80.0) == {"agree": True, "lag": 9.5}
    # An API change that predates HAProxy's (both agree since the start) is no lag.
    assert ui._gap("UP", "ONLINE", t_haproxy=3.0, t_api=0.0, now=80.0) == {"agree": True, "lag": 0.0}


times = st.floats(min_value=0, max_value=1e6, allow_nan=False)
states = st.sampled_from(["UP", "UP 2/3", "DOWN", "DOWN 1/2", "MAINT", "no check", "DRAIN", "RESTARTING", ""])
statuses = st.sampled_from(["ONLINE", "ERROR", "OFFLINE", "NO_MONITOR", "DRAINING", "DEGRADED"])


@given(states, statuses, st.none() | times, st.none() | times, times)
def test_gap_is_never_negative_and_agrees_exactly_when_the_status_matches(
    haproxy: str, api: str, th: float | None, ta: float | None, now: float
) -> None:
    now = max(now, th or 0.0, ta or 0.0)
    gap = ui._gap(haproxy, api, th, ta, now)
    expected = ui.api_status_for(haproxy)
    if expected is None:
        assert gap == {"agree": None}
    elif api == expected:
        assert gap["agree"] is True and gap["lag"] >= 0
    else:
        assert gap["agree"] is False and gap["behind"] >= 0 and gap["expected"] == expected
    json.dumps(gap, allow_nan=False)


def test_series_accepts_columns_or_rows_and_makes_them_json_safe() -> None:
    cols = {"l1": {"t": [1, 2], "rate": [3.0, float("nan")], "error_rate": [0, 0], "p50": [0.1], "p95": [], "p99": []}}
    rows = {"l1": [{"t": 1, "rate": 3.0, "p99": float("inf")}, {"t": 2, "rate": 4.0}]}
    a = ui._series(cols)["l1"]
    assert a["t"] == [1.0, 2.0] and a["rate"] == [3.0, None] and a["p50"] == [0.1, None] and a["p95"] == [None, None]
    b = ui._series(rows)["l1"]
    assert b["rate"] == [3.0, 4.0] and b["p99"] == [None, None] and b["error_rate"] == [None, None]


def test_sse_frames_one_event_per_message() -> None:
    text = ui.sse("delta", {"a": [1, 2], "b": "x\ny"})
    assert text.startswith("event: delta\ndata: ") and text.endswith("\n\n")
    lines = text.strip("\n").split("\n")
    assert len(lines) == 2  # the JSON escapes newlines: one data line
    assert json.loads(lines[1].removeprefix("data: ")) == {"a": [1, 2], "b": "x\ny"}


def test_clock_info_reads_the_serve_clock() -> None:
    from lbsim.server.clock import SimClock

    clock = SimClock(speed=60, wall_now=lambda: 0.0)
    assert ui.clock_info(clock, 12.34567, lag=0.5) == {"now": 12.346, "speed": 60.0, "paused": False, "lag": 0.5}
    clock.pause()
    assert ui.clock_info(clock, 1.0)["paused"] is True
    assert ui.clock_info(None, 1.0, lag=float("nan")) == {"now": 1.0, "speed": None, "paused": False, "lag": 0.0}


# --------------------------------------------------------------------- routes


def _client_without_twin() -> TestClient:
    app = FastAPI()
    app.include_router(ui.router)
    return TestClient(app)


def test_page_and_its_files_are_served() -> None:
    client = _client_without_twin()
    page = client.get("/lbsim/ui")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for ref in re.findall(r'(?:src|href)="(/lbsim/ui/static/[^"]+)"', page.text):
        got = client.get(ref)
        assert got.status_code == 200, ref
        assert len(got.content) > 100, ref


@pytest.mark.parametrize("path", ["../ui.py", "..%2Fui.py", "vendor/../../ui.py", "nope.js", "vendor"])
def test_static_route_serves_nothing_outside_static(path: str) -> None:
    assert _client_without_twin().get(f"/lbsim/ui/static/{path}").status_code == 404


def test_events_without_a_twin_is_a_clear_503() -> None:
    r = _client_without_twin().get("/lbsim/ui/events")
    assert r.status_code == 503 and "twin" in r.json()["detail"]


@pytest.mark.parametrize("interval", ["0", "-1", "1000", "abc"])
def test_events_rejects_a_bad_interval(interval: str) -> None:
    r = _client_without_twin().get(f"/lbsim/ui/events?interval={interval}")
    assert r.status_code in (400, 422)


# --------------------------------------------------------------------- self-contained page


def test_page_fetches_nothing_from_outside() -> None:
    """No absolute URL in what the page loads (uPlot is vendored, with its licence)."""
    ours = [STATIC / "index.html", STATIC / "live.js", STATIC / "live.css"]
    for f in ours:
        text = f.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", text), f
        assert not re.search(r"""(fetch|EventSource)\(\s*["'`]https?://""", text), f
        assert "@import" not in text, f
    vendor = STATIC / "vendor"
    assert (vendor / "uPlot.iife.min.js").stat().st_size > 10_000
    assert "MIT License" in (vendor / "uPlot.LICENSE").read_text(encoding="utf-8")
    assert "@import" not in (vendor / "uPlot.min.css").read_text(encoding="utf-8")


def test_static_files_are_package_data() -> None:
    import tomllib

    root = Path(__file__).resolve().parents[1]
    data = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    patterns = data["tool"]["setuptools"]["package-data"]["lbsim"]
    shipped = {p for pat in patterns for p in (root / "lbsim").glob(pat) if p.is_file()}
    assert {p for p in STATIC.rglob("*") if p.is_file()} <= shipped
