"""Twin controls under ``/lbsim/v1``: what an operator of the *simulated world* can do that
Octavia's API cannot — make a member refuse or hang, fail or partition an amphora, start or
stop client traffic, read and move the clock, take a status snapshot, read Prometheus
metrics, and save the session as a result folder with a scenario that replays it.

Every control goes through the Twin's fault machinery (the same as scenario events), so it is
recorded and a saved session replays it. Objects are named by id or by (unique) name.
Errors use Octavia's fault body, so ``lbsim ctl`` prints them like the ``openstack`` CLI does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from lbsim.server.octavia.backend import Cloud
from lbsim.server.octavia.errors import Fault
from lbsim.server.octavia.http import cloud_of, json_body
from lbsim.server.octavia.routes import FAULTS

BEHAVIOURS = ("healthy", "refuse", "hang", "error", "slow")
#: bounds that keep one control from asking for hours of simulation
MAX_ADVANCE = 3600.0  # simulated seconds per ``clock/advance``
MAX_SPEED = 1000.0
MAX_RATE = 20000.0  # requests per second of one listener's traffic


def resolve(cloud: Cloud, kind: str, ref: str) -> str:
    """The id of the ``kind`` object named ``ref`` (an id, or a name used exactly once)."""
    records = [r for r in cloud.twin.records(kind) if getattr(r, "provisioning_status", None) != "DELETED"]
    for r in records:
        if r.key == ref:
            return str(r.key)
    named = [r for r in records if (getattr(r, "name", None) or (getattr(r, "attrs", {}) or {}).get("name")) == ref]
    if len(named) == 1:
        return str(named[0].key)
    if len(named) > 1:
        raise Fault(409, f"More than one {kind} is named {ref}; use its id.")
    raise Fault(404, f"{kind} {ref} not found.")


def _amphora(cloud: Cloud, ref: str) -> str:
    for row in cloud.twin.amphorae():
        if row.get("id") == ref:
            return ref
    raise Fault(404, f"Amphora {ref} not found.")


def _number(
    body: dict[str, Any], key: str, *, minimum: float = 0.0, maximum: float = math.inf, optional: bool = False
) -> float | None:
    value = body.get(key)
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise Fault(400, f"'{key}' must be a number")
    if not minimum <= value <= maximum:
        raise Fault(400, f"'{key}' must be between {minimum:g} and {maximum:g}")
    return float(value)


def clock_state(cloud: Cloud) -> dict[str, Any]:
    """The clock as ``GET /lbsim/v1/clock`` shows it."""
    return {
        "now": cloud.twin.now,
        "target": cloud.clock.sim_now(),
        "speed": cloud.clock.speed,
        "paused": cloud.clock.paused,
        "lag": cloud.lag,
        "held_back": cloud.held_back,
    }


def router() -> APIRouter:
    """The ``/lbsim/v1`` controls."""
    r = APIRouter(prefix="/lbsim/v1", tags=["twin controls"])

    async def get_clock(request: Request) -> Response:
        return JSONResponse(clock_state(cloud_of(request)))

    async def advance(request: Request) -> Response:
        body = await _object(request)
        cloud = cloud_of(request)
        seconds = _number(body, "seconds", maximum=MAX_ADVANCE)
        assert seconds is not None
        cloud.clock.advance(seconds)
        cloud.sync()
        return JSONResponse(clock_state(cloud))

    async def pause(request: Request) -> Response:
        cloud = cloud_of(request)
        cloud.clock.pause()
        return JSONResponse(clock_state(cloud))

    async def resume(request: Request) -> Response:
        cloud = cloud_of(request)
        cloud.clock.resume()
        return JSONResponse(clock_state(cloud))

    async def speed(request: Request) -> Response:
        body = await _object(request)
        cloud = cloud_of(request)
        value = _number(body, "speed", maximum=MAX_SPEED)
        assert value is not None
        cloud.clock.set_speed(value)
        return JSONResponse(clock_state(cloud))

    async def behaviour(request: Request, member: str) -> Response:
        body = await _object(request)
        cloud = cloud_of(request)
        key = resolve(cloud, "member", member)
        what = body.get("behaviour")
        if what not in BEHAVIOURS:
            raise Fault(400, f"'behaviour' must be one of: {', '.join(BEHAVIOURS)}")
        params: dict[str, Any] = {}
        if "status" in body:
            status = body["status"]
            if isinstance(status, bool) or not isinstance(status, int) or not 100 <= status <= 599:
                raise Fault(400, "'status' must be an HTTP status code (100-599)")
            params["status"] = status
        if "factor" in body:
            params["factor"] = _number(body, "factor", minimum=1e-3, maximum=1e4)
        _twin_call(cloud.twin.set_member_behaviour, key, str(what), **params)
        return JSONResponse({"member": key, "behaviour": what, **params, "at": cloud.twin.now})

    async def fail_amphora(request: Request, amphora: str) -> Response:
        cloud = cloud_of(request)
        _twin_call(cloud.twin.fail_amphora, _amphora(cloud, amphora))
        return JSONResponse({"amphora": amphora, "failed": True, "at": cloud.twin.now})

    async def partition(request: Request, amphora: str) -> Response:
        body = await _object(request)
        cloud = cloud_of(request)
        value = body.get("partitioned", True)
        if not isinstance(value, bool):
            raise Fault(400, "'partitioned' must be true or false")
        _twin_call(cloud.twin.partition_amphora, _amphora(cloud, amphora), value)
        return JSONResponse({"amphora": amphora, "partitioned": value, "at": cloud.twin.now})

    async def traffic(request: Request, listener: str) -> Response:
        body = await _object(request)
        cloud = cloud_of(request)
        key = resolve(cloud, "listener", listener)
        rate = _number(body, "rate", maximum=MAX_RATE, optional=True)
        _twin_call(cloud.twin.set_traffic, key, rate)
        return JSONResponse({"listener": key, "rate": rate, "at": cloud.twin.now})

    async def status(request: Request) -> Response:
        cloud = cloud_of(request)
        lbs = []
        for rec in cloud.twin.records("loadbalancer"):
            if getattr(rec, "provisioning_status", None) == "DELETED":
                continue
            tree = cloud.twin.status_tree(rec.key)
            lbs.append({**tree, "haproxy": cloud.twin.haproxy_view(rec.key)})
        return JSONResponse({"clock": clock_state(cloud), "loadbalancers": lbs, "amphorae": cloud.amphorae()})

    async def metrics(request: Request) -> Response:
        cloud = cloud_of(request)
        return PlainTextResponse(cloud.twin.metrics_text(), media_type="text/plain; version=0.0.4")

    async def save(request: Request) -> Response:
        body = await _object(request)
        cloud = cloud_of(request)
        folder = body.get("folder")
        if not isinstance(folder, str) or not folder.strip():
            raise Fault(400, "'folder' must name a directory to write the session to")
        try:
            out = cloud.twin.save(Path(folder).expanduser())
        except OSError as err:
            raise Fault(400, f"cannot write {folder}: {err.strerror or err}") from None
        return JSONResponse({"folder": str(out), "at": cloud.twin.now})

    async def events(request: Request) -> Response:
        cloud = cloud_of(request)
        return JSONResponse({"events": cloud.twin.session_events()})

    add = r.add_api_route
    add("/clock", get_clock, methods=["GET"], summary="The simulated clock", operation_id="lbsim_clock")
    add(
        "/clock/advance",
        advance,
        methods=["POST"],
        summary="Move simulated time forward",
        responses=FAULTS,
        operation_id="lbsim_clock_advance",
        openapi_extra=_body_schema({"seconds": {"type": "number", "minimum": 0, "maximum": MAX_ADVANCE}}, ["seconds"]),
    )
    add("/clock/pause", pause, methods=["POST"], summary="Stop simulated time", operation_id="lbsim_clock_pause")
    add("/clock/resume", resume, methods=["POST"], summary="Let simulated time run", operation_id="lbsim_clock_resume")
    add(
        "/clock/speed",
        speed,
        methods=["PUT"],
        summary="Simulated seconds per wall second (0: manual)",
        responses=FAULTS,
        operation_id="lbsim_clock_speed",
        openapi_extra=_body_schema({"speed": {"type": "number", "minimum": 0, "maximum": MAX_SPEED}}, ["speed"]),
    )
    add(
        "/members/{member}/behaviour",
        behaviour,
        methods=["PUT"],
        summary="Make a member healthy, refuse, hang, ...",
        responses=FAULTS,
        operation_id="lbsim_member_behaviour",
        openapi_extra=_body_schema(
            {
                "behaviour": {"type": "string", "enum": list(BEHAVIOURS)},
                "status": {"type": "integer", "minimum": 100, "maximum": 599},
                "factor": {"type": "number", "minimum": 1e-3, "maximum": 1e4},
            },
            ["behaviour"],
        ),
    )
    add(
        "/amphorae/{amphora}/fail",
        fail_amphora,
        methods=["POST"],
        summary="Fail an amphora (it stops)",
        responses=FAULTS,
        operation_id="lbsim_amphora_fail",
    )
    add(
        "/amphorae/{amphora}/partition",
        partition,
        methods=["PUT"],
        summary="Cut or restore an amphora's network",
        responses=FAULTS,
        operation_id="lbsim_amphora_partition",
        openapi_extra=_body_schema({"partitioned": {"type": "boolean"}}, []),
    )
    add(
        "/listeners/{listener}/traffic",
        traffic,
        methods=["PUT"],
        summary="Poisson client traffic (null stops it)",
        responses=FAULTS,
        operation_id="lbsim_listener_traffic",
        openapi_extra=_body_schema({"rate": {"type": ["number", "null"], "minimum": 0, "maximum": MAX_RATE}}, []),
    )
    add(
        "/status",
        status,
        methods=["GET"],
        summary="Status trees, HAProxy's view, amphorae, clock",
        operation_id="lbsim_status",
    )
    add(
        "/metrics",
        metrics,
        methods=["GET"],
        summary="Prometheus metrics of the simulated traffic",
        operation_id="lbsim_metrics",
    )
    add(
        "/events",
        events,
        methods=["GET"],
        summary="The session's accepted calls and controls as scenario events",
        operation_id="lbsim_events",
    )
    add(
        "/save",
        save,
        methods=["POST"],
        summary="Save the session (result folder + replayable scenario)",
        responses=FAULTS,
        operation_id="lbsim_save",
        openapi_extra=_body_schema({"folder": {"type": "string", "minLength": 1}}, ["folder"]),
    )
    return r


def _twin_call(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """A Twin control; its refusals (``TwinError``, a ``ValueError``) become 400/404 faults."""
    try:
        return fn(*args, **kwargs)
    except ValueError as err:
        raise Fault(404 if "not found" in str(err) else 400, str(err)) from None


async def _object(request: Request) -> dict[str, Any]:
    body = await json_body(request)
    if not isinstance(body, dict):
        raise Fault(400, "the body must be a JSON object")
    return body


def _body_schema(props: dict[str, Any], required: list[str]) -> dict[str, Any]:
    schema = {"type": "object", "properties": props, "required": required}
    return {"requestBody": {"required": bool(required), "content": {"application/json": {"schema": schema}}}}
