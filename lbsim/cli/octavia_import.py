"""``lbsim import``: a scenario from a live Octavia endpoint or from saved ``-f json`` output.

``lbsim import --endpoint URL [--loadbalancer NAME_OR_ID] [-o scenario.yaml]`` reads (never
writes) a cloud through openstacksdk's ``load_balancer`` proxy (``OS_AUTH_TYPE=none`` style
endpoints, such as ``lbsim serve``; with ``--os-cloud NAME`` a clouds.yaml entry instead).
``lbsim import FILE.json ...`` reads saved JSON instead: ``openstack loadbalancer <kind> show
-f json`` objects, lists of them, or raw API bodies (``{"pools": [...]}``). Relations come from
the fields Octavia shows: a listener's ``loadbalancers`` and ``default_pool_id``, a pool's
``loadbalancers``, ``members`` and ``healthmonitor_id``, a monitor's ``pools``.

The scenario keeps what lbsim simulates (protocols, ports, algorithms, weights, monitors,
timeouts, admin states) under names that satisfy the scenario format (Octavia's optional,
non-unique names are made unique, and derived from the id when empty). Traffic and member
service times are not in Octavia: the scenario gets lbsim's defaults, to edit.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

KINDS = ("loadbalancer", "listener", "pool", "member", "healthmonitor")
_PLURALS = {
    "loadbalancers": "loadbalancer",
    "listeners": "listener",
    "pools": "pool",
    "members": "member",
    "healthmonitors": "healthmonitor",
}


class ImportProblem(Exception):
    """The input cannot be turned into a scenario (the message says why)."""


def classify(obj: Mapping[str, Any]) -> str | None:
    """Which Octavia object a JSON object is, from the fields Octavia shows for each."""
    if "vip_address" in obj or "vip_subnet_id" in obj:
        return "loadbalancer"
    if "lb_algorithm" in obj:
        return "pool"
    if "address" in obj and "protocol_port" in obj:
        return "member"
    if "protocol_port" in obj and "protocol" in obj:
        return "listener"
    if "delay" in obj and "max_retries" in obj:
        return "healthmonitor"
    return None


def objects_from_json(data: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every Octavia object in a JSON document (one object, a list, or an API body)."""
    out: list[tuple[str, dict[str, Any]]] = []
    if isinstance(data, list):
        for item in data:
            out.extend(objects_from_json(item))
    elif isinstance(data, dict):
        wrapped = [k for k in data if k in _PLURALS or k in KINDS]
        if wrapped and classify(data) is None:
            for k in wrapped:
                out.extend(objects_from_json(data[k]))
        else:
            kind = classify(data)
            if kind is not None:
                out.append((kind, data))
    return out


def _ids(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v["id"]) if isinstance(v, Mapping) else str(v) for v in value]
    if isinstance(value, str) and value:
        return [s.strip() for s in re.split(r"[,\s]+", value) if s.strip()]
    return []


class _Namer:
    """Scenario names (``[A-Za-z0-9_.@-]+``, unique per kind) for Octavia objects."""

    def __init__(self) -> None:
        self.used: dict[str, set[str]] = {k: set() for k in KINDS}
        self.names: dict[tuple[str, str], str] = {}

    def __call__(self, kind: str, obj: Mapping[str, Any]) -> str:
        key = (kind, str(obj.get("id")))
        if key in self.names:
            return self.names[key]
        base = re.sub(r"[^A-Za-z0-9_.@\-]+", "-", str(obj.get("name") or "")).strip("-")
        if not base:
            base = f"{kind}-{str(obj.get('id', ''))[:8]}".rstrip("-")
        name, n = base[:255], 2
        while name in self.used[kind]:
            name, n = f"{base[:250]}-{n}", n + 1
        self.used[kind].add(name)
        self.names[key] = name
        return name


def build_scenario(
    objects: Iterable[tuple[str, Mapping[str, Any]]], *, loadbalancer: str | None = None, duration: float = 600.0
) -> dict[str, Any]:
    """A scenario document (a dict, ready for YAML): one load balancer as ``loadbalancer:``,
    several as ``loadbalancers:`` (``loadbalancer`` picks one by name or id)."""
    by_kind: dict[str, dict[str, Mapping[str, Any]]] = {k: {} for k in KINDS}
    for kind, obj in objects:
        if obj.get("id") is not None:
            by_kind[kind][str(obj["id"])] = obj
    lbs = [lb for lb in by_kind["loadbalancer"].values() if lb.get("provisioning_status") not in ("DELETED",)]
    if loadbalancer is not None:
        lbs = [lb for lb in lbs if loadbalancer in (lb.get("id"), lb.get("name"))]
        if not lbs:
            raise ImportProblem(f"no load balancer named or with id {loadbalancer!r}")
    if not lbs:
        raise ImportProblem("no load balancer found in the input")
    name = _Namer()
    trees = [_tree(lb, by_kind, name) for lb in lbs]
    doc: dict[str, Any] = {
        "version": 1,
        "name": trees[0]["name"] if len(trees) == 1 else "imported",
        "seed": 0,
        "duration": float(duration),
    }
    if len(trees) == 1:
        doc["loadbalancer"] = trees[0]
    else:
        doc["loadbalancers"] = trees
    return doc


