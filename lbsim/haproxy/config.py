"""The HAProxy configuration Octavia 19 renders on the amphora for a scenario's load balancer.

:func:`render` is a pure function from a :class:`~lbsim.scenario.model.Scenario` to the text of
``haproxy.cfg``, following reference/octavia-semantics.md §3 (the amphora driver's
``combined_listeners`` templates):

* ``global``: ``maxconn`` is the sum of the connection limits of the enabled HAProxy
  listeners (-1 counts as 50000), used when 0 < sum < 1,000,000 and 1,000,000
  otherwise; ``external-check`` when an enabled PING monitor is rendered.
* ``global`` also names the amphora's ``server-state-file``, which the backends of
  checked pools load (``load-server-state-from-file global``) so that a reload keeps
  servers' health; without the global file HAProxy warns that it is not set.
* ``defaults``: ``retries 3``, ``option redispatch``, splice request/response,
  ``option http-keep-alive``, ``log global``. No timeouts there.
* one ``frontend <listener_id>`` per enabled listener of an enabled load balancer (UDP
  and SCTP listeners are keepalived/LVS, not HAProxy, and are left out), then one
  ``backend <pool_id>:<listener_id>`` for each enabled pool it uses (the listener's
  ``default_pool``, and the redirect pools of its L7 policies: :mod:`lbsim.haproxy.l7`
  renders their ``acl``/``http-request deny``/``redirect``/``use_backend`` lines;
  ``insert_headers`` adds its backend lines, :mod:`lbsim.scenario.headers`).
* server lines ``server <member_id> <address>:<port> weight <w> [check ...] [cookie ...]
  [send-proxy[-v2]] [backup] [disabled]`` for every member (disabled ones included).

Names: HAProxy sees Octavia's UUIDs. lbsim derives them from the scenario and object
names with :func:`lbsim.results.folder.object_id` (uuid5), so the frontend of listener
``http`` in scenario ``s`` is ``object_id("s", "listener", "http")``. With
``ids="name"`` the lbsim names are used instead, which is easier to read in
``show stat``; :func:`haproxy_names` gives the mapping either way.

Left out on purpose (they need things a scenario does not describe, and do not change
balancing or health checking): TLS certificates and client authentication, the
``log-format`` line of ``connection_logging`` and the
``nbthread``/``cpu-map`` lines of the TuneD profile. Expanded expected codes are written in
ascending order (Octavia joins a set, whose order is arbitrary; the regex means the same).

``loopback=True`` produces a configuration that runs as is on a developer machine
(``haproxy -f FILE -db``): every frontend binds ``127.0.0.1:<port>``, every server and
check address becomes ``127.0.0.1`` with a port from a :class:`LoopbackPlan`, an admin
``stats socket`` is added, ``daemon``/``user nobody`` are dropped, logs go to stdout
(traffic, facility local0) and stderr (administrative, local1 notice) or to a UDP
syslog address, the server-state file (it only matters across reloads) is left out,
the ACTIVE_STANDBY ``peers`` section is dropped (its peers would be other
machines), a PING monitor runs ``/bin/true`` (pinging 127.0.0.1 always succeeds), and a
global ``maxconn`` above ``max_global_maxconn`` is capped so that HAProxy can get the
file descriptors it needs (a comment line keeps Octavia's figure).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal

from lbsim.haproxy import l7
from lbsim.haproxy.healthcheck import expand_expected_codes
from lbsim.scenario import model as m
from lbsim.scenario.headers import backend_header_lines
from lbsim.scenario.ids import object_id

__all__ = [
    "BALANCE_MAP",
    "DEFAULT_CONNECTION_LIMIT",
    "HAPROXY_MAX_MAXCONN",
    "PROTOCOL_MODE",
    "LoopbackPlan",
    "backend_name",
    "global_maxconn",
    "haproxy_names",
    "loopback_plan",
    "render",
]

#: ``[haproxy_amphora] default_connection_limit``: what an unlimited (-1) listener counts as.
DEFAULT_CONNECTION_LIMIT = 50000
#: ``HAPROXY_MAX_MAXCONN``: the global ``maxconn`` cap.
HAPROXY_MAX_MAXCONN = 1_000_000
#: ``[haproxy_amphora] haproxy_stick_size`` as written in the stick tables.
STICK_SIZE = "10k"
#: Octavia's ``PROTOCOL_MAP``: listener or pool protocol -> HAProxy ``mode``.
PROTOCOL_MODE: dict[str, str] = {
    "TCP": "tcp",
    "HTTP": "http",
    "HTTPS": "tcp",
    "TERMINATED_HTTPS": "http",
    "PROMETHEUS": "http",
}
#: Octavia's ``BALANCE_MAP``; anything else (SOURCE_IP_PORT) falls back to roundrobin.
BALANCE_MAP: dict[str, str] = {
    "ROUND_ROBIN": "roundrobin",
    "LEAST_CONNECTIONS": "leastconn",
    "SOURCE_IP": "source",
}
#: Listener and pool protocols served by keepalived (LVS), not by HAProxy.
LVS_PROTOCOLS = frozenset({"UDP", "SCTP"})
#: The amphora's paths (``/var/lib/octavia``) and its rsyslog socket.
BASE_PATH = "/var/lib/octavia"
RSYSLOG_SOCKET = "/run/rsyslog/octavia/log"
#: ``HAPROXY_BASE_PEER_PORT``: the port peers listen on (ACTIVE_STANDBY stick-table sync).
PEER_PORT = 1025
#: Placeholder VRRP addresses for the peers section (TEST-NET-1): a scenario has none.
PLACEHOLDER_VRRP_IPS = ("192.0.2.11", "192.0.2.12")

IdStyle = Literal["uuid", "name"]


# --------------------------------------------------------------------------------------
# Names and numbers
# --------------------------------------------------------------------------------------


def _oid(sc: m.Scenario, kind: str, name: str, ids: IdStyle) -> str:
    return name if ids == "name" else object_id(sc.name, kind, name)


def backend_name(sc: m.Scenario, pool: str, listener: str, ids: IdStyle = "uuid") -> str:
    """HAProxy's name of the backend for ``pool`` used by ``listener``: ``<pool>:<listener>``."""
    return f"{_oid(sc, 'pool', pool, ids)}:{_oid(sc, 'listener', listener, ids)}"


