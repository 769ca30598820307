"""Octavia's error bodies and the WSME wording of field errors.

Octavia answers API errors with ``{"faultcode", "faultstring", "debuginfo": null}`` and routing
errors (no controller for the path, or a method the controller lacks) with pecan's
``{"code", "title", "description"}``. The field messages follow WSME, the request-body layer
Octavia's v2 API is built on: ``Invalid input for field/attribute X. Value: 'v'. reason`` and
``Unknown attribute for argument A: x``.
"""

from __future__ import annotations

from collections.abc import Iterable
from http import HTTPStatus
from typing import Any

from starlette.responses import JSONResponse, Response


class Fault(Exception):
    """An API error to send back as Octavia's fault body (raised anywhere in a handler)."""

    def __init__(self, code: int, message: str, faultcode: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.faultcode = faultcode or ("Server" if code >= 500 else "Client")


def fault_body(message: str, faultcode: str = "Client") -> dict[str, Any]:
    """The JSON body of an Octavia fault."""
    return {"faultcode": faultcode, "faultstring": message, "debuginfo": None}


def fault_response(code: int, message: str, faultcode: str | None = None) -> Response:
    """An Octavia fault as a response."""
    fc = faultcode or ("Server" if code >= 500 else "Client")
    return JSONResponse(fault_body(message, fc), status_code=code)


def routing_response(code: int) -> Response:
    """pecan's body for a path or method no controller serves (404, 405)."""
    try:
        title = HTTPStatus(code).phrase
    except ValueError:
        title = "Error"
    return JSONResponse({"code": code, "title": title, "description": ""}, status_code=code)


def invalid_input(field: str, value: Any, reason: str) -> Fault:
    """WSME's ``InvalidInput``: one field (or a whole argument) failed validation."""
    return Fault(400, f"Invalid input for field/attribute {field}. Value: '{value}'. {reason}")


def unknown_attributes(argument: str, names: Iterable[str]) -> Fault:
    """WSME's ``UnknownAttribute``: keys the request type does not have."""
    listed = list(names)
    noun = "attributes" if len(listed) > 1 else "attribute"
    return Fault(400, f"Unknown {noun} for argument {argument}: {', '.join(listed)}")


def validation(detail: str) -> Fault:
    """Octavia's ``ValidationException``."""
    return Fault(400, f"Validation failure: {detail}")


def not_found(resource: str, key: str) -> Fault:
    """Octavia's ``NotFound``: ``<Resource> <id> not found.``"""
    return Fault(404, f"{resource} {key} not found.")