def _tree(lb: Mapping[str, Any], by_kind: dict[str, dict[str, Mapping[str, Any]]], name: _Namer) -> dict[str, Any]:
    """One load balancer's scenario tree (listeners, pools with monitor and members)."""
    lb_id = str(lb["id"])

    def on_lb(obj: Mapping[str, Any], via: str = "loadbalancers") -> bool:
        return lb_id in _ids(obj.get(via)) or str(obj.get("loadbalancer_id", "")) == lb_id

    pools = [p for p in by_kind["pool"].values() if on_lb(p)]
    pool_ids = {str(p["id"]) for p in pools}
    listeners = [lst for lst in by_kind["listener"].values() if on_lb(lst)]
    member_pool: dict[str, str] = {}
    for p in pools:
        for mid in _ids(p.get("members")):
            member_pool[mid] = str(p["id"])
    for m in by_kind["member"].values():
        pid = m.get("pool_id")
        if pid is not None and str(pid) in pool_ids:
            member_pool.setdefault(str(m["id"]), str(pid))
    hm_of: dict[str, Mapping[str, Any]] = {}
    for hm in by_kind["healthmonitor"].values():
        for pid in _ids(hm.get("pools")) + ([str(hm["pool_id"])] if hm.get("pool_id") else []):
            if pid in pool_ids:
                hm_of[pid] = hm
    for p in pools:
        hid = p.get("healthmonitor_id")
        if hid and str(hid) in by_kind["healthmonitor"]:
            hm_of.setdefault(str(p["id"]), by_kind["healthmonitor"][str(hid)])

    def pool_doc(p: Mapping[str, Any]) -> dict[str, Any]:
        doc: dict[str, Any] = {"name": name("pool", p), "protocol": p["protocol"], "lb_algorithm": p["lb_algorithm"]}
        if p.get("admin_state_up") is False:
            doc["admin_state_up"] = False
        sp = p.get("session_persistence")
        if isinstance(sp, Mapping) and sp.get("type"):
            doc["session_persistence"] = {k: v for k, v in sp.items() if v is not None}
        hm = hm_of.get(str(p["id"]))
        if hm is not None:
            h: dict[str, Any] = {"type": hm["type"], "delay": int(hm["delay"]), "timeout": int(hm["timeout"])}
            h["max_retries"] = int(hm["max_retries"])
            h["max_retries_down"] = int(hm.get("max_retries_down") or 3)
            if hm.get("name"):
                h["name"] = name("healthmonitor", hm)
            if hm["type"] in ("HTTP", "HTTPS"):
                for k in ("http_method", "url_path", "expected_codes"):
                    if hm.get(k):
                        h[k] = str(hm[k])
            if hm.get("admin_state_up") is False:
                h["admin_state_up"] = False
            doc["healthmonitor"] = h
        members = []
        for mid, pid in member_pool.items():
            if pid != str(p["id"]) or mid not in by_kind["member"]:
                continue
            m = by_kind["member"][mid]
            md: dict[str, Any] = {
                "name": name("member", m),
                "address": m["address"],
                "protocol_port": int(m["protocol_port"]),
            }
            for k, default in (("weight", 1), ("backup", False), ("admin_state_up", True)):
                if m.get(k) is not None and m.get(k) != default:
                    md[k] = m[k]
            for k in ("monitor_address", "monitor_port"):
                if m.get(k) is not None:
                    md[k] = m[k]
            members.append(md)
        doc["members"] = members
        return doc

    pool_docs = [pool_doc(p) for p in pools]
    listener_docs = []
    defaults = {"connection_limit": -1, "timeout_client_data": 50000, "timeout_member_connect": 5000,
                "timeout_member_data": 50000, "timeout_tcp_inspect": 0}  # fmt: skip
    for lst in listeners:
        ld: dict[str, Any] = {"name": name("listener", lst), "protocol": lst["protocol"]}
        ld["protocol_port"] = int(lst["protocol_port"])
        for k, default in defaults.items():
            if lst.get(k) is not None and int(lst[k]) != default:
                ld[k] = int(lst[k])
        dp = lst.get("default_pool_id")
        if dp and str(dp) in pool_ids:
            ld["default_pool"] = name("pool", by_kind["pool"][str(dp)])
        if lst.get("admin_state_up") is False:
            ld["admin_state_up"] = False
        listener_docs.append(ld)
    lb_doc: dict[str, Any] = {"name": name("loadbalancer", lb)}
    if lb.get("admin_state_up") is False:
        lb_doc["admin_state_up"] = False
    if lb.get("vip_address"):
        lb_doc["vip_address"] = lb["vip_address"]
    lb_doc["listeners"] = listener_docs
    lb_doc["pools"] = pool_docs
    return lb_doc


