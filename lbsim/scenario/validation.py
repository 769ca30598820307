"""Whole-scenario checks that a single field cannot make: names, references, combinations.

These are Octavia's API rules (octavia-semantics.md §4) that involve more than one
object (protocol compatibility, unique listener ports, one default pool, unique member
address and port), plus lbsim's own: every name an event or expectation uses must exist
in the tree or be created by an ``api: create`` event, and times must fall inside the run.
Each problem is returned with the field path it belongs to.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lbsim.scenario import model as m
from lbsim.scenario.access import check_allowed_cidrs
from lbsim.scenario.headers import check_insert_headers
from lbsim.scenario.l7 import check_l7, check_mixes
from lbsim.scenario.unset import restore_defaults

PathT = tuple[str | int, ...]
Found = tuple[PathT, str]

#: fields Octavia's PUT accepts per object type (its *PUT types), plus lbsim's own
#: member serving fields
UPDATABLE: dict[str, frozenset[str]] = {
    "loadbalancer": frozenset({"name", "admin_state_up"}),
    "listener": frozenset(
        {
            "name",
            "admin_state_up",
            "connection_limit",
            "default_pool",
            "timeout_client_data",
            "timeout_member_connect",
            "timeout_member_data",
            "timeout_tcp_inspect",
        }
    ),
    "pool": frozenset({"name", "admin_state_up", "lb_algorithm", "session_persistence"}),
    "member": frozenset(
        {
            "name",
            "weight",
            "admin_state_up",
            "backup",
            "monitor_address",
            "monitor_port",
            "concurrency",
            "service_time",
        }
    ),
    "healthmonitor": frozenset(
        {
            "name",
            "delay",
            "timeout",
            "max_retries",
            "max_retries_down",
            "http_method",
            "url_path",
            "expected_codes",
            "http_version",
            "domain_name",
            "admin_state_up",
        }
    ),
}
#: amphora roles per topology (Octavia: STANDALONE for SINGLE, MASTER/BACKUP for VRRP)
AMPHORA_ROLES: dict[str, tuple[str, ...]] = {
    "SINGLE": ("STANDALONE",),
    "ACTIVE_STANDBY": ("MASTER", "BACKUP"),
}
UPDATABLE["l7policy"] = frozenset(
    {"name", "action", "position", "redirect_pool", "redirect_url", "redirect_prefix", "redirect_http_code"}
    | {"admin_state_up"}
)
UPDATABLE["listener"] = UPDATABLE["listener"] | {"allowed_cidrs"}
UPDATABLE["l7rule"] = frozenset({"type", "compare_type", "key", "value", "invert", "admin_state_up"})
_MODEL: dict[str, type[BaseModel]] = {
    "loadbalancer": m.LoadBalancer,
    "listener": m.Listener,
    "pool": m.Pool,
    "member": m.Member,
    "healthmonitor": m.HealthMonitor,
    "l7policy": m.L7Policy,
    "l7rule": m.L7Rule,
}


def _dupes(names: list[tuple[PathT, str]], what: str) -> Iterator[Found]:
    seen: dict[str, PathT] = {}
    for path, name in names:
        if name in seen:
            yield path, f"duplicate {what} name '{name}' (first used at {_fmt(seen[name])})"
        else:
            seen[name] = path


def _fmt(path: PathT) -> str:
    from lbsim.scenario.errors import format_path

    return format_path(path)


def check_scenario(sc: m.Scenario, base_dir: Path | None = None) -> list[Found]:
    """Every cross-object problem of a schema-valid scenario, with its field path."""
    return list(_check(sc, base_dir))


def _lb_paths(sc: m.Scenario) -> list[tuple[PathT, m.LoadBalancer]]:
    """Each load-balancer tree of the scenario with its field path."""
    if sc.loadbalancers is None:
        return [(("loadbalancer",), sc.loadbalancer)]
    return [(("loadbalancers", k), lb) for k, lb in enumerate(sc.loadbalancers)]


def _check(sc: m.Scenario, base_dir: Path | None) -> Iterator[Found]:
    trees = _lb_paths(sc)
    # names are keys: unique across every load balancer of the scenario
    yield from _dupes([((*lp, "name"), lb.name) for lp, lb in trees], "load balancer")
    for what, kind in (("listener", "listeners"), ("pool", "pools")):
        yield from _dupes(
            [((*lp, kind, i, "name"), o.name) for lp, lb in trees for i, o in enumerate(getattr(lb, kind))], what
        )
    yield from _dupes(
        [
            ((*lp, "pools", i, "members", j, "name"), mem.name)
            for lp, lb in trees
            for i, p in enumerate(lb.pools)
            for j, mem in enumerate(p.members)
        ],
        "member",
    )
    yield from _dupes(
        [
            ((*lp, "pools", i, "healthmonitor", "name"), p.healthmonitor.name)
            for lp, lb in trees
            for i, p in enumerate(lb.pools)
            if p.healthmonitor is not None and p.healthmonitor.name is not None
        ],
        "health monitor",
    )
    for lp, lb in trees:
        yield from _check_tree(lb, lp, base_dir)
    yield from _check_network(sc)
    yield from _check_vips(sc, trees)
    yield from _check_events(sc, base_dir)
    yield from check_mixes(sc.traffic)


def _check_network(sc: m.Scenario) -> Iterator[Found]:
    """Unique network, subnet and QoS names; subnets of one network do not overlap."""
    nets = sc.network.networks
    yield from _dupes([(("network", "networks", i, "name"), n.name) for i, n in enumerate(nets)], "network")
    yield from _dupes(
        [
            (("network", "networks", i, "subnets", j, "name"), s.name)
            for i, n in enumerate(nets)
            for j, s in enumerate(n.subnets)
        ],
        "subnet",
    )
    yield from _dupes(
        [(("network", "qos_policies", i, "name"), q.name) for i, q in enumerate(sc.network.qos_policies)],
        "QoS policy",
    )
    import ipaddress

    for i, n in enumerate(nets):
        seen: list[tuple[Any, str]] = []
        for j, s in enumerate(n.subnets):
            cidr = ipaddress.ip_network(s.cidr, strict=False)
            for other, oname in seen:
                if cidr.version == other.version and cidr.overlaps(other):
                    yield (
                        ("network", "networks", i, "subnets", j, "cidr"),
                        f"{s.cidr} overlaps subnet '{oname}' ({other}) of the same network",
                    )
            seen.append((cidr, s.name))
            if s.gateway_ip is not None:
                try:
                    inside = ipaddress.ip_address(s.gateway_ip) in cidr
                except ValueError:
                    inside = False
                if not inside:
                    yield (
                        ("network", "networks", i, "subnets", j, "gateway_ip"),
                        f"gateway {s.gateway_ip} is not an address of {s.cidr}",
                    )


def _check_vips(sc: m.Scenario, trees: list[tuple[PathT, m.LoadBalancer]]) -> Iterator[Found]:
    """A VIP is on a subnet of the cloud, and its fixed address inside that subnet."""
    import ipaddress

    subnets = {s.name: s for n in sc.network.networks for s in n.subnets}
    for lp, lb in trees:
        if lb.name == m.NO_LOADBALANCER:
            continue
        if lb.vip_qos_policy_id is not None and lb.vip_qos_policy_id not in {q.name for q in sc.network.qos_policies}:
            yield (
                (*lp, "vip_qos_policy_id"),
                (f"Invalid input for field/attribute vip_qos_policy_id. Value: '{lb.vip_qos_policy_id}' not found."),
            )
        zones = lb.availability_zone if isinstance(lb.availability_zone, list) else [lb.availability_zone]
        for z in zones:
            if z is not None and z not in sc.network.availability_zones:
                yield (
                    (*lp, "availability_zone"),
                    (
                        f"Validation failure: Invalid availability zone. ('{z}' is not one of network: "
                        f"availability_zones {sc.network.availability_zones})"
                    ),
                )
        if lb.vip_subnet is not None and lb.vip_subnet not in subnets:
            yield (*lp, "vip_subnet"), _unknown("subnet", lb.vip_subnet, subnets)
            continue
        subnet = subnets.get(lb.vip_subnet) if lb.vip_subnet is not None else None
        if lb.vip_address is None or subnet is None:  # (no subnet named: any address, as before)
            continue
        try:
            inside = ipaddress.ip_address(lb.vip_address) in ipaddress.ip_network(subnet.cidr, strict=False)
        except ValueError:
            yield (*lp, "vip_address"), f"expected an IPv4 or IPv6 address, got {lb.vip_address!r}"
            continue
        if not inside:
            yield (*lp, "vip_address"), f"{lb.vip_address} is not an address of subnet '{subnet.name}' ({subnet.cidr})"


def _check_tree(lb: m.LoadBalancer, lpath: PathT, base_dir: Path | None) -> Iterator[Found]:
    """One load balancer's tree: listeners, pools, monitors and members."""
    pools_by_name = {p.name: p for p in lb.pools}
    # Listeners: protocol/port uniqueness, default pool reference and compatibility.
    ports: dict[tuple[str, int], str] = {}
    for i, li in enumerate(lb.listeners):
        here = (*lpath, "listeners", i)
        key = (m.L4_PROTOCOL[li.protocol], li.protocol_port)
        if key in ports:
            yield (
                (*here, "protocol_port"),
                (
                    f"listener port {li.protocol_port}/{key[0]} is already used by listener "
                    f"'{ports[key]}' (Octavia answers 409 DuplicateListenerEntry)"
                ),
            )
        else:
            ports[key] = li.name
        if li.protocol == "TERMINATED_HTTPS" and not li.default_tls_container_ref:
            yield (
                (*here, "default_tls_container_ref"),
                ("a TERMINATED_HTTPS listener needs a certificate reference"),
            )
        if li.default_pool is None:
            continue
        pool = pools_by_name.get(li.default_pool)
        if pool is None:
            yield (*here, "default_pool"), _unknown("pool", li.default_pool, pools_by_name)
            continue
        allowed = m.LISTENER_POOL_PROTOCOLS[li.protocol]
        if pool.protocol not in allowed:
            yield (
                (*here, "default_pool"),
                (
                    f"a {li.protocol} listener cannot use {pool.protocol} pool '{pool.name}'; "
                    f"allowed pool protocols: {', '.join(allowed) or 'none'}"
                ),
            )

    yield from check_l7(lb.listeners, pools_by_name, lpath)
    yield from check_allowed_cidrs(lb.listeners, lb.vip_address, lpath)
    yield from check_insert_headers(lb.listeners, lpath)

    for i, p in enumerate(lb.pools):
        here = (*lpath, "pools", i)
        hm = p.healthmonitor
        if hm is not None:
            if hm.type not in m.POOL_HM_TYPES[p.protocol]:
                yield (
                    (*here, "healthmonitor", "type"),
                    (
                        f"a {p.protocol} pool accepts monitor types "
                        f"{', '.join(m.POOL_HM_TYPES[p.protocol])}, not {hm.type}"
                    ),
                )
            if hm.type == "UDP-CONNECT" and hm.delay < 3:
                yield (
                    (*here, "healthmonitor", "delay"),
                    ("UDP-CONNECT monitors need delay >= 3 (udp_connect_min_interval_health_monitor)"),
                )
            if hm.delay == 0:
                yield (
                    (*here, "healthmonitor", "delay"),
                    ("delay 0 would make HAProxy check continuously; lbsim needs delay >= 1"),
                )
        sp = p.session_persistence
        if sp is not None:
            udp = p.protocol in ("UDP", "SCTP")
            if udp and sp.type != "SOURCE_IP":
                yield (
                    (*here, "session_persistence", "type"),
                    (
                        f"{p.protocol} pools accept only SOURCE_IP persistence (Octavia: Session persistence "
                        f"of type {sp.type} is not supported for UDP/SCTP protocol pools.)"
                    ),
                )
            if sp.persistence_granularity and not _is_ip(sp.persistence_granularity):
                yield (
                    (*here, "session_persistence", "persistence_granularity"),
                    f"persistence_granularity must be an IP address netmask, got {sp.persistence_granularity!r}",
                )
            # Octavia tests the values' truth: a 0 timeout or empty granularity passes
            for opt in ("persistence_timeout", "persistence_granularity"):
                if not udp and getattr(sp, opt):
                    yield (
                        (*here, "session_persistence", opt),
                        (
                            f"{opt} is only valid for UDP and SCTP pools, not {p.protocol} (Octavia: "
                            "persistence_timeout and persistence_granularity is only for UDP and SCTP "
                            "protocol pools.)"
                        ),
                    )
        seen: dict[tuple[str, int], str] = {}
        for j, mem in enumerate(p.members):
            key2 = (mem.address, mem.protocol_port)
            if key2 in seen:
                yield (
                    (*here, "members", j, "protocol_port"),
                    (
                        f"{mem.address}:{mem.protocol_port} is already member '{seen[key2]}' of "
                        "this pool (Octavia answers 409 DuplicateMemberEntry)"
                    ),
                )
            else:
                seen[key2] = mem.name
            for dist_field in ("service_time",):
                yield from _check_dist(getattr(mem, dist_field), (*here, "members", j, dist_field), base_dir)


