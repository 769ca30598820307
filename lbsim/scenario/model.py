"""Scenario schema: Octavia's API objects plus lbsim's simulation settings.

Field names, defaults and value ranges are Octavia 19's v2 API rules
(reference/octavia-semantics.md §4); the lbsim-only fields (member ``concurrency`` and
``service_time``, traffic, events, expectations) are the contract's
(contract/scenario-and-results-v1.md). Every model forbids unknown keys so that a
misspelt field is an error, not a silently ignored setting.

Checks that need the whole scenario (unique names, references, protocol combinations)
live in :func:`lbsim.scenario.validation.check_scenario`, so that each problem is reported
with its own field path.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Tag,
    ValidationInfo,
    field_validator,
    model_serializer,
    model_validator,
)

from lbsim.scenario.access import AllowedCidrs as AllowedCidrs
from lbsim.scenario.base import (
    _EXPECTED_CODES as _EXPECTED_CODES,
)
from lbsim.scenario.base import (
    HM_TYPES as HM_TYPES,
)
from lbsim.scenario.base import (
    HTTP_METHODS as HTTP_METHODS,
)
from lbsim.scenario.base import (
    L4_PROTOCOL as L4_PROTOCOL,
)
from lbsim.scenario.base import (
    LB_ALGORITHMS as LB_ALGORITHMS,
)
from lbsim.scenario.base import (
    LISTENER_POOL_PROTOCOLS as LISTENER_POOL_PROTOCOLS,
)
from lbsim.scenario.base import (
    LISTENER_PROTOCOLS as LISTENER_PROTOCOLS,
)
from lbsim.scenario.base import (
    MAX_TIMEOUT_MS as MAX_TIMEOUT_MS,
)
from lbsim.scenario.base import (
    PERSISTENCE_TYPES as PERSISTENCE_TYPES,
)
from lbsim.scenario.base import (
    POOL_HM_TYPES as POOL_HM_TYPES,
)
from lbsim.scenario.base import (
    POOL_PROTOCOLS as POOL_PROTOCOLS,
)
from lbsim.scenario.base import (
    Constant as Constant,
)
from lbsim.scenario.base import (
    Distribution as Distribution,
)
from lbsim.scenario.base import (
    Empirical as Empirical,
)
from lbsim.scenario.base import (
    Exponential as Exponential,
)
from lbsim.scenario.base import (
    Gamma as Gamma,
)
from lbsim.scenario.base import (
    LogNormal as LogNormal,
)
from lbsim.scenario.base import (
    Name as Name,
)
from lbsim.scenario.base import (
    NonNegTime as NonNegTime,
)
from lbsim.scenario.base import (
    Port as Port,
)
from lbsim.scenario.base import (
    PosFloat as PosFloat,
)
from lbsim.scenario.base import (
    TimeoutMs as TimeoutMs,
)
from lbsim.scenario.base import (
    Uniform as Uniform,
)
from lbsim.scenario.base import (
    _const as _const,
)
from lbsim.scenario.base import (
    _exp as _exp,
)
from lbsim.scenario.base import (
    _Strict as _Strict,
)
from lbsim.scenario.cloud import AMPHORA_ROLES as AMPHORA_ROLES
from lbsim.scenario.cloud import AmphoraEvent as AmphoraEvent
from lbsim.scenario.cloud import Clients as Clients
from lbsim.scenario.cloud import Network as Network
from lbsim.scenario.cloud import NetworkSettings as NetworkSettings
from lbsim.scenario.cloud import QosPolicy as QosPolicy
from lbsim.scenario.cloud import Subnet as Subnet
from lbsim.scenario.cloud import TrafficEvent as TrafficEvent
from lbsim.scenario.cloud import ZoneEvent as ZoneEvent
from lbsim.scenario.health_paths import HealthPaths as HealthPaths
from lbsim.scenario.idle import IdleClients as IdleClients
from lbsim.scenario.l7 import L7Policy as L7Policy
from lbsim.scenario.l7 import L7Rule as L7Rule
from lbsim.scenario.l7 import RequestKind as RequestKind
from lbsim.scenario.quotas import Quotas as Quotas
from lbsim.scenario.tls import SessionReuse as SessionReuse
from lbsim.scenario.tls import TlsCost as TlsCost

# --------------------------------------------------------------------------------------
# Octavia objects (§4)
# --------------------------------------------------------------------------------------


class HealthMonitor(_Strict):
    """A pool's health monitor; maps to HAProxy ``check inter/timeout/rise/fall``."""

    name: Name | None = None
    type: Literal["HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP"]
    delay: Annotated[int, Field(ge=0, description="seconds between checks (HAProxy inter)")]
    timeout: Annotated[int, Field(ge=0, description="seconds a check may take")]
    max_retries: Annotated[int, Field(ge=1, le=10, description="HAProxy rise")]
    max_retries_down: Annotated[int, Field(ge=1, le=10, description="HAProxy fall")] = 3
    http_method: Literal[HTTP_METHODS] | None = None  # type: ignore[valid-type]
    url_path: Annotated[str, Field(pattern=r"^/")] | None = None
    expected_codes: str | None = None
    http_version: Literal[1.0, 1.1] | None = None  # type: ignore[valid-type]
    domain_name: str | None = None
    admin_state_up: bool = True

    @field_validator("expected_codes", mode="before")
    @classmethod
    def _codes_as_text(cls, v: Any) -> Any:
        # YAML reads an unquoted ``expected_codes: 200`` as a number; Octavia's field is
        # text, so take a plain integer as its decimal spelling (bools are not codes).
        if isinstance(v, int) and not isinstance(v, bool):
            return str(v)
        return v

    @field_validator("expected_codes")
    @classmethod
    def _codes(cls, v: str | None) -> str | None:
        if v is not None and not _EXPECTED_CODES.match(v.strip()):
            raise ValueError(
                "expected a comma-separated list of 3-digit codes ('200' or '200, 202') or one range ('200-204')"
            )
        return v

    # Field validators (not a model validator) so that the error names the offending
    # field, e.g. ``healthmonitor.url_path``, and its line. ``type`` and ``http_version``
    # are declared before the fields checked here, so ``info.data`` holds them when valid.
    @field_validator("http_method", "url_path", "expected_codes", "http_version", "domain_name")
    @classmethod
    def _http_only_options(cls, v: Any, info: ValidationInfo) -> Any:
        typ = info.data.get("type")
        if v is not None and typ is not None and typ not in ("HTTP", "HTTPS"):
            raise ValueError(f"'{info.field_name}' is only valid for HTTP and HTTPS monitors (type is {typ})")
        return v

    @field_validator("domain_name")
    @classmethod
    def _domain_needs_11(cls, v: str | None, info: ValidationInfo) -> str | None:
        if v is not None and info.data.get("http_version") != 1.1:
            raise ValueError("domain_name requires http_version 1.1")
        return v

    @property
    def method(self) -> str:
        """HTTP method used by the check (Octavia default GET)."""
        return self.http_method or "GET"

    @property
    def path(self) -> str:
        """URL path of the check (Octavia default ``/``)."""
        return self.url_path or "/"

    @property
    def codes(self) -> str:
        """Expected status codes (Octavia default ``200``)."""
        return self.expected_codes or "200"


