"""The live page of ``lbsim serve``: ``GET /lbsim/ui`` and its server-sent events.

An SRE driving the twin wants to *see* it: which member HAProxy has taken DOWN, when the
API will say ERROR, how latency and errors move while a fault is injected. This module
serves a static page (``static/``: plain HTML, CSS and JavaScript plus a vendored uPlot)
and one push stream, ``GET /lbsim/ui/events``, that feeds it:

* ``snapshot`` messages (on connect and every few seconds): the status tree of every load
  balancer with HAProxy's view of each member beside the API's and the simulated time
  between them, the amphorae, the per-listener traffic of the last ``WINDOW`` simulated
  seconds, the latest status transitions and injected events, the clock;
* ``delta`` messages in between: the trees again (they are small), and only the traffic
  seconds, transitions and events that are new since the previous message.

Everything a message carries is bounded (a fixed traffic window, at most
``MAX_TRANSITIONS`` transitions and ``MAX_EVENTS`` events), and a connection keeps only
cursors, a per-member table of the live members and at most ``MAX_NAMES`` names, so a page
left open for hours costs a constant amount of memory on both sides. Nothing is queued: a
message is built when the previous one has been sent. The page's controls post to the same
``/lbsim/v1/...`` endpoints ``lbsim ctl`` uses, so every click is recorded and replayable.

The router reads the twin and the clock from ``request.app.state`` (see :func:`live_world`);
all Twin calls happen on the event loop's thread, as the Twin requires.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse

__all__ = [
    "MAX_EVENTS",
    "MAX_NAMES",
    "MAX_TRANSITIONS",
    "WINDOW",
    "LiveFeed",
    "LiveWorld",
    "api_status_for",
    "clock_info",
    "event_stream",
    "live_world",
    "router",
    "server_stopping",
    "sse",
]

STATIC_DIR = Path(__file__).with_name("static")
#: simulated seconds of traffic history a message carries and the page keeps
WINDOW = 300.0
#: most transitions (status changes) one message carries and the page keeps
MAX_TRANSITIONS = 200
#: most injected events (accepted API calls and controls) one message carries and the page keeps
MAX_EVENTS = 100
#: most object names a feed remembers (those of deleted objects included; oldest dropped first)
MAX_NAMES = 5000
#: wall seconds between two messages, and how many deltas pass between two snapshots
DELTA_INTERVAL = 0.5
SNAPSHOT_EVERY = 20

router = APIRouter(tags=["live page"])


class TwinView(Protocol):
    """The part of :class:`lbsim.server.twin.Twin` the page reads (it never changes the twin)."""

    @property
    def now(self) -> float: ...
    def records(self, kind: str) -> list[Any]: ...
    def status_tree(self, lb_key: str) -> dict[str, Any]: ...
    def haproxy_view(self, lb_key: str) -> dict[str, str]: ...
    def amphorae(self) -> list[dict[str, Any]]: ...
    def traffic_window(self, seconds: float = 300.0) -> dict[str, Any]: ...
    def transitions_since(self, index: int) -> tuple[int, list[Any]]: ...
    def session_events(self) -> list[dict[str, Any]]: ...


@dataclass(frozen=True)
class LiveWorld:
    """What the page reads from the running app."""

    twin: TwinView
    clock: Any
    cloud: Any = None


def live_world(request: Request) -> LiveWorld:
    """The twin and the clock of the app serving ``request``.

    Reads ``request.app.state.twin`` (the :class:`~lbsim.server.twin.Twin`) and
    ``request.app.state.clock`` (the :class:`~lbsim.server.clock.SimClock`: the page shows
    its ``speed`` and ``paused``), falling back to ``app.state.cloud.twin``/``.clock`` (the
    API layer's object, whose ``lag`` the page shows too). The page only reads: the app's
    background task keeps the twin level with the clock. A 503 if the app has no twin,
    rather than a traceback.
    """
    state = request.app.state
    cloud = getattr(state, "cloud", None)
    twin = getattr(state, "twin", None) or getattr(cloud, "twin", None)
    clock = getattr(state, "clock", None) or getattr(cloud, "clock", None)
    if twin is None:
        raise HTTPException(status_code=503, detail="the twin is not running")
    return LiveWorld(twin=twin, clock=clock, cloud=cloud)


def clock_info(clock: Any, now: float, lag: Any = None) -> dict[str, Any]:
    """The clock as the page shows it: the twin's simulated now, the speed (simulated seconds
    per wall second), paused or not, and how far the simulation lags behind the clock."""
    speed = getattr(clock, "speed", None)
    paused = getattr(clock, "paused", None)
    speed_f = float(speed) if isinstance(speed, int | float) and math.isfinite(speed) else None
    lag_f = float(lag) if isinstance(lag, int | float) and math.isfinite(lag) else 0.0
    return {
        "now": round(float(now), 3),
        "speed": speed_f,
        "paused": bool(paused) if paused is not None else False,
        "lag": round(lag_f, 3),
    }


# --------------------------------------------------------------------- HAProxy vs the API


def api_status_for(haproxy_state: str) -> str | None:
    """The member operating status Octavia derives from HAProxy's state (heartbeat rules).

    ``UP``/``UP 1/3`` → ONLINE, ``DOWN``/``DOWN 1/2`` → ERROR, ``DRAIN`` → DRAINING,
    ``MAINT`` → OFFLINE, ``no check`` → NO_MONITOR (octavia-semantics §1); None for a
    string the health manager ignores.
    """
    if haproxy_state.startswith("UP"):
        return "ONLINE"
    if haproxy_state.startswith("DOWN"):
        return "ERROR"
    return {"DRAIN": "DRAINING", "MAINT": "OFFLINE", "no check": "NO_MONITOR"}.get(haproxy_state)


def _gap(haproxy: str, api: str, t_haproxy: float | None, t_api: float | None, now: float) -> dict[str, Any]:
    """How far the API is behind HAProxy for one member, in simulated seconds.

    ``agree``: the API shows what HAProxy's state implies; ``lag`` is then how long after
    HAProxy's last change the API followed (0 if it never had to). Otherwise ``behind`` is
    how long HAProxy's state has been waiting for the API to catch up.
    """
    expected = api_status_for(haproxy) if haproxy else None
    if expected is None:
        return {"agree": None}
    if api == expected:
        lag = (t_api - t_haproxy) if t_api is not None and t_haproxy is not None and t_api >= t_haproxy else 0.0
        return {"agree": True, "lag": round(lag, 3)}
    since = t_haproxy if t_haproxy is not None else now
    return {"agree": False, "expected": expected, "behind": round(max(0.0, now - since), 3)}


# --------------------------------------------------------------------- payloads


def _fnum(x: Any) -> float | None:
    """A JSON-safe float (NaN and infinities become null)."""
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    return round(f, 6) if math.isfinite(f) else None


def _transition_row(tr: Any, names: Mapping[str, str]) -> dict[str, Any]:
    key = str(tr.name)
    return {
        "t": _fnum(tr.time),
        "kind": tr.object_type,
        "id": key,
        "name": names.get(key, key),
        "field": tr.field,
        "old": tr.old,
        "new": tr.new,
    }


def _event_row(ev: Mapping[str, Any], names: Mapping[str, str]) -> dict[str, Any]:
    """An injected event (a scenario ``events:`` entry) as one readable line, ids shown as names."""
    parts = []
    for k, v in ev.items():
        if k == "at":
            continue
        if isinstance(v, str) and names.get(v):
            text = names[v]
        elif isinstance(v, Mapping | list | tuple):
            text = json.dumps(v, default=str, separators=(",", ":"))
        else:
            text = str(v)
        parts.append(f"{k}={text}")
    line = " ".join(parts)
    return {"at": _fnum(ev.get("at")), "text": line if len(line) <= 240 else line[:239] + "…"}


def _series(window: Mapping[str, Any]) -> dict[str, dict[str, list[float | None]]]:
    """The Twin's traffic window as columns per listener: t, rate, error_rate, p50, p95, p99."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for listener, data in window.items():
        cols: dict[str, list[float | None]] = {}
        if isinstance(data, Mapping) and "t" in data:
            for col in ("t", "rate", "error_rate", "p50", "p95", "p99"):
                cols[col] = [_fnum(v) for v in data.get(col, [])]
        elif isinstance(data, list):  # rows of dicts
            for col in ("t", "rate", "error_rate", "p50", "p95", "p99"):
                cols[col] = [_fnum(row.get(col)) for row in data]
        else:
            continue
        n = len(cols["t"])
        for col, values in cols.items():
            if len(values) != n:
                cols[col] = (values + [None] * n)[:n]
        out[str(listener)] = cols
    return out