def haproxy_names(sc: m.Scenario, ids: IdStyle = "uuid") -> dict[str, dict[str, str]]:
    """HAProxy's names of every object, keyed by object type then lbsim name.

    ``{"listener": {name: frontend}, "pool": {name: pool id}, "member": {name: server},
    "backend": {"pool:listener" (lbsim names): backend}}``. Lets a test or a user map
    ``show stat`` rows and log lines back to the scenario.
    """
    lb = sc.loadbalancer
    out: dict[str, dict[str, str]] = {"listener": {}, "pool": {}, "member": {}, "backend": {}}
    for li in lb.listeners:
        out["listener"][li.name] = _oid(sc, "listener", li.name, ids)
        if li.default_pool:
            out["backend"][f"{li.default_pool}:{li.name}"] = backend_name(sc, li.default_pool, li.name, ids)
        for l7_pool in l7.listener_l7_pools(li, sc.pools_by_name()):
            out["backend"][f"{l7_pool}:{li.name}"] = backend_name(sc, l7_pool, li.name, ids)
    for p in lb.pools:
        out["pool"][p.name] = _oid(sc, "pool", p.name, ids)
        for mem in p.members:
            out["member"][mem.name] = _oid(sc, "member", mem.name, ids)
    return out


def _haproxy_listeners(sc: m.Scenario) -> list[m.Listener]:
    """Listeners rendered into HAProxy: enabled, not UDP/SCTP, of an enabled LB."""
    lb = sc.loadbalancer
    if not lb.admin_state_up:
        return []
    return [li for li in lb.listeners if li.admin_state_up and li.protocol not in LVS_PROTOCOLS]


def _limit(li: m.Listener) -> int:
    """Frontend ``maxconn``/backend ``fullconn``: the connection limit, or 50000 when -1."""
    return li.connection_limit if li.connection_limit > -1 else DEFAULT_CONNECTION_LIMIT


def global_maxconn(sc: m.Scenario) -> int:
    """Octavia's global ``maxconn`` (§3.1): the sum of the rendered listeners' limits,
    if strictly between 0 and 1,000,000, else 1,000,000."""
    total = sum(_limit(li) for li in _haproxy_listeners(sc))
    return total if 0 < total < HAPROXY_MAX_MAXCONN else HAPROXY_MAX_MAXCONN


