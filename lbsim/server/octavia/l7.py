"""The v2 endpoints of L7 policies and their rules, simulated by the Twin.

``/lbaas/l7policies`` (list, create, show, update, delete) and
``/lbaas/l7policies/{id}/rules`` (the same for a policy's rules). The control plane
(:mod:`lbsim.octavia.l7`) does Octavia's checks, locks, PENDING states and position
renumbering; this module only reads Octavia's body (``{"l7policy": …}`` / ``{"rule": …}``),
refuses keys Octavia's types do not have, and shapes the answers with Octavia 19's fields
(``octavia/api/v2/types/l7policy.py`` and ``l7rule.py``). Codes as Octavia's controllers:
POST 201, PUT 200, DELETE 204.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse, Response

from lbsim.server.octavia.backend import Cloud
from lbsim.server.octavia.errors import Fault, invalid_input, not_found, unknown_attributes
from lbsim.server.octavia.http import cloud_of, json_body, path_url, project_of
from lbsim.server.octavia.listing import paginate, parse_fields, select_fields
from lbsim.server.octavia.routes import FAULTS, LIST_PARAMS
from lbsim.server.octavia.shapes import attr, timestamp

#: Octavia's request fields (POST; PUT takes the same but the parents)
POLICY_POST = frozenset(
    {
        "name", "description", "project_id", "tenant_id", "action", "redirect_pool_id", "redirect_url",
        "redirect_prefix", "position", "redirect_http_code", "listener_id", "rules", "admin_state_up", "tags",
    }
)  # fmt: skip
POLICY_PUT = POLICY_POST - {"project_id", "tenant_id", "listener_id", "rules"}
RULE_POST = frozenset(
    {"type", "compare_type", "key", "value", "invert", "admin_state_up", "project_id", "tenant_id", "tags"}
)
RULE_PUT = RULE_POST - {"project_id", "tenant_id"}
POLICY_FIELDS = [
    "id", "name", "description", "provisioning_status", "operating_status", "project_id", "tenant_id", "action",
    "listener_id", "redirect_pool_id", "redirect_url", "redirect_prefix", "position", "redirect_http_code",
    "rules", "admin_state_up", "created_at", "updated_at", "tags",
]  # fmt: skip
RULE_FIELDS = [
    "id", "type", "compare_type", "key", "value", "invert", "provisioning_status", "operating_status",
    "project_id", "tenant_id", "admin_state_up", "created_at", "updated_at", "tags",
]  # fmt: skip
FILTERS = {"listener_id": "listener_id"}


def _base(rec: Any) -> dict[str, Any]:
    project = attr(rec, "project_id")
    return {
        "id": rec.key,
        "provisioning_status": attr(rec, "provisioning_status"),
        "operating_status": attr(rec, "operating_status"),
        "project_id": project,
        "tenant_id": project,
        "admin_state_up": bool(attr(rec, "admin_state_up", True)),
        "created_at": timestamp(getattr(rec, "created_at", None)),
        "updated_at": timestamp(getattr(rec, "updated_at", None)),
        "tags": list(attr(rec, "tags", [])),
    }


def shape_policy(rec: Any) -> dict[str, Any]:
    """Octavia's l7policy response dict for a Twin record."""
    out = {
        **_base(rec),
        "name": attr(rec, "name", ""),
        "description": attr(rec, "description", ""),
        "action": attr(rec, "action"),
        "listener_id": attr(rec, "listener_id"),
        "redirect_pool_id": attr(rec, "redirect_pool_id"),
        "redirect_url": attr(rec, "redirect_url"),
        "redirect_prefix": attr(rec, "redirect_prefix"),
        "position": attr(rec, "position"),
        "redirect_http_code": attr(rec, "redirect_http_code"),
        "rules": [{"id": k} for k in attr(rec, "rules", [])],
    }
    return dict(sorted(out.items()))


def shape_rule(rec: Any) -> dict[str, Any]:
    """Octavia's l7rule response dict for a Twin record."""
    out = {
        **_base(rec),
        "type": attr(rec, "type"),
        "compare_type": attr(rec, "compare_type"),
        "key": (getattr(rec, "attrs", None) or {}).get("key"),  # not the record's own ``key`` (its id)
        "value": attr(rec, "value"),
        "invert": bool(attr(rec, "invert", False)),
    }
    return dict(sorted(out.items()))


