"""Stable object ids: Octavia shows UUIDs, lbsim derives them from scenario and object names."""

from __future__ import annotations

import hashlib
import uuid

_NAMESPACE = uuid.NAMESPACE_URL.bytes
#: the RFC 4122 variant bits set on the first hex digit of the clock sequence
_VARIANT = "89ab89ab89ab89ab"


def object_id(scenario: str, object_type: str, name: str) -> str:
    """A stable UUID for an object (uuid5 of the scenario name, the object type and its name).

    Built from the SHA-1 digest as ``str(uuid.uuid5(uuid.NAMESPACE_URL, ...))`` builds it,
    without the ``UUID`` object: a 10,000-member result names every member.
    """
    h = hashlib.sha1(_NAMESPACE + f"lbsim:{scenario}:{object_type}:{name}".encode()).hexdigest()
    return f"{h[:8]}-{h[8:12]}-5{h[13:16]}-{_VARIANT[int(h[16], 16)]}{h[17:20]}-{h[20:32]}"