def _check_events(sc: m.Scenario, base_dir: Path | None) -> Iterator[Found]:
    """Traffic, events, failures and expectations name objects that exist (or are created)."""
    lbs = [lb for _lp, lb in _lb_paths(sc)]
    # Names known to events and expectations: the initial trees plus everything created.
    known: dict[str, set[str]] = {
        "loadbalancer": {lb.name for lb in lbs},
        "listener": {li.name for lb in lbs for li in lb.listeners},
        "pool": {p.name for lb in lbs for p in lb.pools},
        "member": {mem.name for lb in lbs for p in lb.pools for mem in p.members},
        "healthmonitor": {
            p.healthmonitor.name or f"{p.name}-hm" for lb in lbs for p in lb.pools if p.healthmonitor is not None
        },
        "l7policy": {p.name for lb in lbs for li in lb.listeners for p in li.l7policies},
        "l7rule": {r for lb in lbs for li in lb.listeners for p in li.l7policies for r in p.rule_names()},
        "amphora": set(),
    }
    topology: dict[str, str] = {lb.name: lb.topology for lb in lbs}
    for ev in sc.events:
        if isinstance(ev, m.ApiEvent) and ev.api == "create":
            kind, name = ev.target
            known[kind].add(name)
            if kind == "loadbalancer":
                topology[name] = str(ev.set.get("topology") or "SINGLE")

    listeners_known = known["listener"]
    for i, tr in enumerate(sc.traffic):
        if tr.listener not in listeners_known:
            yield ("traffic", i, "listener"), _unknown("listener", tr.listener, listeners_known)
        if isinstance(tr.arrival, m.Trace):
            yield from _check_file(tr.arrival.file, ("traffic", i, "arrival", "file"), base_dir)

    for i, ev in enumerate(sc.events):
        here = ("events", i)
        if ev.at > sc.duration:
            yield (*here, "at"), f"event at {ev.at} is after the end of the run ({sc.duration})"
        if isinstance(ev, m.MemberEvent):
            if ev.member not in known["member"]:
                yield (*here, "member"), _unknown("member", ev.member, known["member"])
        elif isinstance(ev, m.ApiEvent):
            yield from _check_api(ev, here, known, sc)
        elif isinstance(ev, m.NetworkEvent):
            for j, name in enumerate(ev.members or []):
                if name not in known["member"]:
                    yield (*here, "members", j), _unknown("member", name, known["member"])
        elif isinstance(ev, m.AmphoraEvent):
            yield from _check_amphora_event(ev, here, sc, known, topology)
        elif isinstance(ev, m.ZoneEvent) and ev.availability_zone not in sc.network.availability_zones:
            yield (
                (*here, "availability_zone"),
                _unknown("availability zone", ev.availability_zone, set(sc.network.availability_zones)),
            )
        elif isinstance(ev, m.TrafficEvent) and ev.traffic not in known["listener"]:
            yield (*here, "traffic"), _unknown("listener", ev.traffic, known["listener"])

    for i, fl in enumerate(sc.failures):
        if fl.pool is not None and fl.pool not in known["pool"]:
            yield ("failures", i, "pool"), _unknown("pool", fl.pool, known["pool"])
        for j, name in enumerate(fl.members or []):
            if name not in known["member"]:
                yield ("failures", i, "members", j), _unknown("member", name, known["member"])

    for i, ex in enumerate(sc.expect):
        here = ("expect", i)
        kind, name = ex.target
        if name not in known[kind]:
            yield (*here, kind), _unknown(kind, name, known[kind])
        when = "at" if ex.at is not None else "within"
        t = ex.at if ex.at is not None else (ex.within[0] if ex.within else 0.0)
        if t > sc.duration:
            yield (*here, when), f"time {t} is after the end of the run ({sc.duration})"

    yield from _check_autoscaling(sc, base_dir, known)


