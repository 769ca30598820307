"""Octavia's vocabulary: status and resource constants, the records the control plane keeps and
reports (objects, changes, jobs, API responses), and the API error constructors.

Values follow ``octavia/common/constants.py`` and ``octavia-lib``; messages follow the v2 API
controllers (see :mod:`lbsim.octavia.controlplane` for the rules that use them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# --------------------------------------------------------------------------
# Constants (octavia/common/constants.py, octavia-lib constants)
# --------------------------------------------------------------------------

LOADBALANCER = "loadbalancer"
LISTENER = "listener"
POOL = "pool"
MEMBER = "member"
HEALTHMONITOR = "healthmonitor"
OBJECT_TYPES: tuple[str, ...] = (LOADBALANCER, LISTENER, POOL, MEMBER, HEALTHMONITOR)

ACTIVE = "ACTIVE"
PENDING_CREATE = "PENDING_CREATE"
PENDING_UPDATE = "PENDING_UPDATE"
PENDING_DELETE = "PENDING_DELETE"
DELETED = "DELETED"
ERROR = "ERROR"
PROVISIONING_STATUSES = frozenset({ACTIVE, PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE, DELETED, ERROR})
PENDING_STATUSES = frozenset({PENDING_CREATE, PENDING_UPDATE, PENDING_DELETE})

ONLINE = "ONLINE"
OFFLINE = "OFFLINE"
DEGRADED = "DEGRADED"
DRAINING = "DRAINING"
NO_MONITOR = "NO_MONITOR"
OPERATING_STATUSES = frozenset({ONLINE, OFFLINE, DEGRADED, ERROR, DRAINING, NO_MONITOR})

#: The lock rule (§2.1): what the LB must be in to accept a change.
MUTABLE_STATUSES = frozenset({ACTIVE})
DELETABLE_STATUSES = frozenset({ACTIVE, ERROR})
FAILOVERABLE_STATUSES = frozenset({ACTIVE, ERROR})

PROVISIONING_STATUS = "provisioning_status"
OPERATING_STATUS = "operating_status"

CREATE = "create"
UPDATE = "update"
DELETE = "delete"
FAILOVER = "failover"
OPERATIONS: tuple[str, ...] = (CREATE, UPDATE, DELETE, FAILOVER)

#: HTTP success codes of the v2 API controllers (POST, PUT, DELETE, failover PUT).
SUCCESS_CODES: Mapping[str, int] = MappingProxyType({CREATE: 201, UPDATE: 200, DELETE: 204, FAILOVER: 202})

SOURCE_API = "api"
SOURCE_HEALTH_MANAGER = "health_manager"

#: ``L4_PROTOCOL_MAP``: listeners clash when they share this and the port.
L4_PROTOCOL: Mapping[str, str] = MappingProxyType(
    {
        "TCP": "TCP",
        "HTTP": "TCP",
        "HTTPS": "TCP",
        "TERMINATED_HTTPS": "TCP",
        "PROXY": "TCP",
        "PROXYV2": "TCP",
        "UDP": "UDP",
        "SCTP": "SCTP",
        "PROMETHEUS": "TCP",
    }
)

#: ``VALID_LISTENER_POOL_PROTOCOL_MAP`` (§4.3).
VALID_POOL_PROTOCOLS: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        "TCP": frozenset({"HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"}),
        "HTTP": frozenset({"HTTP", "PROXY", "PROXYV2"}),
        "HTTPS": frozenset({"HTTPS", "PROXY", "PROXYV2", "TCP"}),
        "TERMINATED_HTTPS": frozenset({"HTTP", "PROXY", "PROXYV2"}),
        "UDP": frozenset({"UDP"}),
        "SCTP": frozenset({"SCTP"}),
        "PROMETHEUS": frozenset(),
    }
)

PROVIDER = "amphora"
#: ``AMPHORA_SUPPORTED_LB_ALGORITHMS`` (api/drivers/amphora_driver/v2/driver.py).
AMPHORA_LB_ALGORITHMS = frozenset({"ROUND_ROBIN", "SOURCE_IP", "LEAST_CONNECTIONS"})

#: Human-readable model names used in Octavia's messages (``_name()``).
RESOURCE_NAMES: Mapping[str, str] = MappingProxyType(
    {
        LOADBALANCER: "Load Balancer",
        LISTENER: "Listener",
        POOL: "Pool",
        MEMBER: "Member",
        HEALTHMONITOR: "Health Monitor",
    }
)

#: Relation keys kept in ``Obj.attrs`` (values are object names).
#: listener: ``loadbalancer``, ``default_pool``; pool: ``loadbalancer``;
#: member and healthmonitor: ``pool``.
_PARENT_KEY: Mapping[str, str] = MappingProxyType(
    {LISTENER: LOADBALANCER, POOL: LOADBALANCER, MEMBER: POOL, HEALTHMONITOR: POOL}
)

#: Fields a PUT may not change (not in Octavia's ``*PUT`` types, or relations).
_IMMUTABLE_ON_UPDATE: Mapping[str, frozenset[str]] = MappingProxyType(
    {
        LOADBALANCER: frozenset({"topology"}),
        LISTENER: frozenset({"protocol", "protocol_port", LOADBALANCER}),
        POOL: frozenset({"protocol", LOADBALANCER, LISTENER}),
        MEMBER: frozenset({"address", "protocol_port", POOL}),
        HEALTHMONITOR: frozenset({"type", POOL}),
    }
)


# --------------------------------------------------------------------------
# Data records
# --------------------------------------------------------------------------


@dataclass
class Obj:
    """One database row.  Treat instances returned by the API as read-only.

    ``attrs`` holds the API fields (``admin_state_up``, ``weight``,
    ``protocol``, ...) and the relations by name: ``listener.loadbalancer``,
    ``listener.default_pool``, ``pool.loadbalancer``, ``member.pool``,
    ``healthmonitor.pool``.  ``pool.listeners`` is derived
    (:meth:`ControlPlane.pool_listeners`).
    """

    type: str
    name: str
    provisioning_status: str
    operating_status: str
    attrs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ObjSpec:
    """Description of an object for :meth:`ControlPlane.load_active` and
    :meth:`ControlPlane.create_loadbalancer_tree`.

    ``attrs`` uses the same relation keys as :class:`Obj` (a listener's or a
    pool's ``loadbalancer`` may be omitted inside a tree).
    ``operating_status`` is only used by ``load_active``.
    """

    type: str
    name: str
    attrs: Mapping[str, Any] = field(default_factory=dict)
    operating_status: str | None = None


@dataclass(frozen=True)
class Change:
    """A time-free status change: one future ``transitions.csv`` row.

    ``old`` is None when the object was just created; ``new`` is ``DELETED``
    when a child row was hard-deleted.
    """

    object_type: str
    name: str
    field: str
    old: str | None
    new: str


@dataclass(frozen=True, eq=False)
class Job:
    """An asynchronous worker flow holding its load balancer's lock.

    ``body`` is what the request asked for (the engine applies it to the
    data plane when the job succeeds).  ``source`` is ``api`` or
    ``health_manager`` (amphora failover, §1.8).
    """

    id: int
    op: str
    object_type: str
    name: str
    loadbalancer: str
    body: Mapping[str, Any] = field(default_factory=dict)
    cascade: bool = False
    source: str = SOURCE_API


@dataclass(frozen=True)
class ApiResponse:
    """What the API answered: the code, Octavia's message, the job (only on
    success) and the status changes made in the request transaction."""

    code: int
    message: str
    job: Job | None = None
    changes: tuple[Change, ...] = ()

    @property
    def ok(self) -> bool:
        """True for a 2xx answer."""
        return 200 <= self.code < 300


class _ApiError(Exception):
    """Internal: a request was refused with ``code`` and ``message``."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _not_found(object_type: str, name: str) -> _ApiError:
    return _ApiError(404, f"{RESOURCE_NAMES[object_type]} {name} not found.")


def _immutable(object_type: str, name: str) -> _ApiError:
    return _ApiError(409, f"{RESOURCE_NAMES[object_type]} {name} is immutable and cannot be updated.")


def _validation(detail: str) -> _ApiError:
    return _ApiError(400, f"Validation failure: {detail}")


def _unsupported_algorithm(algorithm: str) -> _ApiError:
    return _ApiError(
        501,
        f"Provider '{PROVIDER}' does not support a requested option: "
        f"Amphora provider does not support {algorithm} algorithm.",
    )


def _no_children(protocol: str) -> _ApiError:
    return _ApiError(400, f"Protocol {protocol} listeners cannot have child objects.")
