"""The v2 routers for load balancers, listeners, pools, members and health monitors.

Each handler is ``async def`` and does all its Twin work without awaiting in between (see
:mod:`lbsim.server.octavia.backend`): read and check the body, bring the simulation to now,
apply the operation, shape the answer. Codes as Octavia's: POST 201, PUT 200, DELETE 204
(empty, no content type), failover and batch member update 202 (empty).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from lbsim.scenario.unset import restore_defaults
from lbsim.server.octavia import models
from lbsim.server.octavia.backend import Cloud
from lbsim.server.octavia.errors import Fault, validation
from lbsim.server.octavia.http import cloud_of, flag, json_body, path_url, project_of
from lbsim.server.octavia.listing import paginate, parse_fields, select_fields
from lbsim.server.octavia.shapes import PLURAL, RESOURCE, View, attr, relation
from lbsim.server.octavia.types import HM_HTTP_DEFAULTS, UNSET_DEFAULTS, parse_body, parse_member_batch

LIST_PARAMS: list[dict[str, Any]] = [
    {"name": "limit", "in": "query", "required": False, "schema": {"type": "integer"}},
    {"name": "marker", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "sort", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "page_reverse", "in": "query", "required": False, "schema": {"type": "boolean"}},
    {
        "name": "fields",
        "in": "query",
        "required": False,
        "schema": {"type": "array", "items": {"type": "string"}},
        "style": "form",
        "explode": True,
    },
    {"name": "name", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "id", "in": "query", "required": False, "schema": {"type": "string"}},
]
FAULTS: dict[int | str, dict[str, Any]] = {
    c: {"model": models.Fault, "description": d}
    for c, d in ((400, "invalid request"), (404, "not found"), (409, "locked or duplicate"), (501, "unsupported"))
}
EXTRA_FILTERS = {
    "listener": {"loadbalancer_id": "loadbalancers"},
    "pool": {"loadbalancer_id": "loadbalancers", "listener_id": "listeners", "healthmonitor_id": "healthmonitor_id"},
    "healthmonitor": {"pool_id": "pools"},
    "loadbalancer": {},
    "member": {},
}
#: filters that name a response field of another spelling (``vip_address`` etc. are fields)
KNOWN_FIELDS = {kind: list(model.model_fields) for kind, model in models.MODELS.items()}


def _body(kind: str, shaped: dict[str, Any], status: int = 200) -> Response:
    return JSONResponse({kind: shaped}, status_code=status)


def _show(cloud: Cloud, kind: str, key: str, fields: list[str] | None = None) -> dict[str, Any]:
    view = cloud.view()
    rec = view.get(kind, key)
    if rec is None or attr(rec, "provisioning_status") == "DELETED":
        rec = cloud.live(kind, key)  # 404 unless the Twin knows it after all
    return select_fields(view.shape(kind, rec), fields or [])


def list_response(kind: str, shaped: list[dict[str, Any]], request: Request) -> Response:
    """A paged, filtered, sorted collection with its links."""
    query = list(request.query_params.multi_items())
    page, links = paginate(
        shaped, query, path_url(request), extra_filters=EXTRA_FILTERS.get(kind, {}), sortable=KNOWN_FIELDS.get(kind)
    )
    fields = parse_fields(query)
    plural = PLURAL[kind]
    return JSONResponse({plural: [select_fields(o, fields) for o in page], f"{plural}_links": links})


def _restore_defaults(kind: str, body: dict[str, Any], rec: Any) -> dict[str, Any]:
    """``unset``: a field sent as null takes its default back (the control plane's rule,
    with the API's larger table)."""
    return restore_defaults(kind, body, {"type": attr(rec, "type")}, UNSET_DEFAULTS)


def _check_session_persistence(body: dict[str, Any], protocol: Any = None, put: bool = False) -> None:
    sp = body.get("session_persistence")
    if not sp:
        return
    # Octavia's pool controller checks the UDP/SCTP rules before the cookie rules; its
    # POST and PUT wordings differ ("UDP and SCTP protocol pools" / "UDP protocol pools")
    if protocol in ("UDP", "SCTP"):
        if sp.get("type") == "SOURCE_IP" and any(
            v is not None for k, v in sp.items() if k not in ("type", "persistence_timeout", "persistence_granularity")
        ):
            raise validation(
                "session_persistence SOURCE_IP type for UDP and SCTP protocols only accepts: type, "
                "persistence_timeout, persistence_granularity."
            )
        if sp.get("cookie_name"):
            raise validation("Cookie names are not supported for UDP/SCTP pools.")
        if sp.get("type") in ("HTTP_COOKIE", "APP_COOKIE"):
            raise validation(
                f"Session persistence of type {sp['type']} is not supported for UDP/SCTP protocol pools."
            )
    elif sp.get("persistence_timeout") or sp.get("persistence_granularity"):
        where = "UDP protocol pools" if put else "UDP and SCTP protocol pools"
        raise validation(f"persistence_timeout and persistence_granularity is only for {where}.")
    if sp.get("type") == "APP_COOKIE" and not sp.get("cookie_name"):
        raise validation('Field "cookie_name" must be specified when using the "APP_COOKIE" session persistence type.')
    if sp.get("type") != "APP_COOKIE" and sp.get("cookie_name"):
        raise validation(
            'Field "cookie_name" can only be specified when using the "APP_COOKIE" session persistence type.'
        )


def _check_healthmonitor(body: dict[str, Any]) -> None:
    typ = body.get("type")
    if typ in ("HTTP", "HTTPS"):
        for k, v in HM_HTTP_DEFAULTS.items():
            if not body.get(k):
                body[k] = v
    else:
        for k in ("http_method", "url_path", "expected_codes"):
            if body.get(k):
                raise Fault(400, f"{k} is not a valid option for health monitors of type {typ}")
    if body.get("domain_name") and not body.get("http_version"):
        raise validation("'http_version' must be specified when 'domain_name' is provided.")


def _unsupported(what: str) -> Fault:
    return Fault(501, f"Provider 'amphora' does not support a requested action: {what}")


def _create(cloud: Cloud, kind: str, body: dict[str, Any], project: str) -> str:
    body.pop("project_id", None)
    if kind == "loadbalancer":
        return cloud.create_loadbalancer(body, project)
    if kind == "listener":
        if body.get("default_pool") or body.get("l7policies"):
            raise _unsupported("lbsim serve does not create nested pools or L7 policies with a listener.")
        body.pop("default_pool", None)
        body.pop("l7policies", None)
        if body.get("protocol") == "TERMINATED_HTTPS" and not (
            body.get("default_tls_container_ref") or body.get("sni_container_refs")
        ):
            raise validation(
                "An SNI or default certificate container reference must be provided for TERMINATED_HTTPS listeners."
            )
    elif kind == "pool":
        if body.get("healthmonitor") or body.get("members"):
            raise _unsupported("lbsim serve does not create a health monitor or members with a pool.")
        body.pop("healthmonitor", None)
        body.pop("members", None)
        if not body.get("listener_id") and not body.get("loadbalancer_id"):
            raise validation("Must provide at least one of: loadbalancer_id, listener_id")
        _check_session_persistence(body, body.get("protocol"))
    elif kind == "healthmonitor":
        _check_healthmonitor(body)
    elif kind == "member":
        body.pop("request_sriov", None)
        if body.get("subnet_id") and body["subnet_id"] not in cloud.neutron.subnets:
            raise validation(f"Subnet {body['subnet_id']} not found.")
    return cloud.apply("create", kind, None, body, project=project)


def _update(cloud: Cloud, kind: str, key: str, body: dict[str, Any], project: str) -> None:
    rec = cloud.live(kind, key)
    body = _restore_defaults(kind, body, rec)
    if kind == "pool":
        _check_session_persistence(body, attr(rec, "protocol"), put=True)
    if kind == "healthmonitor" and attr(rec, "type") not in ("HTTP", "HTTPS"):
        for k in ("http_method", "url_path", "expected_codes"):
            if body.get(k):
                raise Fault(400, f"{k} is not a valid option for health monitors of type {attr(rec, 'type')}")
    cloud.apply("update", kind, key, body, project=project)


def resource_router(kind: str) -> APIRouter:
    """List, show, create, update and delete of a top-level resource."""
    plural = PLURAL[kind]
    r = APIRouter(tags=[plural])
    one, many = models.one_root(kind), models.list_root(kind, plural)
    req_post, req_put = models.REQUESTS[(kind, "create")], models.REQUESTS[(kind, "update")]

    async def list_all(request: Request) -> Response:
        cloud = cloud_of(request)
        view = cloud.view()
        shaped = [view.shape(kind, rec) for rec in view.records[kind] if attr(rec, "provisioning_status") != "DELETED"]
        return list_response(kind, shaped, request)

    async def show(request: Request, oid: str) -> Response:
        cloud = cloud_of(request)
        return _body(kind, _show(cloud, kind, oid, parse_fields(list(request.query_params.multi_items()))))

    async def create(request: Request) -> Response:
        raw = await json_body(request)
        body = parse_body(kind, "create", raw)
        cloud = cloud_of(request)
        key = _create(cloud, kind, body, project_of(request, cloud))
        return _body(kind, _show(cloud, kind, key), 201)

    async def update(request: Request, oid: str) -> Response:
        raw = await json_body(request)
        body = parse_body(kind, "update", raw)
        cloud = cloud_of(request)
        _update(cloud, kind, oid, body, project_of(request, cloud))
        return _body(kind, _show(cloud, kind, oid))

    async def delete(request: Request, oid: str) -> Response:
        cloud = cloud_of(request)
        cloud.live(kind, oid)
        cascade = kind == "loadbalancer" and flag(request.query_params.get("cascade"))
        cloud.apply("delete", kind, oid, {}, project=project_of(request, cloud), cascade=cascade)
        return Response(status_code=204)

    base = f"/lbaas/{plural}"
    r.add_api_route(
        base,
        list_all,
        methods=["GET"],
        summary=f"List {plural}",
        response_model=None,
        responses={200: {"model": many}, **FAULTS},
        openapi_extra={"parameters": LIST_PARAMS},
        operation_id=f"list_{plural}",
    )
    r.add_api_route(
        base,
        create,
        methods=["POST"],
        summary=f"Create a {kind}",
        status_code=201,
        response_model=None,
        responses={201: {"model": one}, **FAULTS},
        operation_id=f"create_{kind}",
        openapi_extra={"requestBody": _request_body(req_post)},
    )
    r.add_api_route(
        base + "/{oid}",
        show,
        methods=["GET"],
        summary=f"Show a {kind}",
        response_model=None,
        responses={200: {"model": one}, **FAULTS},
        operation_id=f"show_{kind}",
    )
    r.add_api_route(
        base + "/{oid}",
        update,
        methods=["PUT"],
        summary=f"Update a {kind}",
        response_model=None,
        responses={200: {"model": one}, **FAULTS},
        operation_id=f"update_{kind}",
        openapi_extra={"requestBody": _request_body(req_put)},
    )
    params = [{"name": "cascade", "in": "query", "required": False, "schema": {"type": "boolean"}}]
    r.add_api_route(
        base + "/{oid}",
        delete,
        methods=["DELETE"],
        summary=f"Delete a {kind}",
        status_code=204,
        response_model=None,
        responses={204: {"description": "deleted"}, **FAULTS},
        operation_id=f"delete_{kind}",
        openapi_extra={"parameters": params} if kind == "loadbalancer" else None,
    )
    if kind in ("loadbalancer", "listener"):

        async def stats(request: Request, oid: str) -> Response:
            cloud = cloud_of(request)
            cloud.live(kind, oid)
            return JSONResponse({"stats": dict(cloud.stats(kind, oid))})

        r.add_api_route(
            base + "/{oid}/stats",
            stats,
            methods=["GET"],
            summary=f"Traffic counters of a {kind}",
            response_model=None,
            responses={200: {"model": models.StatsRoot}, **FAULTS},
            operation_id=f"stats_{kind}",
        )
    if kind == "loadbalancer":

        async def status(request: Request, oid: str) -> Response:
            cloud = cloud_of(request)
            cloud.live(kind, oid)
            return JSONResponse({"statuses": cloud.twin.status_tree(oid)})

        async def failover(request: Request, oid: str) -> Response:
            cloud = cloud_of(request)
            cloud.live(kind, oid)
            cloud.apply("failover", kind, oid, {}, project=project_of(request, cloud))
            return Response(status_code=202)

        for suffix in ("status", "statuses"):
            r.add_api_route(
                base + "/{oid}/" + suffix,
                status,
                methods=["GET"],
                summary="The status tree",
                response_model=None,
                responses={200: {"model": models.StatusRoot}, **FAULTS},
                operation_id=f"loadbalancer_{suffix}",
                include_in_schema=suffix == "status",
            )
        r.add_api_route(
            base + "/{oid}/failover",
            failover,
            methods=["PUT"],
            summary="Fail over the amphorae",
            status_code=202,
            response_model=None,
            responses={202: {"description": "accepted"}, **FAULTS},
            operation_id="failover_loadbalancer",
        )
    return r


def _request_body(model: type[Any]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
    }


def member_router() -> APIRouter:
    """Members live under their pool: ``/lbaas/pools/{pool_id}/members[/{id}]``."""
    r = APIRouter(tags=["members"])
    kind = "member"
    one, many = models.one_root(kind), models.list_root(kind, "members")

    def _pool(cloud: Cloud, pool_id: str) -> None:
        cloud.live("pool", pool_id)

    def _member(cloud: Cloud, view: View, pool_id: str, oid: str) -> Any:
        rec = view.get(kind, oid)
        if rec is None or relation(rec, "pool") != pool_id:
            raise Fault(404, f"{RESOURCE[kind]} {oid} not found.")
        return rec

    async def list_all(request: Request, pool_id: str) -> Response:
        cloud = cloud_of(request)
        _pool(cloud, pool_id)
        view = cloud.view()
        shaped = [view.shape(kind, rec) for rec in view.records[kind] if relation(rec, "pool") == pool_id]
        return list_response(kind, shaped, request)

    async def show(request: Request, pool_id: str, oid: str) -> Response:
        cloud = cloud_of(request)
        _pool(cloud, pool_id)
        view = cloud.view()
        rec = _member(cloud, view, pool_id, oid)
        fields = parse_fields(list(request.query_params.multi_items()))
        return _body(kind, select_fields(view.shape(kind, rec), fields))

    async def create(request: Request, pool_id: str) -> Response:
        raw = await json_body(request)
        body = parse_body(kind, "create", raw)
        cloud = cloud_of(request)
        _pool(cloud, pool_id)
        body["pool_id"] = pool_id
        key = _create(cloud, kind, body, project_of(request, cloud))
        return _body(kind, _show(cloud, kind, key), 201)

    async def update(request: Request, pool_id: str, oid: str) -> Response:
        raw = await json_body(request)
        body = parse_body(kind, "update", raw)
        cloud = cloud_of(request)
        _pool(cloud, pool_id)
        _member(cloud, cloud.view(), pool_id, oid)
        _update(cloud, kind, oid, body, project_of(request, cloud))
        return _body(kind, _show(cloud, kind, oid))

    async def delete(request: Request, pool_id: str, oid: str) -> Response:
        cloud = cloud_of(request)
        _pool(cloud, pool_id)
        _member(cloud, cloud.view(), pool_id, oid)
        cloud.apply("delete", kind, oid, {}, project=project_of(request, cloud))
        return Response(status_code=204)

    async def batch(request: Request, pool_id: str) -> Response:
        raw = await json_body(request)
        members = parse_member_batch(raw, pool_id)
        cloud = cloud_of(request)
        cloud.batch_members(
            pool_id, members, flag(request.query_params.get("additive_only")), project_of(request, cloud)
        )
        return Response(status_code=202)

    base = "/lbaas/pools/{pool_id}/members"
    r.add_api_route(
        base,
        list_all,
        methods=["GET"],
        summary="List a pool's members",
        response_model=None,
        responses={200: {"model": many}, **FAULTS},
        openapi_extra={"parameters": LIST_PARAMS},
        operation_id="list_members",
    )
    r.add_api_route(
        base,
        create,
        methods=["POST"],
        summary="Create a member",
        status_code=201,
        response_model=None,
        responses={201: {"model": one}, **FAULTS},
        operation_id="create_member",
        openapi_extra={"requestBody": _request_body(models.REQUESTS[(kind, "create")])},
    )
    r.add_api_route(
        base,
        batch,
        methods=["PUT"],
        summary="Replace a pool's members (batch)",
        status_code=202,
        response_model=None,
        responses={202: {"description": "accepted"}, **FAULTS},
        operation_id="batch_update_members",
        openapi_extra={
            "requestBody": _request_body(models.MEMBERS_BATCH),
            "parameters": [{"name": "additive_only", "in": "query", "required": False, "schema": {"type": "boolean"}}],
        },
    )
    r.add_api_route(
        base + "/{oid}",
        show,
        methods=["GET"],
        summary="Show a member",
        response_model=None,
        responses={200: {"model": one}, **FAULTS},
        operation_id="show_member",
    )
    r.add_api_route(
        base + "/{oid}",
        update,
        methods=["PUT"],
        summary="Update a member",
        response_model=None,
        responses={200: {"model": one}, **FAULTS},
        operation_id="update_member",
        openapi_extra={"requestBody": _request_body(models.REQUESTS[(kind, "update")])},
    )
    r.add_api_route(
        base + "/{oid}",
        delete,
        methods=["DELETE"],
        summary="Delete a member",
        status_code=204,
        response_model=None,
        responses={204: {"description": "deleted"}, **FAULTS},
        operation_id="delete_member",
    )
    return r


def routers() -> list[APIRouter]:
    """Every v2 router of the simulated resources (mounted under ``/v2.0`` and ``/v2``)."""
    return [*(resource_router(k) for k in ("loadbalancer", "listener", "pool", "healthmonitor")), member_router()]