def _check_amphora_event(
    ev: m.AmphoraEvent, here: PathT, sc: m.Scenario, known: dict[str, set[str]], topology: dict[str, str]
) -> Iterator[Found]:
    if not ev.by_role:
        if ev.loadbalancer is not None:
            yield (*here, "loadbalancer"), "an amphora named by id needs no 'loadbalancer'"
        return  # amphora ids are made during the run (a live session records them)
    if ev.behaviour != "fail":
        yield (*here, "behaviour"), f"'{ev.behaviour}' needs an amphora id, not a role"
    lb_name = ev.loadbalancer if ev.loadbalancer is not None else sc.loadbalancer.name
    if lb_name not in known["loadbalancer"]:
        yield (*here, "loadbalancer"), _unknown("loadbalancer", lb_name, known["loadbalancer"])
        return
    topo = topology.get(lb_name, "SINGLE")
    roles = AMPHORA_ROLES[topo]
    if ev.amphora not in roles:
        yield (
            (*here, "amphora"),
            (f"a {topo} load balancer has amphora role {' or '.join(roles)}, not {ev.amphora}"),
        )


def _check_api(ev: m.ApiEvent, here: PathT, known: dict[str, set[str]], sc: m.Scenario) -> Iterator[Found]:
    kind, name = ev.target
    if kind == "amphora":
        return  # an amphora failover: ids are made during the run
    if ev.api == "create":
        parent = {"member": "pool", "healthmonitor": "pool", "pool": None, "listener": None, "loadbalancer": None}
        parent.update({"l7policy": "listener", "l7rule": "l7policy"})
        if kind == "loadbalancer" and sc.loadbalancers is None:
            yield (*here, "api"), "a scenario with one 'loadbalancer' cannot create another; use 'loadbalancers:'"
            return
        if kind in ("listener", "pool") and sc.loadbalancers is not None:
            if kind == "listener" and ev.loadbalancer is None:
                yield here, "creating a listener needs the 'loadbalancer' it belongs to"
            if kind == "pool" and ev.loadbalancer is None and ev.listener is None:
                yield here, "creating a pool needs its 'listener' or 'loadbalancer'"
            if ev.loadbalancer is not None and ev.loadbalancer not in known["loadbalancer"]:
                yield (*here, "loadbalancer"), _unknown("loadbalancer", ev.loadbalancer, known["loadbalancer"])
        need = parent.get(kind)
        if need is not None and getattr(ev, need) is None:
            yield here, f"creating a {kind} needs the '{need}' it belongs to"
        if kind == "pool" and ev.listener is not None and ev.listener not in known["listener"]:
            yield (*here, "listener"), _unknown("listener", ev.listener, known["listener"])
        if need is not None and getattr(ev, need) is not None:
            pname = getattr(ev, need)
            if pname not in known[need]:
                yield (*here, need), _unknown(need, pname, known[need])
        model_cls = _MODEL[kind]
        body: dict[str, Any] = {"name": name, **ev.set}
        yield from _validate_body(model_cls, body, (*here, "set"))
        return
    if name not in known[kind]:
        yield (*here, kind), _unknown(kind, name, known[kind])
        return
    if ev.api == "update":
        bad = sorted(set(ev.set) - UPDATABLE[kind])
        for key in bad:
            yield (
                (*here, "set", key),
                (f"'{key}' cannot be updated on a {kind}; updatable: " + ", ".join(sorted(UPDATABLE[kind]))),
            )
        if not ev.set:
            yield (*here, "set"), "an update needs the fields to change in 'set'"
        good = {k: v for k, v in ev.set.items() if k in UPDATABLE[kind]}
        if kind in _MODEL and good:
            current = _current(sc, kind, name)
            if current is not None:
                good = restore_defaults(kind, good, current)  # unset: a null takes Octavia's default back
                yield from _validate_body(_MODEL[kind], {**current, **good}, (*here, "set"))
    elif ev.set:
        yield (*here, "set"), f"'set' is only used with create and update, not {ev.api}"


