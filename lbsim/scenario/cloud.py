"""The cloud around the load balancers (lbsim): networks, clients, and the live twin's events.

* Networks, subnets and QoS policies: what Neutron would hold. Subnets give load balancers
  their VIP addresses (``lbsim serve`` allocates from them); QoS policies may be named by a
  VIP. The default cloud is one ``private`` network with ``private-subnet`` 10.0.0.0/24 and
  an external ``public`` network (``public-subnet`` 203.0.113.0/24), and one QoS policy,
  ``bw-limiter``: the fixtures ``lbsim serve`` answers Neutron look-ups with.
* The client population traffic comes from.
* The events a live session records besides API calls and member faults: amphora faults
  (by role or by id), availability-zone outages and traffic changes.
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Literal

from pydantic import Field, field_validator

from lbsim.scenario.base import Name, NonNegTime, _Strict


def _cidr_text(v: str) -> str:
    try:
        ipaddress.ip_network(v, strict=False)
    except ValueError:
        raise ValueError(f"expected a CIDR such as 10.0.0.0/24, got {v!r}") from None
    return v


class Subnet(_Strict):
    """A subnet: VIPs and member addresses come from its CIDR."""

    name: Name
    cidr: str
    gateway_ip: str | None = None

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        return _cidr_text(v)


class Network(_Strict):
    """A Neutron network with its subnets (``external``: a provider network such as public)."""

    name: Name
    external: bool = False
    subnets: list[Subnet] = Field(default_factory=list)


class QosPolicy(_Strict):
    """A QoS policy a VIP may name (``vip_qos_policy_id``) with its bandwidth-limit rule:
    ``max_kbps`` (kilobits per second; none or 0: no limit) and ``max_burst_kbps`` (the
    bucket, kilobits; none or 0: 80 % of ``max_kbps``). A load balancer naming it has its
    responses shaped to that rate (:mod:`lbsim.sim.qos`)."""

    name: Name
    max_kbps: Annotated[int, Field(ge=0, le=2147483647)] | None = None
    max_burst_kbps: Annotated[int, Field(ge=0, le=2147483647)] | None = None


def _default_networks() -> list[Network]:
    return [
        Network(name="private", subnets=[Subnet(name="private-subnet", cidr="10.0.0.0/24", gateway_ip="10.0.0.1")]),
        Network(
            name="public",
            external=True,
            subnets=[Subnet(name="public-subnet", cidr="203.0.113.0/24", gateway_ip="203.0.113.1")],
        ),
    ]


class NetworkSettings(_Strict):
    """The cloud's networks, subnets and QoS policies (default: ``private`` with
    ``private-subnet`` 10.0.0.0/24, and an external ``public``)."""

    networks: list[Network] = Field(default_factory=_default_networks)
    qos_policies: list[QosPolicy] = Field(default_factory=lambda: [QosPolicy(name="bw-limiter")])
    availability_zones: list[Name] = Field(
        default_factory=list, description="the cloud's availability zones a load balancer may name"
    )


class Clients(_Strict):
    """The client population: source addresses drawn from a CIDR, ephemeral ports."""

    count: Annotated[int, Field(ge=1, le=10_000_000)] = 1000
    cidr: str = "198.51.100.0/22"

    @field_validator("cidr")
    @classmethod
    def _cidr(cls, v: str) -> str:
        try:
            ipaddress.ip_network(v, strict=False)
        except ValueError:
            raise ValueError(f"expected a CIDR such as 198.51.100.0/22, got {v!r}") from None
        return v


AMPHORA_ROLES = ("STANDALONE", "MASTER", "BACKUP")


class AmphoraEvent(_Strict):
    """An amphora fault, by role (STANDALONE for SINGLE, MASTER or BACKUP for
    ACTIVE_STANDBY) of ``loadbalancer`` (default: the scenario's first), or by amphora id.

    ``fail`` kills the amphora (heartbeats and HAProxy stop); ``partition`` cuts its
    management network only (HAProxy keeps serving, heartbeats are lost, so the health
    manager fails it over after ``heartbeat_timeout``); ``heal`` ends a partition.
    """

    at: NonNegTime
    amphora: Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.@\-]+$")]
    behaviour: Literal["fail", "partition", "heal"]
    loadbalancer: Name | None = None

    @property
    def by_role(self) -> bool:
        """Whether ``amphora`` names a role rather than an amphora id."""
        return self.amphora in AMPHORA_ROLES


class ZoneEvent(_Strict):
    """lbsim: an availability-zone outage. ``fail`` fails every amphora in the zone at once
    (and replacements cannot boot there); ``recover`` ends the outage."""

    at: NonNegTime
    availability_zone: Name
    behaviour: Literal["fail", "recover"]


class TrafficEvent(_Strict):
    """lbsim: start, change or stop Poisson traffic to a listener at ``at``.

    ``rate`` is requests per second; ``null`` (or 0) stops the listener's traffic. A new
    rate replaces whatever traffic the listener had (scenario sources included).
    """

    at: NonNegTime
    traffic: Name
    rate: Annotated[float, Field(ge=0, le=1e7)] | None = None
    clients: Clients = Field(default_factory=Clients)
    request_bytes: Annotated[int, Field(ge=0)] = 300
    response_bytes: Annotated[int, Field(ge=0)] = 3000
