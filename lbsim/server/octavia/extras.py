"""The v2 endpoints around the simulated objects: providers, flavors, flavor profiles,
availability zones, quotas, amphorae, and (from :mod:`lbsim.server.octavia.l7`) L7 policies
and rules.

The twin has one provider (``amphora``, with Octavia's deprecated alias ``octavia``), no
flavors or availability zones (lists are empty, look-ups 404), no quotas under no-auth (as
Octavia answers then), amphorae as the Twin runs them, and L7 policies and rules as the
Twin's control plane simulates them.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from lbsim.server.octavia.backend import AMPHORA_FIELDS, PROVIDERS
from lbsim.server.octavia.errors import Fault, not_found
from lbsim.server.octavia.http import cloud_of, json_body, path_url
from lbsim.server.octavia.l7 import l7_router
from lbsim.server.octavia.listing import paginate, parse_fields, select_fields
from lbsim.server.octavia.routes import FAULTS, LIST_PARAMS

QUOTA_DEFAULTS = {
    "loadbalancer": -1,
    "load_balancer": -1,
    "listener": -1,
    "member": -1,
    "pool": -1,
    "healthmonitor": -1,
    "health_monitor": -1,
    "l7policy": -1,
    "l7rule": -1,
}


def _listed(
    request: Request, plural: str, items: list[dict[str, Any]], known: list[str], key: str | None = None
) -> Response:
    """A list answer; ``key`` is the JSON key when it is not the URL's plural (Octavia's
    ``availability_zones`` under ``/availabilityzones``), its links key Octavia's own."""
    query = list(request.query_params.multi_items())
    page, links = paginate(items, query, path_url(request), sortable=known)
    fields = parse_fields(query)
    key = key or plural
    links_key = LINKS_KEYS.get(key, f"{key}_links")
    return JSONResponse({key: [select_fields(o, fields) for o in page], links_key: links})


#: Octavia's links keys that are not ``<key>_links``
LINKS_KEYS = {"availability_zone_profiles": "availability_zone_profile_links", "flavorprofiles": "flavorprofile_links"}
#: the JSON keys of the empty collections (URL plural -> key)
JSON_KEYS = {"availabilityzones": "availability_zones", "availabilityzoneprofiles": "availability_zone_profiles"}


def _empty(plural: str, singular: str, resource: str, known: list[str]) -> APIRouter:
    r = APIRouter(tags=[plural])

    async def list_all(request: Request) -> Response:
        cloud_of(request)
        return _listed(request, plural, [], known, JSON_KEYS.get(plural))

    async def show(request: Request, oid: str) -> Response:
        raise not_found(resource, oid)

    async def create(request: Request) -> Response:
        await json_body(request)
        raise Fault(501, f"Provider 'amphora' does not support a requested action: lbsim serve has no {plural}.")

    r.add_api_route(
        f"/lbaas/{plural}",
        list_all,
        methods=["GET"],
        summary=f"List {plural} (none in the twin)",
        openapi_extra={"parameters": LIST_PARAMS},
        responses=FAULTS,
        operation_id=f"list_{plural}",
    )
    r.add_api_route(
        f"/lbaas/{plural}",
        create,
        methods=["POST"],
        summary=f"Create a {singular} (not simulated)",
        responses=FAULTS,
        operation_id=f"create_{singular}",
    )
    r.add_api_route(
        f"/lbaas/{plural}/{{oid}}",
        show,
        methods=["GET"],
        summary=f"Show a {singular}",
        responses=FAULTS,
        operation_id=f"show_{singular}",
    )
    return r


def providers_router() -> APIRouter:
    """``/lbaas/providers`` and a provider's capabilities."""
    r = APIRouter(tags=["providers"])

    async def providers(request: Request) -> Response:
        fields = parse_fields(list(request.query_params.multi_items()))
        return JSONResponse({"providers": [select_fields(dict(p), fields) for p in PROVIDERS]})

    async def capabilities(request: Request, provider: str, what: str) -> Response:
        if provider not in {p["name"] for p in PROVIDERS}:
            raise Fault(400, f"Provider '{provider}' is not enabled.")
        if what == "flavor_capabilities":
            caps = [
                {
                    "name": "loadbalancer_topology",
                    "description": "The load balancer topology. One of: SINGLE - "
                    "One amphora per load balancer. ACTIVE_STANDBY - Two amphora per load balancer.",
                }
            ]
            return JSONResponse({"flavor_capabilities": caps})
        if what == "availability_zone_capabilities":
            return JSONResponse({"availability_zone_capabilities": []})
        raise Fault(404, "Not Found")

    r.add_api_route(
        "/lbaas/providers", providers, methods=["GET"], summary="List providers", operation_id="list_providers"
    )
    r.add_api_route(
        "/lbaas/providers/{provider}/{what}",
        capabilities,
        methods=["GET"],
        responses=FAULTS,
        summary="A provider's flavor or availability-zone capabilities",
        operation_id="provider_capabilities",
    )
    return r