def _expected_codes(codes: str) -> str:
    """``http-check expect rstatus`` argument: the expanded codes joined by ``|``."""
    return "|".join(str(c) for c in sorted(expand_expected_codes(codes)))


def _hm_enabled(pool: m.Pool) -> m.HealthMonitor | None:
    hm = pool.healthmonitor
    return hm if hm is not None and hm.admin_state_up else None


def _peer_name(amphora_id: str) -> str:
    """Octavia's ``hash_amp_id`` filter: base64 of the SHA-1 of the id, without ``=``."""
    digest = hashlib.sha1(amphora_id.encode(), usedforsecurity=False).digest()
    return base64.b64encode(digest).decode().replace("=", "")


# --------------------------------------------------------------------------------------
# Loopback plan
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopbackPlan:
    """Where a loopback configuration binds and connects, and where it logs.

    ``listener_ports``/``member_ports``/``monitor_ports`` map lbsim names to ports on
    127.0.0.1 (a member's ``monitor_port``, when it has one, gets its own port).
    ``log_target`` is ``host:port`` of a UDP syslog receiver (RFC 5424 with microsecond
    timestamps); None logs to stdout/stderr. ``observe_checks`` adds
    ``option log-health-checks`` to the defaults: HAProxy then logs every change of a
    server's health counter (``status: 2/3 UP``), not only UP/DOWN. It only adds log lines.
    """

    listener_ports: Mapping[str, int]
    member_ports: Mapping[str, int]
    monitor_ports: Mapping[str, int] = field(default_factory=dict)
    stats_socket: str = "/tmp/lbsim-haproxy.sock"
    log_target: str | None = None
    observe_checks: bool = False
    max_global_maxconn: int = 4096


def loopback_plan(sc: m.Scenario, base_port: int = 20000, stats_socket: str | None = None) -> LoopbackPlan:
    """A deterministic plan: listener ``i`` on ``base_port + i``, member ``j`` (scenario
    order) on ``base_port + 100 + j``, its monitor port (if any) on ``base_port + 200 + j``."""
    lb = sc.loadbalancer
    members = [mem for p in lb.pools for mem in p.members]
    if len(lb.listeners) > 100 or len(members) > 100:
        raise ValueError("the default plan numbers up to 100 listeners and 100 members")
    if not 1 <= base_port <= 65535 - 300:
        raise ValueError(f"base port {base_port} leaves no room for 300 ports below 65536")
    return LoopbackPlan(
        listener_ports={li.name: base_port + i for i, li in enumerate(lb.listeners)},
        member_ports={mem.name: base_port + 100 + j for j, mem in enumerate(members)},
        monitor_ports={mem.name: base_port + 200 + j for j, mem in enumerate(members) if mem.monitor_port is not None},
        stats_socket=stats_socket or f"/tmp/lbsim-{sc.name}.sock",
    )


# --------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------