def _live(cloud: Cloud, kind: str, key: str) -> Any:
    rec = cloud.twin.record(kind, key)
    if rec is None or attr(rec, "provisioning_status") == "DELETED":
        raise not_found("L7 Policy" if kind == "l7policy" else "L7 Rule", key)
    return rec


def _rule_of(cloud: Cloud, policy_id: str, rule_id: str) -> Any:
    _live(cloud, "l7policy", policy_id)
    rec = cloud.twin.record("l7rule", rule_id)
    if rec is None or attr(rec, "l7policy_id") != policy_id or attr(rec, "provisioning_status") == "DELETED":
        raise not_found("L7 Rule", rule_id)
    return rec


def _inner(raw: Any, root: str, allowed: frozenset[str]) -> dict[str, Any]:
    """The object inside ``{root: {...}}``, with WSME's refusals for other shapes or keys."""
    if not isinstance(raw, dict) or not isinstance(raw.get(root), dict):
        raise invalid_input(root, raw, "Mandatory field missing.")
    extra = set(raw) - {root}
    if extra:
        raise unknown_attributes(root, sorted(extra))
    body: dict[str, Any] = dict(raw[root])
    unknown = sorted(set(body) - allowed)
    if unknown:
        raise unknown_attributes(root, unknown)
    if (
        "tags" in body
        and body["tags"] is not None
        and not (isinstance(body["tags"], list) and all(isinstance(t, str) for t in body["tags"]))
    ):
        raise invalid_input("tags", body["tags"], "Value should be a list of strings.")
    for k in ("position", "redirect_http_code"):
        v = body.get(k)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int)):
            raise invalid_input(k, v, "Value should be an integer.")
    for k in ("admin_state_up", "invert"):
        v = body.get(k)
        if v is not None and not isinstance(v, bool):
            raise invalid_input(k, v, "Value should be a boolean.")
    for k, v in body.items():
        if k not in ("tags", "position", "redirect_http_code", "admin_state_up", "invert", "rules") and not (
            v is None or isinstance(v, str)
        ):
            raise invalid_input(k, v, "Value should be a string.")
    for k in ("name", "description", "key", "value", "project_id"):
        v = body.get(k)
        limit = 36 if k == "project_id" else 255
        if isinstance(v, str) and len(v) > limit:
            raise invalid_input(k, v, f"Value should have a maximum character requirement of {limit}")
    body.pop("tenant_id", None)
    body.pop("project_id", None)
    return body


def _apply(cloud: Cloud, request: Request, op: str, kind: str, key: str | None, body: dict[str, Any]) -> str:
    resp = cloud.twin.request(op, kind, key, body, project_id=project_of(request, cloud))
    if not resp.ok:
        raise Fault(int(resp.code), str(resp.message), getattr(resp, "faultcode", None) or None)
    return str(resp.key or key)


def _listed(request: Request, key: str, items: list[dict[str, Any]], known: list[str]) -> Response:
    query = list(request.query_params.multi_items())
    extra = FILTERS if key == "l7policies" else {}
    page, links = paginate(items, query, path_url(request), extra_filters=extra, sortable=known)
    fields = parse_fields(query)
    return JSONResponse({key: [select_fields(o, fields) for o in page], f"{key}_links": links})