class LiveFeed:
    """The messages of one page's event stream, built from a Twin.

    A feed remembers only cursors (the transition index, the last traffic second and the
    number of session events sent), per live member when HAProxy's state and the API's
    operating status last changed, and up to ``MAX_NAMES`` object names. Members that left
    every tree are forgotten at the next snapshot, so the feed's memory follows the cloud's
    size, not the session's length.
    """

    def __init__(
        self, twin: TwinView, clock_state: Callable[[], dict[str, Any]] | None = None, window: float = WINDOW
    ) -> None:
        self.twin = twin
        self.window = float(window)
        self._clock_state = clock_state or (lambda: clock_info(None, twin.now))
        self._index = 0
        self._last_second: float | None = None
        self._events_sent = 0
        self._changed: dict[tuple[str, str], float] = {}  # (member key, field) -> sim time of last change
        self._names: dict[str, str] = {}
        self._live_members: set[str] = set()

    # -- reading the twin

    def _consume(self) -> list[Any]:
        """New transitions since the last call; updates the per-member change times."""
        self._index, rows = self.twin.transitions_since(self._index)
        for tr in rows:
            if tr.object_type == "member" and tr.field in ("data_plane_state", "operating_status"):
                self._changed[(str(tr.name), tr.field)] = float(tr.time)
        return rows

    def _trees(self) -> list[dict[str, Any]]:
        """Every load balancer's status tree, members annotated with HAProxy's view and the gap."""
        now = self.twin.now
        amps: dict[str, list[dict[str, Any]]] = {}
        for amp in self.twin.amphorae():
            amps.setdefault(str(amp.get("loadbalancer_id")), []).append(
                {k: amp.get(k) for k in ("id", "role", "status", "lb_network_ip", "compute_id") if k in amp}
            )
        names: dict[str, str] = {}
        live: set[str] = set()
        out = []
        listener_attrs = {str(r.key): getattr(r, "attrs", {}) or {} for r in self.twin.records("listener")}
        for rec in self.twin.records("loadbalancer"):
            key = str(getattr(rec, "key", None) or getattr(rec, "id", ""))
            # a copy to annotate (JSON round trip: the tree is plain JSON, and this is 5x deepcopy's speed)
            tree = json.loads(json.dumps(self.twin.status_tree(key).get("loadbalancer") or {}))
            if not tree:  # gone between records() and status_tree()
                continue
            haproxy = self.twin.haproxy_view(key)
            lb = dict(tree)
            lb["project_id"] = getattr(rec, "project_id", None) or getattr(rec, "project", None)
            lb["vip_address"] = (getattr(rec, "attrs", {}) or {}).get("vip_address")
            lb["amphorae"] = amps.get(key, [])
            names[key] = str(lb.get("name") or "")
            for li in lb.get("listeners", []):
                names[str(li["id"])] = str(li.get("name") or "")
                attrs = listener_attrs.get(str(li["id"]), {})
                li["protocol"], li["protocol_port"] = attrs.get("protocol"), attrs.get("protocol_port")
                for pool in li.get("pools", []):
                    names[str(pool["id"])] = str(pool.get("name") or "")
                    hm = pool.get("health_monitor")
                    if hm:
                        names[str(hm["id"])] = str(hm.get("name") or "")
                    for mem in pool.get("members", []):
                        mkey = str(mem["id"])
                        live.add(mkey)
                        names[mkey] = str(mem.get("name") or mem.get("address") or "")
                        hp = haproxy.get(mkey, "")
                        mem["haproxy"] = hp
                        mem["gap"] = _gap(
                            hp,
                            str(mem.get("operating_status", "")),
                            self._changed.get((mkey, "data_plane_state")),
                            self._changed.get((mkey, "operating_status")),
                            now,
                        )
            out.append(lb)
        for amp_list in amps.values():
            for amp in amp_list:
                amp_id = str(amp.get("id"))
                names.setdefault(
                    amp_id, f"{amp.get('role') or ''} {amp_id if len(amp_id) <= 12 else amp_id[:8]}".strip()
                )
        # remember names of objects that are gone too (transitions and events still name
        # them), oldest forgotten first beyond MAX_NAMES
        for key, name in names.items():
            self._names.pop(key, None)
            self._names[key] = name
        while len(self._names) > MAX_NAMES:
            del self._names[next(iter(self._names))]
        self._live_members = live
        return out

    def _traffic(self, since: float | None) -> dict[str, dict[str, list[float | None]]]:
        """Traffic seconds after ``since`` (all of the window if None)."""
        span = self.window
        if since is not None:  # a delta: ask only for the seconds that can be new
            span = min(self.window, max(2.0, math.ceil(self.twin.now - since) + 2.0))
        series = _series(self.twin.traffic_window(span))
        last = self._last_second
        for cols in series.values():
            ts = cols["t"]
            if ts and ts[-1] is not None:
                last = ts[-1] if last is None else max(last, ts[-1])
            if since is not None:
                first = next((i for i, t in enumerate(ts) if t is not None and t > since), len(ts))
                for col in cols:
                    cols[col] = cols[col][first:]
        self._last_second = last
        return series

    def _events(self, new_only: bool) -> list[dict[str, Any]]:
        events = self.twin.session_events()
        start = self._events_sent if new_only else 0
        self._events_sent = len(events)
        picked = events[max(start, len(events) - MAX_EVENTS) :]
        return [_event_row(e, self._names) for e in picked]

    # -- messages

    def snapshot(self) -> dict[str, Any]:
        """Everything the page shows, bounded: it replaces the page's state."""
        self._consume()
        lbs = self._trees()
        for key in [k for k in self._changed if k[0] not in self._live_members]:
            del self._changed[key]
        recent = self._recent_transitions()
        return {
            "type": "snapshot",
            "clock": self._clock_state(),
            "window": self.window,
            "loadbalancers": lbs,
            "traffic": self._traffic(None),
            "transitions": [_transition_row(tr, self._names) for tr in recent],
            "events": self._events(new_only=False),
            "limits": {"transitions": MAX_TRANSITIONS, "events": MAX_EVENTS},
        }

    def delta(self) -> dict[str, Any]:
        """What changed since the previous message (trees whole, the rest only new)."""
        rows = self._consume()[-MAX_TRANSITIONS:]
        lbs = self._trees()
        return {
            "type": "delta",
            "clock": self._clock_state(),
            "loadbalancers": lbs,
            "traffic": self._traffic(self._last_second),
            "transitions": [_transition_row(tr, self._names) for tr in rows],
            "events": self._events(new_only=True),
        }

    def _recent_transitions(self) -> list[Any]:
        """The last ``MAX_TRANSITIONS`` transitions of the session (for a snapshot)."""
        _, rows = self.twin.transitions_since(max(0, self._index - MAX_TRANSITIONS))
        return rows[-MAX_TRANSITIONS:]

    def memory_footprint(self) -> int:
        """How many entries the feed holds (for the bounded-memory test)."""
        return len(self._changed) + len(self._names)