class Member(_Strict):
    """A pool member: a backend server plus how it serves requests (lbsim)."""

    name: Name
    address: str
    protocol_port: Port
    weight: Annotated[int, Field(ge=0, le=256)] = 1
    backup: bool = False
    admin_state_up: bool = True
    monitor_address: str | None = None
    monitor_port: Port | None = None
    health_paths: HealthPaths | None = Field(default=None, description="lbsim: HTTP check answers per path")
    concurrency: Annotated[int, Field(ge=1, le=100_000, description="requests served at once")] = 1
    service_time: Distribution = Field(default_factory=lambda: _exp(0.01))
    behaviour: Literal["healthy", "refuse", "hang", "error", "slow"] = "healthy"
    status: Annotated[int, Field(ge=100, le=599)] = 500
    factor: PosFloat = 10.0

    @field_validator("address", "monitor_address")
    @classmethod
    def _ip(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"expected an IPv4 or IPv6 address, got {v!r}") from None
        return v


class SessionPersistence(_Strict):
    """Pool session persistence (Octavia ``session_persistence``)."""

    type: Literal["SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE"]
    cookie_name: Annotated[str, Field(min_length=1, max_length=255)] | None = None
    persistence_timeout: Annotated[int, Field(ge=0)] | None = None  # UDP/SCTP: idle seconds (unset/0: 360)
    persistence_granularity: str | None = None  # UDP/SCTP: netmask grouping clients (an IP, as Octavia types it)

    @field_validator("cookie_name")
    @classmethod
    def _cookie_only_app(cls, v: str | None, info: ValidationInfo) -> str | None:
        typ = info.data.get("type")
        if v is not None and typ is not None and typ != "APP_COOKIE":
            raise ValueError("cookie_name is only valid with APP_COOKIE persistence")
        return v

    @model_validator(mode="after")
    def _cookie(self) -> SessionPersistence:
        if self.type == "APP_COOKIE" and not self.cookie_name:
            raise ValueError("APP_COOKIE persistence requires cookie_name")
        return self