def quotas_router() -> APIRouter:
    """``/lbaas/quotas``: no quota is enforced in a no-auth cloud."""
    r = APIRouter(tags=["quotas"])

    async def quotas(request: Request) -> Response:
        cloud_of(request)
        return JSONResponse({"quotas": [], "quotas_links": []})

    async def defaults(request: Request) -> Response:
        return JSONResponse({"quota": dict(QUOTA_DEFAULTS)})

    async def project(request: Request, project_id: str) -> Response:
        return JSONResponse({"quota": dict(QUOTA_DEFAULTS)})

    r.add_api_route("/lbaas/quotas", quotas, methods=["GET"], summary="List quotas", operation_id="list_quotas")
    r.add_api_route(
        "/lbaas/quotas/defaults", defaults, methods=["GET"], summary="Default quotas", operation_id="quota_defaults"
    )
    r.add_api_route(
        "/lbaas/quotas/{project_id}", project, methods=["GET"], summary="A project's quotas", operation_id="show_quota"
    )
    return r


def amphorae_router() -> APIRouter:
    """``/octavia/amphorae``: list, show, failover (and the config push, a no-op here)."""
    r = APIRouter(tags=["amphorae"])

    def _one(request: Request, oid: str) -> dict[str, Any]:
        for row in cloud_of(request).amphorae():
            if row.get("id") == oid:
                return row
        raise not_found("Amphora", oid)

    async def list_all(request: Request) -> Response:
        return _listed(request, "amphorae", cloud_of(request).amphorae(), list(AMPHORA_FIELDS))

    async def show(request: Request, oid: str) -> Response:
        fields = parse_fields(list(request.query_params.multi_items()))
        return JSONResponse({"amphora": select_fields(_one(request, oid), fields)})

    async def failover(request: Request, oid: str) -> Response:
        _one(request, oid)
        resp = request.app.state.cloud.twin.failover_amphora(oid)
        if not resp.ok:
            raise Fault(int(resp.code), str(resp.message), getattr(resp, "faultcode", None))
        return Response(status_code=202)

    async def config(request: Request, oid: str) -> Response:
        _one(request, oid)
        return Response(status_code=202)

    async def stats(request: Request, oid: str) -> Response:
        row = _one(request, oid)
        lb = row.get("loadbalancer_id")
        cloud = request.app.state.cloud
        out = []
        if lb and row.get("status") == "ALLOCATED":
            for rec in cloud.twin.records("listener"):
                attrs = getattr(rec, "attrs", {}) or {}
                if str(attrs.get("loadbalancer_id", attrs.get("loadbalancer"))) == lb:
                    out.append(
                        {
                            "id": oid,
                            "loadbalancer_id": lb,
                            "listener_id": rec.key,
                            **dict(cloud.stats("listener", rec.key)),
                        }
                    )
        return JSONResponse({"amphora_stats": out})

    base = "/octavia/amphorae"
    r.add_api_route(
        base,
        list_all,
        methods=["GET"],
        summary="List amphorae",
        responses=FAULTS,
        openapi_extra={"parameters": LIST_PARAMS},
        operation_id="list_amphorae",
    )
    r.add_api_route(
        base + "/{oid}", show, methods=["GET"], summary="Show an amphora", responses=FAULTS, operation_id="show_amphora"
    )
    r.add_api_route(
        base + "/{oid}/failover",
        failover,
        methods=["PUT"],
        status_code=202,
        responses=FAULTS,
        summary="Fail over an amphora",
        operation_id="failover_amphora",
    )
    r.add_api_route(
        base + "/{oid}/config",
        config,
        methods=["PUT"],
        status_code=202,
        responses=FAULTS,
        summary="Push the amphora's agent configuration",
        operation_id="configure_amphora",
    )
    r.add_api_route(
        base + "/{oid}/stats",
        stats,
        methods=["GET"],
        responses=FAULTS,
        summary="An amphora's listener stats",
        operation_id="amphora_stats",
    )
    return r


def routers() -> list[APIRouter]:
    """Every v2 router besides the simulated resources."""
    flavor_known = ["id", "name", "description", "enabled", "flavor_profile_id"]
    return [
        providers_router(),
        _empty("flavors", "flavor", "Flavor", flavor_known),
        _empty("flavorprofiles", "flavorprofile", "Flavor profile", ["id", "name", "provider_name", "flavor_data"]),
        _empty("availabilityzones", "availabilityzone", "Availability Zone", ["name", "description", "enabled"]),
        _empty(
            "availabilityzoneprofiles",
            "availabilityzoneprofile",
            "Availability Zone Profile",
            ["id", "name", "provider_name", "availability_zone_data"],
        ),
        quotas_router(),
        amphorae_router(),
        l7_router(),
    ]
