"""Octavia's per-project quotas (``[quotas] default_*_quota``; -1 = unlimited, the default).

A create that would take a project past its quota for that kind of object is refused
with HTTP 403 "Quota has been met for resources: <Resource>" (``QuotaException``; the
resource is the data model's name: Load Balancer, Listener, Pool, Member, Health
Monitor, L7 Policy, L7 Rule). Octavia counts the project's objects in use, whatever
their status (a create that failed leaves an ERROR row that still counts); a delete
frees its quota when its flow ends. A scenario is one project.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbsim.scenario.base import _Strict

Limit = Annotated[int, Field(ge=-1, le=2**31 - 1)]

#: object type -> the name in Octavia's 403 message
RESOURCE_NAMES = {
    "loadbalancer": "Load Balancer",
    "listener": "Listener",
    "pool": "Pool",
    "member": "Member",
    "healthmonitor": "Health Monitor",
    "l7policy": "L7 Policy",
    "l7rule": "L7 Rule",
}


class Quotas(_Strict):
    """The project's quotas; -1 (the default) is unlimited, 0 forbids the kind."""

    loadbalancer: Limit = -1
    listener: Limit = -1
    pool: Limit = -1
    member: Limit = -1
    healthmonitor: Limit = -1
    l7policy: Limit = -1
    l7rule: Limit = -1

    def limits(self) -> dict[str, int]:
        """Object type -> quota, limited kinds only."""
        return {k: v for k, v in self.model_dump().items() if v != -1}