def _current(sc: m.Scenario, kind: str, name: str) -> dict[str, Any] | None:
    """The scenario's initial definition of an object, as a dict (None if created later)."""
    objs: list[BaseModel] = []
    for lb in sc.all_loadbalancers:
        if kind == "listener":
            objs += [li for li in lb.listeners if li.name == name]
        elif kind == "pool":
            objs += [p for p in lb.pools if p.name == name]
        elif kind == "member":
            objs += [mem for p in lb.pools for mem in p.members if mem.name == name]
        elif kind == "healthmonitor":
            objs += [
                p.healthmonitor
                for p in lb.pools
                if p.healthmonitor is not None and (p.healthmonitor.name or f"{p.name}-hm") == name
            ]
    return objs[0].model_dump(exclude_unset=True) if objs else None


def _validate_body(model_cls: type[BaseModel], body: dict[str, Any], here: PathT) -> Iterator[Found]:
    try:
        model_cls.model_validate(body)
    except ValidationError as exc:
        from lbsim.scenario.errors import _clean_loc, _describe

        for err in exc.errors():
            loc = _clean_loc(tuple(err["loc"]), body)
            yield here + loc, _describe(err, loc, model_cls)


def _check_dist(dist: Any, here: PathT, base_dir: Path | None) -> Iterator[Found]:
    if isinstance(dist, m.Empirical) and dist.file is not None:
        yield from _check_file(dist.file, (*here, "file"), base_dir)


