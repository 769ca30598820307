"""Request helpers shared by the v2 routers: the JSON body as WSME reads it, the project,
the ``cascade`` flag, and the Cloud of the running app."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from lbsim.server.octavia.backend import Cloud
from lbsim.server.octavia.errors import Fault


def cloud_of(request: Request) -> Cloud:
    """The :class:`Cloud` the app serves, brought up to the clock's now."""
    cloud: Cloud = request.app.state.cloud
    cloud.sync()
    return cloud


async def json_body(request: Request) -> Any:
    """The request body as JSON: 415 for another media type, 400 for bad JSON."""
    raw = await request.body()
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", "") and not ctype.endswith("+json"):
        raise Fault(415, f"Unknown mimetype: {ctype}")
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Fault(400, "Request is not in valid JSON format") from None


def project_of(request: Request, cloud: Cloud) -> str:
    """The project a request acts for: ``X-Project-Id`` (what Keystone middleware would set),
    else the default project of a no-auth cloud."""
    value = request.headers.get("x-project-id") or request.headers.get("x-tenant-id")
    return value.strip() if value and value.strip() else cloud.project


def flag(value: str | None) -> bool:
    """A boolean query flag (``cascade=True``, ``additive_only=true``)."""
    return (value or "").strip().lower() in ("true", "1", "yes", "y", "on", "t")


def path_url(request: Request) -> str:
    """Scheme, host and path of the request, as pecan's ``path_url`` (for page links)."""
    return str(request.url.replace(query="", fragment=""))
