"""The few Neutron look-ups the ``openstack`` CLI makes on the same endpoint.

Under ``--os-auth-type none`` keystoneauth sends every service to one URL, so options such as
``--vip-subnet-id private-subnet`` or a member's ``--subnet-id`` are resolved here with
``GET /v2/subnets?id=<x>`` then ``?name=<x>`` (exactly one match). The cloud is fixed: one
``private`` network with ``private-subnet`` (10.0.0.0/24), one ``public`` network with
``public-subnet`` (203.0.113.0/24), a QoS policy, and a port per load-balancer VIP (made when
the load balancer is created). Read-only: lists with filters and GET by id, under ``/v2.0``
and ``/v2``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

PROJECT = "e3cd678b11784734bc366148aa37580e"


def _network(nid: str, name: str, subnets: list[str]) -> dict[str, Any]:
    return {
        "admin_state_up": True,
        "description": "",
        "id": nid,
        "mtu": 1450,
        "name": name,
        "project_id": PROJECT,
        "shared": False,
        "status": "ACTIVE",
        "subnets": subnets,
        "tags": [],
        "tenant_id": PROJECT,
    }


def _subnet(sid: str, name: str, nid: str, cidr: str) -> dict[str, Any]:
    net = ipaddress.ip_network(cidr)
    hosts = list(net.hosts())
    return {
        "allocation_pools": [{"start": str(hosts[1]), "end": str(hosts[-1])}],
        "cidr": cidr,
        "description": "",
        "enable_dhcp": True,
        "gateway_ip": str(hosts[0]),
        "id": sid,
        "ip_version": net.version,
        "name": name,
        "network_id": nid,
        "project_id": PROJECT,
        "tags": [],
        "tenant_id": PROJECT,
    }


PRIVATE_NET = "9e0b0e2a-9c1e-4b3c-8b1e-0c3c8a1d0001"
PRIVATE_SUBNET = "4a9c1a0e-6f64-4b4e-9d44-0c3c8a1d0002"
PUBLIC_NET = "9e0b0e2a-9c1e-4b3c-8b1e-0c3c8a1d0011"
PUBLIC_SUBNET = "4a9c1a0e-6f64-4b4e-9d44-0c3c8a1d0012"
QOS_POLICY = "7d6e9a51-5a3f-4c0e-9d7a-0c3c8a1d0021"
SPARE_PORT = "5b1f0c77-2f9d-4d2e-8c1a-0c3c8a1d0031"


@dataclass
class Neutron:
    """The fixed networks and subnets, and the VIP ports made so far."""

    networks: dict[str, dict[str, Any]] = field(default_factory=dict)
    subnets: dict[str, dict[str, Any]] = field(default_factory=dict)
    ports: dict[str, dict[str, Any]] = field(default_factory=dict)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)
    _next_host: dict[str, int] = field(default_factory=dict)

    @classmethod
    def default(cls) -> Neutron:
        """The bundled cloud: ``private``/``private-subnet``, ``public``/``public-subnet``."""
        n = cls()
        n.networks[PRIVATE_NET] = _network(PRIVATE_NET, "private", [PRIVATE_SUBNET])
        n.subnets[PRIVATE_SUBNET] = _subnet(PRIVATE_SUBNET, "private-subnet", PRIVATE_NET, "10.0.0.0/24")
        n.networks[PUBLIC_NET] = _network(PUBLIC_NET, "public", [PUBLIC_SUBNET])
        n.subnets[PUBLIC_SUBNET] = _subnet(PUBLIC_SUBNET, "public-subnet", PUBLIC_NET, "203.0.113.0/24")
        n.policies[QOS_POLICY] = {
            "id": QOS_POLICY,
            "name": "bw-limiter",
            "description": "",
            "shared": True,
            "is_default": False,
            "project_id": PROJECT,
            "tenant_id": PROJECT,
            "rules": [],
            "tags": [],
        }
        n.add_port(SPARE_PORT, "lb-vip-port", PRIVATE_SUBNET, "10.0.0.200")
        return n

    def add_port(self, pid: str, name: str, subnet_id: str, address: str, device: str = "") -> dict[str, Any]:
        """Record a port with one fixed IP on ``subnet_id``."""
        subnet = self.subnets[subnet_id]
        port = {
            "admin_state_up": True,
            "device_id": device,
            "device_owner": "Octavia" if device else "",
            "fixed_ips": [{"subnet_id": subnet_id, "ip_address": address}],
            "id": pid,
            "name": name,
            "network_id": subnet["network_id"],
            "project_id": PROJECT,
            "status": "ACTIVE",
            "tags": [],
            "tenant_id": PROJECT,
        }
        self.ports[pid] = port
        return port

    def allocate(self, subnet_id: str) -> str:
        """A free address of the subnet, from the top of its pool down (members usually sit
        at the bottom)."""
        subnet = self.subnets[subnet_id]
        net = ipaddress.ip_network(subnet["cidr"])
        used = {ip["ip_address"] for p in self.ports.values() for ip in p["fixed_ips"]}
        hosts = list(net.hosts()) if net.num_addresses <= 65536 else []
        for host in reversed(hosts[1:]):
            if str(host) not in used:
                return str(host)
        return str(hosts[-1]) if hosts else str(net.network_address)

    def resolve_vip(self, body: Mapping[str, Any]) -> dict[str, str] | None:
        """VIP fields for a load-balancer create: from the port, the subnet or the network
        given. None when the id names nothing here (Octavia then answers 400)."""
        if body.get("vip_port_id"):
            port = self.ports.get(str(body["vip_port_id"]))
            if port is None:
                return None
            ip = port["fixed_ips"][0]
            return {
                "vip_port_id": port["id"],
                "vip_network_id": port["network_id"],
                "vip_subnet_id": ip["subnet_id"],
                "vip_address": ip["ip_address"],
            }
        if body.get("vip_subnet_id"):
            subnet = self.subnets.get(str(body["vip_subnet_id"]))
            if subnet is None:
                return None
            return {"vip_network_id": subnet["network_id"], "vip_subnet_id": subnet["id"]}
        if body.get("vip_network_id"):
            net = self.networks.get(str(body["vip_network_id"]))
            if net is None or not net["subnets"]:
                return None
            return {"vip_network_id": net["id"], "vip_subnet_id": net["subnets"][0]}
        return None

    def collection(self, name: str) -> dict[str, dict[str, Any]]:
        """The objects of a collection by its URL name."""
        return {"networks": self.networks, "subnets": self.subnets, "ports": self.ports, "qos/policies": self.policies}[
            name
        ]


_SINGULAR = {"networks": "network", "subnets": "subnet", "ports": "port", "qos/policies": "policy"}
_NOT_FOUND = {"networks": "Network", "subnets": "Subnet", "ports": "Port", "qos/policies": "QoS policy"}


def _matches(obj: Mapping[str, Any], query: list[tuple[str, str]]) -> bool:
    wanted: dict[str, set[str]] = {}
    for k, v in query:
        if k in ("fields", "limit", "marker", "sort_key", "sort_dir", "page_reverse"):
            continue
        wanted.setdefault(k, set()).add(v)
    for k, values in wanted.items():
        value = obj.get(k)
        text = ("true" if value else "false") if isinstance(value, bool) else str(value)
        if text not in values and str(value).lower() not in {v.lower() for v in values}:
            return False
    return True


def router(get_neutron: Callable[[], Neutron]) -> APIRouter:
    """Routes ``/v2.0/<collection>`` and ``/v2/<collection>`` (and ``/{id}``)."""
    r = APIRouter(tags=["neutron"])

    def make(coll: str) -> None:
        singular = _SINGULAR[coll]

        async def list_(request: Request) -> Response:
            objs = get_neutron().collection(coll).values()
            query = list(request.query_params.multi_items())
            fields = [v for k, v in query if k == "fields"]
            out = [o for o in objs if _matches(o, query)]
            if fields:
                out = [{k: v for k, v in o.items() if k in fields} for o in out]
            return JSONResponse({coll.split("/")[-1]: out})

        async def show(request: Request, oid: str) -> Response:
            obj = get_neutron().collection(coll).get(oid)
            if obj is None:
                err = f"{_NOT_FOUND[coll]}NotFound".replace(" ", "")
                msg = f"{_NOT_FOUND[coll]} {oid} could not be found."
                return JSONResponse({"NeutronError": {"type": err, "message": msg, "detail": ""}}, status_code=404)
            return JSONResponse({singular: obj})

        for prefix in ("/v2.0", "/v2"):
            r.add_api_route(
                f"{prefix}/{coll}",
                list_,
                methods=["GET"],
                name=f"neutron_list_{singular}{prefix}",
                summary=f"Neutron: list {coll} (id/name filters)",
                include_in_schema=prefix == "/v2.0",
            )
            r.add_api_route(
                f"{prefix}/{coll}/{{oid}}",
                show,
                methods=["GET"],
                name=f"neutron_show_{singular}{prefix}",
                summary=f"Neutron: show one of {coll}",
                include_in_schema=prefix == "/v2.0",
            )

    for coll in _SINGULAR:
        make(coll)
    return r