def _check_file(name: str, here: PathT, base_dir: Path | None) -> Iterator[Found]:
    p = Path(name)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    if not p.is_file():
        yield here, f"file not found: {p}"


def _unknown(kind: str, name: str, known: Any) -> str:
    import difflib

    names = sorted(known)
    close = difflib.get_close_matches(name, names, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else (f"; known: {', '.join(names)}" if names else "")
    return f"no {kind} named '{name}'{hint}"


def _check_autoscaling(sc: m.Scenario, base_dir: Path | None, known: dict[str, set[str]]) -> Iterator[Found]:
    """An ``autoscaling`` policy must be able to do what it promises (lbsim extension).

    Its address range must hold enough free addresses for the members it may add, the
    names it gives them (``name_prefix`` and a number) must not clash with members the
    scenario defines or creates, and distribution files it names must exist.
    """
    for lpath, lb in _lb_paths(sc):
        yield from _check_lb_autoscaling(lb, lpath, base_dir, known)


def _check_lb_autoscaling(
    lb: m.LoadBalancer, lpath: PathT, base_dir: Path | None, known: dict[str, set[str]]
) -> Iterator[Found]:
    import ipaddress
    import re

    for i, p in enumerate(lb.pools):
        pol = p.autoscaling
        if pol is None:
            continue
        here: PathT = (*lpath, "pools", i, "autoscaling")
        tpl = pol.member_template
        net = ipaddress.ip_network(tpl.address_range, strict=False)
        hosts = net.num_addresses - 2 if net.num_addresses > 2 else net.num_addresses
        taken = sum(
            1
            for mem in p.members
            if mem.protocol_port == tpl.protocol_port and ipaddress.ip_address(mem.address) in net
        )
        needed = pol.max_members - len(p.members)
        if needed > hosts - taken:
            yield (
                (*here, "member_template", "address_range"),
                (
                    f"{tpl.address_range} has {hosts - taken} free addresses for port {tpl.protocol_port}, "
                    f"but the pool may grow by {needed} members (max_members {pol.max_members})"
                ),
            )
        prefix = tpl.name_prefix or f"{p.name}-as-"
        pattern = re.compile(re.escape(prefix) + r"[0-9]+$")
        clash = sorted(name for name in known["member"] if pattern.match(name))
        if clash:
            yield (
                (*here, "member_template", "name_prefix"),
                (
                    f"the scaler names new members '{prefix}<n>', which clashes with member '{clash[0]}'; "
                    "choose another name_prefix"
                ),
            )
        for dist_field in ("service_time", "boot_time", "app_start"):
            yield from _check_dist(getattr(tpl, dist_field), (*here, "member_template", dist_field), base_dir)


def _is_ip(text: str) -> bool:
    """Octavia types persistence_granularity as an IP address (a netmask such as 255.255.255.0)."""
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