def l7_router() -> APIRouter:
    """``/lbaas/l7policies`` and ``/lbaas/l7policies/{id}/rules``."""
    r = APIRouter(tags=["l7policies"])

    async def list_policies(request: Request) -> Response:
        cloud = cloud_of(request)
        return _listed(request, "l7policies", [shape_policy(p) for p in cloud.twin.records("l7policy")], POLICY_FIELDS)

    async def show_policy(request: Request, oid: str) -> Response:
        cloud = cloud_of(request)
        fields = parse_fields(list(request.query_params.multi_items()))
        return JSONResponse({"l7policy": select_fields(shape_policy(_live(cloud, "l7policy", oid)), fields)})

    async def create_policy(request: Request) -> Response:
        body = _inner(await json_body(request), "l7policy", POLICY_POST)
        cloud = cloud_of(request)
        if body.get("rules"):
            raise Fault(
                501,
                "Provider 'amphora' does not support a requested action: "
                "lbsim serve creates a policy's rules with their own calls.",
            )
        body.pop("rules", None)
        if body.get("action") is None:
            raise invalid_input("action", None, "Mandatory field missing.")
        if body.get("listener_id") is None:
            raise invalid_input("listener_id", None, "Mandatory field missing.")
        cloud.live("listener", str(body["listener_id"]))
        key = _apply(cloud, request, "create", "l7policy", None, body)
        return JSONResponse({"l7policy": shape_policy(_live(cloud, "l7policy", key))}, status_code=201)

    async def update_policy(request: Request, oid: str) -> Response:
        body = _inner(await json_body(request), "l7policy", POLICY_PUT)
        cloud = cloud_of(request)
        _live(cloud, "l7policy", oid)
        _apply(cloud, request, "update", "l7policy", oid, body)
        return JSONResponse({"l7policy": shape_policy(_live(cloud, "l7policy", oid))})

    async def delete_policy(request: Request, oid: str) -> Response:
        cloud = cloud_of(request)
        _live(cloud, "l7policy", oid)
        _apply(cloud, request, "delete", "l7policy", oid, {})
        return Response(status_code=204)

    async def list_rules(request: Request, policy_id: str) -> Response:
        cloud = cloud_of(request)
        policy = _live(cloud, "l7policy", policy_id)
        rows = [cloud.twin.record("l7rule", k) for k in attr(policy, "rules", [])]
        return _listed(request, "rules", [shape_rule(x) for x in rows if x is not None], RULE_FIELDS)

    async def show_rule(request: Request, policy_id: str, oid: str) -> Response:
        cloud = cloud_of(request)
        fields = parse_fields(list(request.query_params.multi_items()))
        return JSONResponse({"rule": select_fields(shape_rule(_rule_of(cloud, policy_id, oid)), fields)})

    async def create_rule(request: Request, policy_id: str) -> Response:
        body = _inner(await json_body(request), "rule", RULE_POST)
        cloud = cloud_of(request)
        _live(cloud, "l7policy", policy_id)
        for k in ("type", "compare_type", "value"):
            if body.get(k) is None:
                raise invalid_input(k, None, "Mandatory field missing.")
        key = _apply(cloud, request, "create", "l7rule", None, {**body, "l7policy_id": policy_id})
        return JSONResponse({"rule": shape_rule(_rule_of(cloud, policy_id, key))}, status_code=201)

    async def update_rule(request: Request, policy_id: str, oid: str) -> Response:
        body = _inner(await json_body(request), "rule", RULE_PUT)
        cloud = cloud_of(request)
        _rule_of(cloud, policy_id, oid)
        _apply(cloud, request, "update", "l7rule", oid, body)
        return JSONResponse({"rule": shape_rule(_rule_of(cloud, policy_id, oid))})

    async def delete_rule(request: Request, policy_id: str, oid: str) -> Response:
        cloud = cloud_of(request)
        _rule_of(cloud, policy_id, oid)
        _apply(cloud, request, "delete", "l7rule", oid, {})
        return Response(status_code=204)

    base = "/lbaas/l7policies"
    rules = base + "/{policy_id}/rules"
    for path, method, handler, summary, op, code in (
        (base, "GET", list_policies, "List L7 policies", "list_l7policies", 200),
        (base, "POST", create_policy, "Create an L7 policy", "create_l7policy", 201),
        (base + "/{oid}", "GET", show_policy, "Show an L7 policy", "show_l7policy", 200),
        (base + "/{oid}", "PUT", update_policy, "Update an L7 policy", "update_l7policy", 200),
        (base + "/{oid}", "DELETE", delete_policy, "Delete an L7 policy", "delete_l7policy", 204),
        (rules, "GET", list_rules, "List an L7 policy's rules", "list_l7rules", 200),
        (rules, "POST", create_rule, "Create an L7 rule", "create_l7rule", 201),
        (rules + "/{oid}", "GET", show_rule, "Show an L7 rule", "show_l7rule", 200),
        (rules + "/{oid}", "PUT", update_rule, "Update an L7 rule", "update_l7rule", 200),
        (rules + "/{oid}", "DELETE", delete_rule, "Delete an L7 rule", "delete_l7rule", 204),
    ):
        r.add_api_route(
            path,
            handler,
            methods=[method],
            summary=summary,
            status_code=code,
            response_model=None,
            responses=FAULTS,
            openapi_extra={"parameters": LIST_PARAMS} if method == "GET" and not path.endswith("}") else None,
            operation_id=op,
        )
    return r
