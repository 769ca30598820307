"""The quota check of the control plane (see :mod:`lbsim.scenario.quotas`).

``check_quota`` is called for every create before Octavia's other state checks (the API
controllers call ``check_quota_met`` inside the lock session, before the status tests);
the load-balancer graph create checks every kind it creates.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from lbsim.octavia.objects import DELETED, LOADBALANCER, _ApiError
from lbsim.scenario.quotas import RESOURCE_NAMES


def in_use(cp: Any, kind: str) -> int:
    """Objects of ``kind`` the project holds (a deleted load balancer's row does not count)."""
    return sum(1 for o in cp.objects(kind) if not (kind == LOADBALANCER and o.provisioning_status == DELETED))


def check_quota(cp: Any, limits: Mapping[str, int], kinds: Iterable[str]) -> None:
    """403 when creating one object of each of ``kinds`` (repeats count) passes a quota."""
    wanted: dict[str, int] = {}
    for k in kinds:
        wanted[k] = wanted.get(k, 0) + 1
    for kind, n in wanted.items():
        limit = limits.get(kind, -1)
        if limit != -1 and in_use(cp, kind) + n > limit:
            raise _ApiError(403, f"Quota has been met for resources: {RESOURCE_NAMES[kind]}")