def render(
    scenario: m.Scenario,
    loopback: bool = False,
    *,
    plan: LoopbackPlan | None = None,
    ids: IdStyle = "uuid",
    vip_address: str = "203.0.113.10",
) -> str:
    """The text of the amphora's ``haproxy.cfg`` for the scenario's load balancer.

    ``loopback`` rewrites addresses and ports with ``plan`` (default
    :func:`loopback_plan`) so that the result runs on 127.0.0.1. ``ids`` chooses the
    names HAProxy sees (``uuid``: Octavia-like uuid5 ids, ``name``: lbsim names).
    ``vip_address`` is used when the load balancer has none (amphora mode only).
    """
    if loopback and plan is None:
        plan = loopback_plan(scenario)
    lb = scenario.loadbalancer
    lb_id = _oid(scenario, "loadbalancer", lb.name, ids)
    listeners = _haproxy_listeners(scenario)
    pools = scenario.pools_by_name()
    peers = f"{lb_id.replace('-', '')}_peers"
    active_standby = lb.topology == "ACTIVE_STANDBY" and not loopback

    out: list[str] = [f"# Configuration for loadbalancer {lb_id}", "global"]
    if loopback:
        assert plan is not None
        if plan.log_target:
            out += [
                f"    log {plan.log_target} len 4096 format rfc5424 local0",
                f"    log {plan.log_target} len 4096 format rfc5424 local1 notice",
            ]
        else:
            out += ["    log stdout format short local0", "    log stderr format short local1 notice"]
        out.append(f"    stats socket {plan.stats_socket} mode 600 level admin")
    else:
        out += [
            "    daemon",
            "    user nobody",
            f"    log {RSYSLOG_SOCKET} local0",
            f"    log {RSYSLOG_SOCKET} local1 notice",
            f"    stats socket {BASE_PATH}/{lb_id}.sock mode 0666 level user",
            f"    server-state-file {BASE_PATH}/{lb_id}/servers-state",
        ]
    maxconn = global_maxconn(scenario)
    if loopback and plan is not None and maxconn > plan.max_global_maxconn:
        out.append(f"    # Octavia renders maxconn {maxconn}; capped for this machine's file descriptors")
        maxconn = plan.max_global_maxconn
    out.append(f"    maxconn {maxconn}")
    if any(
        (hm := _hm_enabled(pools[li.default_pool])) is not None
        and hm.type == "PING"
        and pools[li.default_pool].admin_state_up
        for li in listeners
        if li.default_pool in pools
    ):
        out += ["    external-check", "    insecure-fork-wanted"]
    out += [
        "",
        "defaults",
        "    log global",
        "    retries 3",
        "    option redispatch",
        "    option splice-request",
        "    option splice-response",
        "    option http-keep-alive",
    ]
    if loopback and plan is not None and plan.observe_checks:
        out.append("    option log-health-checks")
    out.append("")
    if active_standby:
        amp_ids = [object_id(scenario.name, "amphora", role) for role in ("MASTER", "BACKUP")]
        out.append(f"peers {peers}")
        out += [
            f"    peer {_peer_name(aid)} {ip}:{PEER_PORT}"
            for aid, ip in zip(amp_ids, PLACEHOLDER_VRRP_IPS, strict=True)
        ]
        out.append("")

    vip = lb.vip_address or vip_address
    for li in listeners:
        pool = pools.get(li.default_pool) if li.default_pool else None
        if pool is not None and (not pool.admin_state_up or pool.protocol in LVS_PROTOCOLS):
            pool = None
        out += _frontend(scenario, li, pool, vip, loopback, plan, ids)
        if pool is not None:
            out += _backend(scenario, li, pool, loopback, plan, ids, active_standby, peers)
        for l7_pool in l7.listener_l7_pools(li, pools):  # redirect pools of L7 policies
            out += _backend(scenario, li, pools[l7_pool], loopback, plan, ids, active_standby, peers)
    return "\n".join(out).rstrip("\n") + "\n"


def _frontend(
    sc: m.Scenario,
    li: m.Listener,
    pool: m.Pool | None,
    vip: str,
    loopback: bool,
    plan: LoopbackPlan | None,
    ids: IdStyle,
) -> list[str]:
    """``frontend_macro``: limits, bind, mode, default backend, client timeouts."""
    out = [f"frontend {_oid(sc, 'listener', li.name, ids)}", f"    maxconn {_limit(li)}"]
    if li.protocol == "TERMINATED_HTTPS" and not loopback:
        out.append("    redirect scheme https if !{ ssl_fc }")
    if loopback:
        assert plan is not None
        out.append(f"    bind 127.0.0.1:{plan.listener_ports[li.name]}")
    elif li.protocol == "TERMINATED_HTTPS":
        lb_id = _oid(sc, "loadbalancer", sc.loadbalancer.name, ids)
        crt = f"{BASE_PATH}/certs/{lb_id}/{_oid(sc, 'listener', li.name, ids)}.pem"
        out.append(f"    bind {vip}:{li.protocol_port} ssl crt-list {crt}")
    else:
        out.append(f"    bind {vip}:{li.protocol_port}")
    out.append(f"    mode {PROTOCOL_MODE[li.protocol]}")
    if li.protocol == "PROMETHEUS":
        out.append("    http-request use-service prometheus-exporter if { path /metrics }")
    out += l7.frontend_lines(  # L7 policies, in position order (docs/l7.md)
        li, sc.pools_by_name(), lambda r: _oid(sc, "l7rule", r, ids), lambda p: backend_name(sc, p, li.name, ids)
    )
    if pool is not None:
        out.append(f"    default_backend {backend_name(sc, pool.name, li.name, ids)}")
    out.append(f"    timeout client {li.timeout_client_data}")
    if li.timeout_tcp_inspect:
        out.append(f"    tcp-request inspect-delay {li.timeout_tcp_inspect}")
    out.append("")
    return out