def from_endpoint(endpoint: str | None, cloud: str | None) -> list[tuple[str, dict[str, Any]]]:
    """Every load balancer, listener, pool, member and monitor visible through openstacksdk."""
    try:
        import openstack
    except ImportError:
        raise ImportProblem("reading a live endpoint needs openstacksdk: pip install 'lbsim[openstack]'") from None
    try:
        if cloud:
            conn = openstack.connect(cloud=cloud)
        else:
            conn = openstack.connection.Connection(
                auth_type="none", auth={"endpoint": endpoint}, load_balancer_endpoint_override=endpoint
            )
        lb_proxy = conn.load_balancer
        out: list[tuple[str, dict[str, Any]]] = []
        for lb in lb_proxy.load_balancers():
            out.append(("loadbalancer", lb.to_dict(computed=False)))
        for lst in lb_proxy.listeners():
            out.append(("listener", lst.to_dict(computed=False)))
        for pool in lb_proxy.pools():
            pd = pool.to_dict(computed=False)
            out.append(("pool", pd))
            for m in lb_proxy.members(pool.id):
                out.append(("member", {**m.to_dict(computed=False), "pool_id": pool.id}))
        for hm in lb_proxy.health_monitors():
            out.append(("healthmonitor", hm.to_dict(computed=False)))
    except ImportProblem:
        raise
    except Exception as err:  # openstacksdk raises many kinds; the user needs the message
        raise ImportProblem(f"cannot read {endpoint or cloud}: {err}") from None
    return [(k, _sdk_fields(k, d)) for k, d in out]


def _sdk_fields(kind: str, obj: dict[str, Any]) -> dict[str, Any]:
    """openstacksdk's attribute names back to the API's."""
    out = dict(obj)
    renames = {"is_admin_state_up": "admin_state_up", "is_backup": "backup", "health_monitor_id": "healthmonitor_id",
               "listener_ids": "listeners", "pool_ids": "pools", "load_balancer_ids": "loadbalancers"}  # fmt: skip
    for old, new in renames.items():
        if old in out and new not in out:
            out[new] = out.pop(old)
    if kind == "listener" and "loadbalancers" not in out and out.get("load_balancers"):
        out["loadbalancers"] = out["load_balancers"]
    if kind == "pool" and "loadbalancers" not in out and out.get("load_balancers"):
        out["loadbalancers"] = out["load_balancers"]
    return out


def _cmd_import(args: argparse.Namespace) -> int:
    import yaml  # not for ``lbsim --help``

    try:
        if args.files:
            objects: list[tuple[str, dict[str, Any]]] = []
            for f in args.files:
                try:
                    objects.extend(objects_from_json(json.loads(Path(f).read_text(encoding="utf-8"))))
                except OSError as err:
                    raise ImportProblem(f"{f}: {err.strerror or err}") from None
                except ValueError as err:
                    raise ImportProblem(f"{f}: not JSON ({err})") from None
        elif args.endpoint or args.os_cloud:
            objects = from_endpoint(args.endpoint, args.os_cloud)
        else:
            raise ImportProblem("give saved JSON files, --endpoint URL (e.g. $OS_ENDPOINT) or --os-cloud NAME")
        doc = build_scenario(objects, loadbalancer=args.loadbalancer, duration=args.duration)
        _validate(doc)
    except ImportProblem as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    text = "# imported by lbsim import; traffic and member service times are lbsim defaults: edit them\n"
    text += yaml.safe_dump(doc, sort_keys=False)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"wrote {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)
    return 0


def _validate(doc: dict[str, Any]) -> None:
    import yaml  # not for ``lbsim --help``

    from lbsim.scenario.loader import ScenarioError, parse_scenario

    try:
        parse_scenario(yaml.safe_dump(doc, sort_keys=False), "<import>")
    except ScenarioError as err:
        raise ImportProblem("the imported tree is not a valid scenario: " + "; ".join(map(str, err.problems))) from None


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``import`` to ``lbsim``'s sub-parsers."""
    import os

    p = subparsers.add_parser(
        "import",
        help="write a scenario from a live Octavia endpoint or saved `openstack ... -f json` output",
        description="Read a load balancer tree (read-only) and print it as an lbsim scenario.",
    )
    p.add_argument("files", nargs="*", metavar="FILE.json", help="saved JSON (show/list output or API bodies)")
    p.add_argument("--endpoint", default=None, help="a no-auth Octavia endpoint, e.g. $OS_ENDPOINT of `lbsim serve`")
    p.add_argument("--os-cloud", default=os.environ.get("OS_CLOUD"), help="a clouds.yaml entry instead (read-only)")
    p.add_argument("--loadbalancer", help="which load balancer (name or id) when there are several")
    p.add_argument("--duration", type=float, default=600.0, help="the scenario's duration in seconds (default 600)")
    p.add_argument("-o", "--output", help="write the scenario here instead of stdout")
    p.set_defaults(func=_cmd_import)