class Pool(_Strict):
    """A pool (HAProxy backend) with its members and optional health monitor."""

    name: Name
    protocol: Literal["TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2", "UDP", "SCTP"]
    lb_algorithm: Literal["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT"]
    admin_state_up: bool = True
    session_persistence: SessionPersistence | None = None
    tls_enabled: bool = Field(default=False, description="re-encrypt to the members (costs amphora CPU)")
    healthmonitor: HealthMonitor | None = None
    members: list[Member] = Field(default_factory=list)
    autoscaling: Autoscaling | None = Field(
        default=None, description="lbsim: a scaling policy that adds and removes members through the API"
    )


class Listener(_Strict):
    """A listener (HAProxy frontend)."""

    name: Name
    protocol: Literal["TCP", "HTTP", "HTTPS", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS"]
    protocol_port: Port
    connection_limit: Annotated[int, Field(ge=-1)] = -1
    default_pool: Name | None = None
    admin_state_up: bool = True
    timeout_client_data: TimeoutMs = 50000
    timeout_member_connect: TimeoutMs = 5000
    timeout_member_data: TimeoutMs = 50000
    timeout_tcp_inspect: TimeoutMs = 0
    default_tls_container_ref: str | None = None
    l7policies: list[L7Policy] = Field(default_factory=list, description="L7 policies (HTTP/TERMINATED_HTTPS)")
    insert_headers: dict[str, str] = Field(default_factory=dict, description="headers added to member requests")
    allowed_cidrs: AllowedCidrs = Field(default=None, description="client CIDRs let in (VIP security group)")


class Flavor(_Strict):
    """The amphora's capacity (lbsim): CPUs and what one CPU handles.

    Each new connection costs ``1 / requests_per_second_per_vcpu`` seconds of one vCPU
    before HAProxy dispatches it, so an overloaded amphora adds latency; connections
    beyond ``max_connections`` (queued or active) are dropped (``connect`` errors).
    """

    vcpus: Annotated[int, Field(ge=1, le=256)] = 1
    requests_per_second_per_vcpu: PosFloat = 20000.0
    max_connections: Annotated[int, Field(ge=1)] | None = None
    tls: TlsCost = Field(default_factory=TlsCost, description="CPU cost of TLS work (lbsim.scenario.tls)")


class LoadBalancer(_Strict):
    """The load balancer with its listeners and pools (a fully populated tree)."""

    name: Name
    admin_state_up: bool = True
    topology: Literal["SINGLE", "ACTIVE_STANDBY"] = "SINGLE"
    flavor: Flavor | None = None
    vip_address: str | None = None
    vip_subnet: Name | None = Field(
        default=None, description="lbsim: the subnet of network: the VIP is on (default: the first one)"
    )
    vip_qos_policy_id: Name | None = Field(default=None, description="a QoS policy of network: (bandwidth limit)")
    availability_zone: Name | Annotated[list[Name], Field(min_length=1, max_length=2)] | None = Field(
        default=None, description="a zone of network: availability_zones (lbsim: or two, an AZ spread)"
    )
    listeners: list[Listener] = Field(default_factory=list)
    pools: list[Pool] = Field(default_factory=list)


# --------------------------------------------------------------------------------------
# Control-plane settings
# --------------------------------------------------------------------------------------


class Workers(_Strict):
    """Durations of controller-worker flows (assumptions; Octavia has no fixed figures).

    Defaults are lbsim's assumptions for a healthy cloud: configuration pushes take about a
    second, amphora builds are dominated by the Nova boot (about a minute).
    """

    update: Distribution = Field(default_factory=lambda: _const(1.0))
    create_loadbalancer: Distribution = Field(default_factory=lambda: _const(60.0))
    delete_loadbalancer: Distribution = Field(default_factory=lambda: _const(10.0))
    amphora_boot: Distribution = Field(default_factory=lambda: _const(60.0))
    failure_probability: Annotated[float, Field(ge=0, le=1)] = 0.0


class OctaviaSettings(_Strict):
    """Octavia configuration options that shape timing (octavia-semantics.md §5)."""

    heartbeat_interval: PosFloat = 10.0
    heartbeat_timeout: PosFloat = 60.0
    health_check_interval: PosFloat = 3.0
    failover_threshold: Annotated[int, Field(ge=1)] | None = None
    vrrp_advert_int: PosFloat = 1.0
    workers: Workers = Field(default_factory=Workers)
    quotas: Quotas = Field(default_factory=Quotas, description="per-project quotas (-1: unlimited)")


# --------------------------------------------------------------------------------------
# Traffic (contract: arrival processes)
# --------------------------------------------------------------------------------------


class Poisson(_Strict):
    """Poisson arrivals at ``rate`` requests per second."""

    process: Literal["poisson"]
    rate: PosFloat


class ConstantRate(_Strict):
    """Evenly spaced arrivals at ``rate`` requests per second."""

    process: Literal["constant"]
    rate: PosFloat


class Profile(_Strict):
    """Non-homogeneous Poisson arrivals, piecewise-linear rate over ``[[t, rate], ...]``."""

    process: Literal["profile"]
    profile: list[tuple[NonNegTime, NonNegTime]] = Field(min_length=1)

    @field_validator("profile")
    @classmethod
    def _sorted(cls, v: list[tuple[float, float]]) -> list[tuple[float, float]]:
        times = [t for t, _ in v]
        if times != sorted(times):
            raise ValueError("profile times must be in increasing order")
        return v


class Mmpp(_Strict):
    """Two-state Markov-modulated Poisson process (bursty traffic)."""

    process: Literal["mmpp"]
    rates: tuple[NonNegTime, NonNegTime]
    switch: tuple[PosFloat, PosFloat]


class Trace(_Strict):
    """Replay of a CSV trace ``time,client[,port]`` (path relative to the scenario)."""

    process: Literal["trace"]
    file: str


Arrival = Annotated[Poisson | ConstantRate | Profile | Mmpp | Trace, Field(discriminator="process")]


class TrafficSource(_Strict):
    """Requests arriving at one listener."""

    listener: Name
    arrival: Arrival
    clients: Clients = Field(default_factory=Clients)
    request_bytes: Annotated[int, Field(ge=0)] = Field(default=300, description="bytes in per request (stats)")
    response_bytes: Annotated[int, Field(ge=0)] = Field(default=3000, description="bytes out per response (stats)")
    idle_clients: IdleClients | None = Field(default=None, description="connections silent before their request")
    tls_session_reuse: SessionReuse = Field(default=0.0, description="share of resumed TLS sessions")
    requests: list[RequestKind] = Field(
        default_factory=list, description="lbsim: the request mix L7 rules see (default: GET / without Host)"
    )


class StochasticFailures(_Strict):
    """Random member failures: up for a time drawn from ``mttf``, down for ``mttr``.

    Applies to the named ``members``, or to every member of ``pool``, each with its own
    independent up/down cycle; while down a member behaves as ``fault``.
    """

    members: list[Name] | None = None
    pool: Name | None = None
    mttf: Distribution
    mttr: Distribution
    fault: Fault = "refuse"

    @model_validator(mode="after")
    def _target(self) -> StochasticFailures:
        if (self.members is None) == (self.pool is None):
            raise ValueError("give exactly one of 'members' or 'pool'")
        return self


# --------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------


Fault = Literal["refuse", "hang", "error", "slow"]


class MemberEvent(_Strict):
    """A change of a member's behaviour (fault injection).

    Besides the contract's behaviours, lbsim knows ``flap`` (alternating ``fault`` and
    healthy: faulty for ``duty`` of every ``period`` seconds, until ``until``) and
    ``partial`` (a ``fraction`` of requests and checks meet ``fault``, the rest are
    served). ``port`` limits the change to the traffic port or to the health-check
    port (the member's ``monitor_port``), for a health endpoint that disagrees with
    the service.
    """

    at: NonNegTime
    member: Name
    behaviour: Literal["healthy", "refuse", "hang", "error", "slow", "flap", "partial"]
    status: Annotated[int, Field(ge=100, le=599)] = 500
    factor: PosFloat = 10.0
    port: Literal["both", "traffic", "monitor"] = "both"
    fault: Fault = "refuse"
    period: PosFloat | None = None
    duty: Annotated[float, Field(gt=0, lt=1)] = 0.5
    until: NonNegTime | None = None
    fraction: Annotated[float, Field(ge=0, le=1)] | None = None

    @model_validator(mode="after")
    def _needs(self) -> MemberEvent:
        if self.behaviour == "flap" and self.period is None:
            raise ValueError("a 'flap' needs 'period' (seconds for one faulty + healthy cycle)")
        if self.behaviour == "partial" and self.fraction is None:
            raise ValueError("a 'partial' failure needs 'fraction' (share of requests that fail)")
        if self.behaviour not in ("flap", "partial") and (
            self.period is not None or self.fraction is not None or self.until is not None
        ):
            raise ValueError("'period', 'until' and 'fraction' only go with 'flap' or 'partial'")
        return self


class NetworkEvent(_Strict):
    """A partition of the network between the amphorae and some members, or its end.

    While partitioned, connections and health checks to those members time out (no
    answer at all) instead of being refused.
    """

    at: NonNegTime
    network: Literal["partition", "heal"]
    members: list[Name] | None = Field(default=None, description="omitted: every member")


class ApiEvent(_Strict):
    """An Octavia API call made at ``at`` (create | update | delete | failover).

    The most specific object named is the one acted upon; on a create the others name its
    parents (``pool`` of a member, ``listener`` or ``loadbalancer`` of a pool...), and
    ``set`` holds the request body. ``failover`` takes a ``loadbalancer`` or, for
    ``PUT /amphorae/{id}/failover``, an ``amphora`` id. Names are the objects' keys: the
    scenario's names, or the UUIDs a live session (``lbsim serve``) gave them.
    """

    at: NonNegTime
    api: Literal["create", "update", "delete", "failover"]
    amphora: Name | None = None
    loadbalancer: Name | None = None
    listener: Name | None = None
    pool: Name | None = None
    member: Name | None = None
    healthmonitor: Name | None = None
    l7policy: Name | None = None
    l7rule: Name | None = None
    set: dict[str, Any] = Field(default_factory=dict)
    cascade: bool = False
    fail: bool = Field(default=False, description="inject a worker failure for this operation")

    @property
    def target(self) -> tuple[str, str]:
        """(object type, name) acted upon: the most specific object named."""
        for kind in ("amphora", "member", "healthmonitor", "l7rule", "l7policy", "pool", "listener", "loadbalancer"):
            name = getattr(self, kind)
            if name is not None:
                return kind, name
        raise ValueError("no target")

    @model_validator(mode="after")
    def _has_target(self) -> ApiEvent:
        named = [
            k
            for k in ("loadbalancer", "listener", "pool", "member", "healthmonitor", "l7policy", "l7rule")
            if getattr(self, k) is not None
        ]
        if self.amphora is not None:
            if self.api != "failover" or named:
                raise ValueError("'amphora' goes alone, with api: failover")
            return self
        if not named:
            raise ValueError("name the object: loadbalancer, listener, pool, member or healthmonitor")
        if self.api == "failover" and named != ["loadbalancer"]:
            raise ValueError("failover takes only 'loadbalancer' (or 'amphora')")
        return self


def _event_kind(v: Any) -> str | None:
    if isinstance(v, dict):
        if "api" in v:
            return "api"
        if "traffic" in v:
            return "traffic"
        if "amphora" in v:
            return "amphora"
        if "network" in v:
            return "network"
        if "availability_zone" in v:
            return "zone"
        if "member" in v:
            return "member"
        return None
    for kind, cls in (
        ("api", ApiEvent),
        ("traffic", TrafficEvent),
        ("amphora", AmphoraEvent),
        ("network", NetworkEvent),
        ("zone", ZoneEvent),
        ("member", MemberEvent),
    ):
        if isinstance(v, cls):
            return kind
    return None


Event = Annotated[
    Annotated[ApiEvent, Tag("api")]
    | Annotated[TrafficEvent, Tag("traffic")]
    | Annotated[AmphoraEvent, Tag("amphora")]
    | Annotated[NetworkEvent, Tag("network")]
    | Annotated[ZoneEvent, Tag("zone")]
    | Annotated[MemberEvent, Tag("member")],
    Discriminator(
        _event_kind,
        custom_error_type="event_kind",
        custom_error_message=(
            "an event needs 'api', 'traffic', 'amphora', 'network', 'availability_zone' or 'member' (with 'behaviour')"
        ),
    ),
]

# --------------------------------------------------------------------------------------
# Expectations
# --------------------------------------------------------------------------------------

OBJECT_TYPES = ("loadbalancer", "listener", "pool", "member", "healthmonitor", "amphora")


class Expectation(_Strict):
    """A status the run must show: at a time, throughout a window, or a transition in it."""

    at: NonNegTime | None = None
    within: tuple[NonNegTime, NonNegTime] | None = None
    loadbalancer: Name | None = None
    listener: Name | None = None
    pool: Name | None = None
    member: Name | None = None
    healthmonitor: Name | None = None
    operating_status: str | None = None
    provisioning_status: str | None = None
    data_plane_state: str | None = None
    transition: tuple[str, str] | None = None
    field: Literal["operating_status", "provisioning_status", "data_plane_state"] | None = None

    @model_validator(mode="after")
    def _shape(self) -> Expectation:
        named = [k for k in OBJECT_TYPES[:5] if getattr(self, k) is not None]
        if len(named) != 1:
            raise ValueError("name exactly one object: loadbalancer, listener, pool, member or healthmonitor")
        if (self.at is None) == (self.within is None):
            raise ValueError("give exactly one of 'at' or 'within: [t0, t1]'")
        if self.within is not None and self.within[1] < self.within[0]:
            raise ValueError("within: [t0, t1] needs t0 <= t1")
        given = [
            f for f in ("operating_status", "provisioning_status", "data_plane_state") if getattr(self, f) is not None
        ]
        if self.transition is not None:
            if given:
                raise ValueError("a 'transition' expectation takes 'field', not a status value")
            if self.within is None:
                raise ValueError("a 'transition' expectation needs 'within: [t0, t1]'")
        elif len(given) != 1:
            raise ValueError("give exactly one of operating_status, provisioning_status, data_plane_state")
        return self

    @property
    def target(self) -> tuple[str, str]:
        """(object type, name) the expectation is about."""
        for kind in OBJECT_TYPES[:5]:
            name = getattr(self, kind)
            if name is not None:
                return kind, name
        raise ValueError("no target")

    @property
    def status_field(self) -> str:
        """Which status field is checked."""
        if self.transition is not None:
            return self.field or "operating_status"
        for f in ("operating_status", "provisioning_status", "data_plane_state"):
            if getattr(self, f) is not None:
                return f
        raise ValueError("no field")

    @property
    def expected(self) -> str:
        """The expected value, or ``OLD -> NEW`` for a transition."""
        if self.transition is not None:
            return f"{self.transition[0]} -> {self.transition[1]}"
        return str(getattr(self, self.status_field))


#: name of the stand-in ``loadbalancer`` of a scenario whose ``loadbalancers:`` list is empty
NO_LOADBALANCER = "_none"


# --------------------------------------------------------------------------------------
# The scenario
# --------------------------------------------------------------------------------------


class Scenario(_Strict):
    """A whole lbsim scenario, format version 1."""

    version: Literal[1] = 1
    name: Name
    seed: Annotated[int, Field(ge=0, le=2**63 - 1)] = 0
    duration: PosFloat
    warmup: NonNegTime = 0.0
    start: Literal["running", "provision", "fresh"] = Field(
        default="running",
        description=(
            "running: everything ACTIVE at t=0 and HAProxy long running (every checked server at full"
            " health); fresh: everything ACTIVE at t=0 but HAProxy just started (servers at health"
            " = rise, 'UP 1/fall': one failed check takes a server DOWN); provision: create the tree"
            " from nothing"
        ),
    )
    octavia: OctaviaSettings = Field(default_factory=OctaviaSettings)
    network: NetworkSettings = Field(default_factory=NetworkSettings)
    loadbalancer: LoadBalancer
    loadbalancers: list[LoadBalancer] | None = Field(
        default=None,
        description="lbsim: several load balancers (instead of 'loadbalancer'); may be empty",
    )
    traffic: list[TrafficSource] = Field(default_factory=list)
    events: list[Event] = Field(default_factory=list)
    failures: list[StochasticFailures] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _one_or_many(cls, data: Any) -> Any:
        # ``loadbalancers:`` replaces ``loadbalancer:``; the single field then holds the
        # first tree (or an empty stand-in), so that code about one LB keeps working.
        if isinstance(data, dict) and data.get("loadbalancers") is not None:
            if "loadbalancer" in data:
                raise ValueError("give either 'loadbalancer' or 'loadbalancers', not both")
            lbs = data["loadbalancers"]
            first = lbs[0] if isinstance(lbs, list) and lbs else {"name": NO_LOADBALANCER}
            data = {**data, "loadbalancer": first}
        return data

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> dict[str, Any]:
        out: dict[str, Any] = handler(self)
        if self.loadbalancers is not None:
            out.pop("loadbalancer", None)
        elif isinstance(out, dict):
            out.pop("loadbalancers", None)
        if isinstance(out, dict) and self.network == NetworkSettings() and not info.exclude_defaults:
            out.pop("network", None)  # the default cloud: keep dumps of older scenarios as they were
        return out

    @property
    def all_loadbalancers(self) -> list[LoadBalancer]:
        """Every load-balancer tree present at the start (``loadbalancers`` or the one)."""
        if self.loadbalancers is not None:
            return list(self.loadbalancers)
        return [self.loadbalancer]

    @field_validator("warmup")
    @classmethod
    def _warmup(cls, v: float, info: ValidationInfo) -> float:
        # a field validator, so the problem points at the warmup line; duration is
        # declared first, so it is in info.data when it was valid
        duration = info.data.get("duration")
        if duration is not None and v >= duration:
            raise ValueError(f"warmup ({v}) must be shorter than duration ({duration})")
        return v

    # Convenience look-ups used across the engine --------------------------------------

    def pools_by_name(self) -> dict[str, Pool]:
        """Pools keyed by name (of every load balancer)."""
        return {p.name: p for lb in self.all_loadbalancers for p in lb.pools}

    def listeners_by_name(self) -> dict[str, Listener]:
        """Listeners keyed by name (of every load balancer)."""
        return {lst.name: lst for lb in self.all_loadbalancers for lst in lb.listeners}

    def members_by_name(self) -> dict[str, tuple[Pool, Member]]:
        """Members keyed by name, with their pool (of every load balancer)."""
        return {m.name: (p, m) for lb in self.all_loadbalancers for p in lb.pools for m in p.members}


# --------------------------------------------------------------------------------------
# Autoscaling (lbsim extension: a pool's members grow and shrink with its load)
# --------------------------------------------------------------------------------------


class MemberTemplate(_Strict):
    """What the scaler's new members look like to Octavia, how they serve, how they start.

    ``boot_time`` is the time from the scaling decision until the server exists (Nova
    boot, up to the point where an orchestrator such as Heat creates the pool member);
    ``app_start`` is the further time until the application answers. Until then it
    behaves as ``app_start_behaviour``: ``refuse`` (port closed), ``hang`` (accepts,
    never answers) or ``error`` (answers 503, e.g. a readiness endpoint).
    """

    name_prefix: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.@\-]+$")] | None = None
    address_range: str
    protocol_port: Port
    weight: Annotated[int, Field(ge=1, le=256)] = 1
    monitor_port: Port | None = None
    concurrency: Annotated[int, Field(ge=1, le=100_000, description="requests served at once")] = 1
    service_time: Distribution = Field(default_factory=lambda: _exp(0.01))
    boot_time: Distribution = Field(default_factory=lambda: _const(60.0))
    app_start: Distribution = Field(default_factory=lambda: _const(0.0))
    app_start_behaviour: Literal["refuse", "hang", "error"] = "refuse"

    @field_validator("address_range")
    @classmethod
    def _range(cls, v: str) -> str:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValueError(f"expected a CIDR such as 10.0.1.0/24, got {v!r}") from None
        return v