def sse(event: str, data: Mapping[str, Any]) -> str:
    """One server-sent event (``event:`` + one ``data:`` line of compact JSON)."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'), allow_nan=False)}\n\n"


async def event_stream(
    request: Request, world: LiveWorld, interval: float = DELTA_INTERVAL, snapshot_every: int = SNAPSHOT_EVERY
) -> AsyncIterator[str]:
    """The page's event stream: a snapshot, then deltas, a snapshot every ``snapshot_every``.

    It ends when the client goes away or when the server is stopping (uvicorn waits for
    open responses before it exits, so an endless stream would keep Ctrl-C from working).
    Nothing is queued: a message is built only when the previous one has been sent.
    """
    feed = LiveFeed(world.twin, lambda: clock_info(world.clock, world.twin.now, getattr(world.cloud, "lag", None)))
    yield "retry: 2000\n\n"
    n = 0
    while not server_stopping(request):
        msg = feed.snapshot() if n % snapshot_every == 0 else feed.delta()
        yield sse(msg["type"], msg)
        n += 1
        await asyncio.sleep(interval)
        if await request.is_disconnected():
            return


def server_stopping(request: Request) -> bool:
    """Whether the server serving ``request`` is shutting down.

    Reads ``request.app.state.server`` (the ``uvicorn.Server`` that ``lbsim serve`` runs; its
    ``should_exit`` turns true on Ctrl-C) and ``app.state.stopping`` (for other hosts).
    """
    state = request.app.state
    return bool(getattr(getattr(state, "server", None), "should_exit", False) or getattr(state, "stopping", False))


# --------------------------------------------------------------------- routes


@router.get("/lbsim/ui", response_class=HTMLResponse, summary="The live page")
async def page() -> HTMLResponse:
    """The live page (static HTML; it loads its script and styles from ``/lbsim/ui/static``)."""
    return HTMLResponse((STATIC_DIR / "index.html").read_text(encoding="utf-8"))


@router.get("/lbsim/ui/static/{path:path}", include_in_schema=False)
async def static_file(path: str) -> FileResponse:
    """A file of the page (script, styles, vendored uPlot); nothing outside ``static/``."""
    root = STATIC_DIR.resolve()
    target = (root / path).resolve()
    if root not in target.parents or not target.is_file():
        raise HTTPException(status_code=404, detail=f"no such file: {path}")
    return FileResponse(target)


@router.get("/lbsim/ui/events", summary="The live page's event stream (server-sent events)")
async def events(request: Request, interval: float = DELTA_INTERVAL) -> StreamingResponse:
    """``snapshot`` and ``delta`` messages as ``text/event-stream``, ``interval`` wall seconds apart."""
    if not (0.05 <= interval <= 60.0):
        raise HTTPException(status_code=400, detail="interval must be between 0.05 and 60 seconds")
    world = live_world(request)
    return StreamingResponse(
        event_stream(request, world, interval),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