def _backend(
    sc: m.Scenario,
    li: m.Listener,
    pool: m.Pool,
    loopback: bool,
    plan: LoopbackPlan | None,
    ids: IdStyle,
    active_standby: bool,
    peers: str,
) -> list[str]:
    """``backend_macro``: mode, balance, persistence, monitor, timeouts, servers."""
    mode = PROTOCOL_MODE[li.protocol] if pool.protocol in ("PROXY", "PROXYV2") else PROTOCOL_MODE[pool.protocol]
    out = [f"backend {backend_name(sc, pool.name, li.name, ids)}", f"    mode {mode}"]
    if mode == "http":
        out.append("    http-reuse safe")
    out.append(f"    balance {BALANCE_MAP.get(pool.lb_algorithm, 'roundrobin')}")
    sp = pool.session_persistence
    peers_opt = f" peers {peers}" if active_standby else ""
    if sp is not None and sp.type == "SOURCE_IP":
        out += [f"    stick-table type ipv6 size {STICK_SIZE}{peers_opt}", "    stick on src"]
    elif sp is not None and sp.type == "APP_COOKIE":
        out += [
            f"    stick-table type string len 64 size {STICK_SIZE}{peers_opt}",
            f"    stick store-response res.cook({sp.cookie_name})",
            f"    stick match req.cook({sp.cookie_name})",
        ]
    elif sp is not None and sp.type == "HTTP_COOKIE":
        out.append("    cookie SRV insert indirect nocache")
    hm = _hm_enabled(pool)
    if hm is not None:
        out.append(f"    timeout check {hm.timeout}s")
        if hm.type in ("HTTP", "HTTPS"):
            version = f" HTTP/{hm.http_version}" if hm.http_version is not None else ""
            out.append(f"    option httpchk {hm.method} {hm.path}{version}")
            if hm.http_version == 1.1 and hm.domain_name:
                out.append(f"    http-check send hdr Host {hm.domain_name}")
            out.append(f"    http-check expect rstatus {_expected_codes(hm.codes)}")
        elif hm.type == "PING":
            command = "/bin/true" if loopback else f"{BASE_PATH}/ping-wrapper.sh"
            out += ["    option external-check", f"    external-check command {command}"]
        if not loopback:
            out.append("    load-server-state-from-file global")
    out += backend_header_lines(li.protocol, pool.protocol, li.insert_headers)
    out += [
        f"    fullconn {_limit(li)}",
        "    option allbackups",
        f"    timeout connect {li.timeout_member_connect}",
        f"    timeout server {li.timeout_member_data}",
    ]
    for mem in pool.members:
        out.append("    " + _server(sc, pool, mem, hm, loopback, plan, ids))
    out.append("")
    return out


def _server(
    sc: m.Scenario,
    pool: m.Pool,
    mem: m.Member,
    hm: m.HealthMonitor | None,
    loopback: bool,
    plan: LoopbackPlan | None,
    ids: IdStyle,
) -> str:
    """``member_macro``: one ``server`` line (§3.4)."""
    mid = _oid(sc, "member", mem.name, ids)
    if loopback:
        assert plan is not None
        addr, port = "127.0.0.1", plan.member_ports[mem.name]
    else:
        addr, port = mem.address, mem.protocol_port
    line = f"server {mid} {addr}:{port} weight {mem.weight}"
    if hm is not None:
        ssl = " check-ssl verify none" if hm.type == "HTTPS" else ""
        line += f" check{ssl} inter {hm.delay}s fall {hm.max_retries_down} rise {hm.max_retries}"
        if mem.monitor_address is not None:
            line += f" addr {'127.0.0.1' if loopback else mem.monitor_address}"
        if mem.monitor_port is not None:
            mport = plan.monitor_ports.get(mem.name, mem.monitor_port) if plan and loopback else mem.monitor_port
            line += f" port {mport}"
    if pool.session_persistence is not None and pool.session_persistence.type == "HTTP_COOKIE":
        line += f" cookie {mid}"
    if pool.protocol == "PROXY":
        line += " send-proxy"
    elif pool.protocol == "PROXYV2":
        line += " send-proxy-v2"
    if mem.backup:
        line += " backup"
    if not mem.admin_state_up:
        line += " disabled"
    return line