class ConflictRetry(_Strict):
    """How the scaler retries a call the API refused with 409 (load balancer busy).

    Waits ``initial`` seconds, then ``factor`` times longer each time up to
    ``max_interval``, each wait spread by +-``jitter`` (a fraction); gives up when the
    next attempt would come more than ``timeout`` seconds after the first.
    """

    initial: PosFloat = 1.0
    factor: Annotated[float, Field(ge=1.0)] = 2.0
    max_interval: PosFloat = 30.0
    jitter: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.0
    timeout: PosFloat = 600.0


class ScalingSlo(_Strict):
    """A service-level objective for the pool; the run's verdict goes to summary.json."""

    latency_p95: PosFloat | None = Field(default=None, description="seconds; the p95 must not exceed it")
    latency_p99: PosFloat | None = Field(default=None, description="seconds; the p99 must not exceed it")
    latency_mean: PosFloat | None = Field(default=None, description="seconds; the mean must not exceed it")
    availability: Annotated[float, Field(gt=0, le=1)] | None = Field(
        default=None, description="share of requests answered successfully, at least"
    )

    @model_validator(mode="after")
    def _some(self) -> ScalingSlo:
        if all(getattr(self, f) is None for f in ("latency_p95", "latency_p99", "latency_mean", "availability")):
            raise ValueError("give at least one objective: latency_p95, latency_p99, latency_mean or availability")
        return self


