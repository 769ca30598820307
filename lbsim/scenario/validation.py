"""Whole-scenario checks that a single field cannot make: names, references, combinations.

These are Octavia's API rules (octavia-semantics.md §4) that involve more than one
object (protocol compatibility, unique listener ports, one default pool, unique member
address and port), plus lbsim's own: every name an event or expectation uses must exist
in the tree or be created by an ``api: create`` event, and times must fall inside the run.
Each problem is returned with the field path it belongs to.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from lbsim.scenario import model as m

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
_MODEL: dict[str, type[BaseModel]] = {
    "listener": m.Listener,
    "pool": m.Pool,
    "member": m.Member,
    "healthmonitor": m.HealthMonitor,
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


def _check(sc: m.Scenario, base_dir: Path | None) -> Iterator[Found]:
    lb = sc.loadbalancer
    lpath: PathT = ("loadbalancer",)
    listeners = [((*lpath, "listeners", i, "name"), li.name) for i, li in enumerate(lb.listeners)]
    pools = [((*lpath, "pools", i, "name"), p.name) for i, p in enumerate(lb.pools)]
    members = [
        ((*lpath, "pools", i, "members", j, "name"), mem.name)
        for i, p in enumerate(lb.pools)
        for j, mem in enumerate(p.members)
    ]
    monitors = [
        ((*lpath, "pools", i, "healthmonitor", "name"), p.healthmonitor.name)
        for i, p in enumerate(lb.pools)
        if p.healthmonitor is not None and p.healthmonitor.name is not None
    ]
    yield from _dupes(listeners, "listener")
    yield from _dupes(pools, "pool")
    yield from _dupes(members, "member")
    yield from _dupes(monitors, "health monitor")

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
                    (f"{p.protocol} pools accept only SOURCE_IP persistence"),
                )
            for opt in ("persistence_timeout", "persistence_granularity"):
                if not udp and getattr(sp, opt) is not None:
                    yield (
                        (*here, "session_persistence", opt),
                        (f"{opt} is only valid for UDP and SCTP pools (pool protocol is {p.protocol})"),
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

    # Names known to events and expectations: the initial tree plus everything created.
    known: dict[str, set[str]] = {
        "loadbalancer": {lb.name},
        "listener": {li.name for li in lb.listeners},
        "pool": set(pools_by_name),
        "member": {mem.name for p in lb.pools for mem in p.members},
        "healthmonitor": {p.healthmonitor.name or f"{p.name}-hm" for p in lb.pools if p.healthmonitor is not None},
    }
    for ev in sc.events:
        if isinstance(ev, m.ApiEvent) and ev.api == "create":
            kind, name = ev.target
            known[kind].add(name)

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
            roles = AMPHORA_ROLES[lb.topology]
            if ev.amphora not in roles:
                yield (
                    (*here, "amphora"),
                    (f"a {lb.topology} load balancer has amphora role {' or '.join(roles)}, not {ev.amphora}"),
                )

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


def _check_api(ev: m.ApiEvent, here: PathT, known: dict[str, set[str]], sc: m.Scenario) -> Iterator[Found]:
    kind, name = ev.target
    if ev.api == "create":
        parent = {"member": "pool", "healthmonitor": "pool", "pool": None, "listener": None}
        if kind == "loadbalancer":
            yield (*here, "api"), "lbsim simulates one load balancer; it cannot create another"
            return
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
                yield from _validate_body(_MODEL[kind], {**current, **good}, (*here, "set"))
    elif ev.set:
        yield (*here, "set"), f"'set' is only used with create and update, not {ev.api}"


def _current(sc: m.Scenario, kind: str, name: str) -> dict[str, Any] | None:
    """The scenario's initial definition of an object, as a dict (None if created later)."""
    lb = sc.loadbalancer
    if kind == "listener":
        objs: list[BaseModel] = [li for li in lb.listeners if li.name == name]
    elif kind == "pool":
        objs = [p for p in lb.pools if p.name == name]
    elif kind == "member":
        objs = [mem for p in lb.pools for mem in p.members if mem.name == name]
    elif kind == "healthmonitor":
        objs = [
            p.healthmonitor
            for p in lb.pools
            if p.healthmonitor is not None and (p.healthmonitor.name or f"{p.name}-hm") == name
        ]
    else:
        objs = []
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
    import ipaddress
    import re

    for i, p in enumerate(sc.loadbalancer.pools):
        pol = p.autoscaling
        if pol is None:
            continue
        here: PathT = ("loadbalancer", "pools", i, "autoscaling")
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
