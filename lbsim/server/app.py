"""The FastAPI application of ``lbsim serve``: Octavia's v2 API, the Neutron look-ups, the
twin controls and the live page on one loopback endpoint.

What holds for every response: an ``x-openstack-request-id: req-<uuid>`` header (routing
errors and crashes included), Octavia's fault body for API errors, pecan's
``{"code", "title", "description"}`` for a path or method nobody serves, and never an
unhandled exception: anything unexpected is logged and answered as a ``Server`` fault while
the server keeps serving. A background task keeps the Twin up with the clock between requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lbsim._version import __version__
from lbsim.server.octavia import extras, models, routes
from lbsim.server.octavia.backend import Cloud
from lbsim.server.octavia.errors import Fault, fault_body, fault_response, routing_response

LOG = logging.getLogger("lbsim.serve")

#: Octavia 19's API versions (id, last change); the last one is CURRENT.
VERSIONS: tuple[tuple[str, str], ...] = (
    ("v2.0", "2016-12-11T00:00:00Z"),
    ("v2.1", "2018-04-20T00:00:00Z"),
    ("v2.2", "2018-07-31T00:00:00Z"),
    ("v2.3", "2018-12-18T00:00:00Z"),
    ("v2.4", "2018-12-19T00:00:00Z"),
    ("v2.5", "2019-01-21T00:00:00Z"),
    ("v2.6", "2019-01-25T00:00:00Z"),
    ("v2.7", "2018-01-25T12:00:00Z"),
    ("v2.8", "2019-02-12T00:00:00Z"),
    ("v2.9", "2019-03-04T00:00:00Z"),
    ("v2.10", "2019-03-05T00:00:00Z"),
    ("v2.11", "2019-06-24T00:00:00Z"),
    ("v2.12", "2019-09-11T00:00:00Z"),
    ("v2.13", "2019-09-13T00:00:00Z"),
    ("v2.14", "2019-11-10T00:00:00Z"),
    ("v2.15", "2020-03-10T00:00:00Z"),
    ("v2.16", "2020-03-15T00:00:00Z"),
    ("v2.17", "2020-04-29T00:00:00Z"),
    ("v2.18", "2020-04-29T01:00:00Z"),
    ("v2.19", "2020-05-12T00:00:00Z"),
    ("v2.20", "2020-08-02T00:00:00Z"),
    ("v2.21", "2020-09-03T00:00:00Z"),
    ("v2.22", "2020-09-04T00:00:00Z"),
    ("v2.23", "2020-09-07T00:00:00Z"),
    ("v2.24", "2020-10-15T00:00:00Z"),
    ("v2.25", "2021-10-02T00:00:00Z"),
    ("v2.26", "2022-08-29T00:00:00Z"),
    ("v2.27", "2023-05-05T00:00:00Z"),
    ("v2.28", "2023-11-08T00:00:00Z"),
    ("v2.29", "2024-10-15T00:00:00Z"),
    ("v2.30", "2025-02-26T00:00:00Z"),
)
TICK = 0.05  # wall seconds between the background catch-ups of the simulation
#: the most wall time of simulation work the clock may run ahead of the twin; beyond it the
#: clock is held back (simulated time runs slower than asked rather than requests waiting)
MAX_BACKLOG = 1.0


class RequestIdAndCrashGuard:
    """Pure ASGI middleware: a request id on every response, and any exception that escaped
    the handlers logged and turned into a ``Server`` fault (the server keeps serving)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = f"req-{uuid.uuid4()}".encode()
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [h for h in message.get("headers", []) if h[0].lower() != b"x-openstack-request-id"]
                message = {**message, "headers": [*headers, (b"x-openstack-request-id", rid)]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception as exc:
            LOG.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                return
            response = JSONResponse(fault_body(f"lbsim internal error: {type(exc).__name__}: {exc}", "Server"), 500)
            await response(scope, receive, send_with_id)


def version_document(request: Request) -> dict[str, Any]:
    """``GET /``: the version list, each ``self`` link on the host the client used."""
    href = str(request.base_url).rstrip("/") + "/v2"
    last = len(VERSIONS) - 1
    return {
        "versions": [
            {
                "id": vid,
                "links": [{"href": href, "rel": "self"}],
                "status": "CURRENT" if i == last else "SUPPORTED",
                "updated": updated,
            }
            for i, (vid, updated) in enumerate(VERSIONS)
        ]
    }


async def _tick(app: FastAPI) -> None:
    """Keep the simulation level with the clock; slices so that requests get their turn."""
    while True:
        await asyncio.sleep(TICK)
        cloud: Cloud | None = getattr(app.state, "cloud", None)
        if cloud is None:
            continue
        try:
            target = cloud.clock.sim_now()
            deadline = time.monotonic() + 0.05
            while cloud.twin.now < target and time.monotonic() < deadline:
                cloud.twin.advance_to(min(target, cloud.twin.now + max(0.05, cloud.clock.speed * 0.01)))
            cloud.lag = max(0.0, target - cloud.twin.now)
            allowed = MAX_BACKLOG * cloud.clock.speed
            if cloud.clock.running and cloud.lag > allowed:
                cloud.held_back += cloud.lag - allowed
                cloud.clock.hold_back(cloud.twin.now + allowed)
            if cloud.lag == 0.0:
                cloud.sync()
        except Exception:
            LOG.exception("the simulation failed to advance; serving on")
            await asyncio.sleep(1.0)


def create_app(cloud: Cloud, *, tick: bool = True) -> FastAPI:
    """The app serving ``cloud`` (its Twin, clock and Neutron fixtures)."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(_tick(app)) if tick else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    app = FastAPI(
        title="lbsim serve: Octavia v2 API twin",
        version=__version__,
        description="OpenStack Octavia's load-balancing API (v2) served by the lbsim twin, plus the Neutron "
        "look-ups the openstack CLI makes and the twin's own controls under /lbsim/v1.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.cloud = cloud
    app.state.twin = cloud.twin
    app.state.clock = cloud.clock
    app.add_middleware(RequestIdAndCrashGuard)

    @app.exception_handler(Fault)
    async def _fault(request: Request, exc: Fault) -> Response:
        return fault_response(exc.code, exc.message, exc.faultcode)

    @app.exception_handler(StarletteHTTPException)
    async def _routing(request: Request, exc: StarletteHTTPException) -> Response:
        return routing_response(exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        return fault_response(400, "Invalid input: " + "; ".join(str(e.get("msg")) for e in exc.errors()))

    @app.get("/", summary="Version discovery", tags=["versions"])
    async def root(request: Request) -> Response:
        return JSONResponse(version_document(request))

    async def v2(request: Request) -> Response:
        return JSONResponse("v2")

    for path in ("/v2", "/v2/", "/v2.0", "/v2.0/"):
        app.add_api_route(
            path, v2, methods=["GET"], include_in_schema=path == "/v2.0", summary="The v2 API", tags=["versions"]
        )

    for r in [*routes.routers(), *extras.routers()]:
        app.include_router(r, prefix="/v2.0")
        app.include_router(r, prefix="/v2", include_in_schema=False)

    from lbsim.server import controls, neutron

    app.include_router(neutron.router(lambda: app.state.cloud.neutron))
    app.include_router(controls.router())
    try:
        from lbsim.server import ui
    except ImportError:  # pragma: no cover - the live page is optional
        ui = None  # type: ignore[assignment]
    if ui is not None and hasattr(ui, "router"):
        app.include_router(ui.router)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
        comps = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in [*models.REQUESTS.values(), models.MEMBERS_BATCH]:
            js = model.model_json_schema(ref_template="#/components/schemas/{model}")
            for name, sub in js.pop("$defs", {}).items():
                comps.setdefault(name, sub)
            comps[model.__name__] = js
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
    return app