SCALING_METRICS = ("active_connections", "requests_per_second", "utilisation", "latency_p95")


class Autoscaling(_Strict):
    """A pool's scaling policy (lbsim): the metric, the rule, the limits and the template.

    ``metric`` is measured at the load balancer for the members taking traffic, averaged
    over ``window`` seconds: mean active connections per member, requests per second per
    member, member utilisation (busy slots / concurrency) or the pool's p95 latency.
    ``target_tracking`` aims at ``metric = target`` (no action within ``tolerance``);
    ``step`` adds ``scale_out_step`` members above ``scale_out_threshold`` and removes
    ``scale_in_step`` below ``scale_in_threshold``. A condition must hold for
    ``evaluation_periods`` consecutive evaluations (every ``evaluation_interval``) before
    the scaler acts; after a scale-out no scale-out for ``scale_out_cooldown`` and no
    scale-in for ``scale_in_cooldown``, after a scale-in no scale-in for
    ``scale_in_cooldown``. Removal drains a member (weight 0) for up to ``drain_timeout``.
    """

    policy: Literal["target_tracking", "step"] = "target_tracking"
    metric: Literal["active_connections", "requests_per_second", "utilisation", "latency_p95"]
    target: PosFloat | None = None
    tolerance: Annotated[float, Field(ge=0.0, lt=1.0)] = 0.1
    scale_out_threshold: PosFloat | None = None
    scale_in_threshold: Annotated[float, Field(ge=0.0)] | None = None
    scale_out_step: Annotated[int, Field(ge=1)] | None = None
    scale_in_step: Annotated[int, Field(ge=1)] | None = None
    window: PosFloat = 60.0
    evaluation_interval: PosFloat = 15.0
    evaluation_periods: Annotated[int, Field(ge=1)] = 1
    scale_out_cooldown: NonNegTime = 60.0
    scale_in_cooldown: NonNegTime = 300.0
    min_members: Annotated[int, Field(ge=0, le=10_000)] = 1
    max_members: Annotated[int, Field(ge=1, le=10_000)]
    drain_timeout: NonNegTime = 60.0
    removal: Literal["newest_first", "oldest_first", "least_connections"] = "newest_first"
    poll_interval: PosFloat = Field(default=1.0, description="how often the scaler polls a PENDING object")
    retry: ConflictRetry = Field(default_factory=ConflictRetry)
    member_template: MemberTemplate
    slo: ScalingSlo | None = None

    @field_validator("max_members")
    @classmethod
    def _max_at_least_min(cls, v: int, info: ValidationInfo) -> int:
        lo = info.data.get("min_members")
        if lo is not None and v < lo:
            raise ValueError(f"max_members ({v}) must be >= min_members ({lo})")
        return v

    @field_validator("scale_in_threshold")
    @classmethod
    def _in_below_out(cls, v: float | None, info: ValidationInfo) -> float | None:
        hi = info.data.get("scale_out_threshold")
        if v is not None and hi is not None and v >= hi:
            raise ValueError(f"scale_in_threshold ({v}) must be below scale_out_threshold ({hi})")
        return v

    @model_validator(mode="after")
    def _rule(self) -> Autoscaling:
        if self.policy == "target_tracking":
            if self.target is None:
                raise ValueError("a target_tracking policy needs 'target'")
            if self.scale_out_threshold is not None or self.scale_in_threshold is not None:
                raise ValueError("thresholds go with policy 'step'; target_tracking takes 'target'")
        else:
            if self.scale_out_threshold is None or self.scale_in_threshold is None:
                raise ValueError("a step policy needs 'scale_out_threshold' and 'scale_in_threshold'")
            if self.target is not None:
                raise ValueError("'target' goes with policy 'target_tracking'; step takes thresholds")
        return self


Pool.model_rebuild()
LoadBalancer.model_rebuild()
Scenario.model_rebuild()
