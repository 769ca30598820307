"""Stable object ids: Octavia shows UUIDs, lbsim derives them from scenario and object names."""

from __future__ import annotations

import uuid


def object_id(scenario: str, object_type: str, name: str) -> str:
    """A stable UUID for an object (uuid5 of the scenario name, the object type and its name)."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"lbsim:{scenario}:{object_type}:{name}"))
