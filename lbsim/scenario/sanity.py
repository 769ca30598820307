"""Rules a first-time user trips over: values that validate field by field but cannot run,
and combinations that run but rarely mean what the user thinks (warnings).

:func:`check_values` returns problems (the scenario is refused, exit 2):

* ``SOURCE_IP_PORT`` in the initial tree: Octavia's amphora provider answers 501 on
  create, so such a pool cannot exist at ``start: running`` (or ``fresh``);
* a gamma ``cv`` beyond what can be sampled; an empirical samples file without samples;
  a trace file with a bad row (its own line number is named);
* an MMPP whose rates are both 0, and stochastic failures whose ``mttf`` and ``mttr``
  are both always 0 (a cycle of length zero repeats for ever at one instant);
* an expectation naming a status Octavia (or HAProxy, for ``data_plane_state``) never
  shows, such as ``DEGARDED``.

:func:`scenario_warnings` returns warnings (printed by ``validate`` and ``run`` and kept
in ``summary.json``): a fault the member's monitor cannot see (a ``hang`` under a TCP or
TLS-HELLO monitor, which a hanging member still passes; see :data:`UNSEEN_FAULTS`), a
listener without a default pool, a monitor timeout above its delay, a weight-0 member
without a monitor, traffic to a disabled listener.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from lbsim.scenario import model as m
from lbsim.scenario.datafiles import DataFileError, read_samples, read_trace, resolve

PathT = tuple[str | int, ...]
Found = tuple[PathT, str]

#: gamma cv above this leaves a shape parameter (1/cv²) at which every draw is ~0
GAMMA_MAX_CV = 1e3
#: Octavia's statuses (octavia/common/constants.py: SUPPORTED_*_STATUSES)
OPERATING_STATUSES = ("ONLINE", "OFFLINE", "DEGRADED", "ERROR", "DRAINING", "NO_MONITOR")
PROVISIONING_STATUSES = ("ACTIVE", "PENDING_CREATE", "PENDING_UPDATE", "PENDING_DELETE", "DELETED", "ERROR")
#: HAProxy's server status strings as lbsim records them (transitional forms included)
DATA_PLANE_STATE = re.compile(r"(UP|DOWN)( [0-9]+/[0-9]+)?|DRAIN|MAINT|no check")
#: monitors that only open a connection (or a TLS handshake): a member that accepts and
#: then never answers looks healthy to them (haproxy-semantics.md, measured on 2.6)
CONNECT_ONLY_MONITORS = frozenset({"TCP", "TLS-HELLO"})
#: member faults each monitor type cannot see (the check still passes), as
#: :func:`lbsim.haproxy.healthcheck.check_outcome` decides them; ``slow`` is left out: an
#: HTTP check sees it only when the answer takes longer than the check may
UNSEEN_FAULTS: dict[str, frozenset[str]] = {
    "HTTP": frozenset(),
    "HTTPS": frozenset(),
    "TCP": frozenset({"hang", "error"}),
    "TLS-HELLO": frozenset({"hang", "error"}),
    "UDP-CONNECT": frozenset({"hang", "error"}),
    "SCTP": frozenset({"hang", "error"}),
    "PING": frozenset({"refuse", "hang", "error"}),
}
_SEEN_AS = {
    "hang": "accepts connections and never answers",
    "error": "answers with an error status",
    "refuse": "refuses connections",
}

_DIST: TypeAdapter[Any] = TypeAdapter(m.Distribution)


#: what may hold a distribution; anything else (numbers, strings, ...) is a leaf
_BRANCHES = (BaseModel, dict, list, tuple)


def _distributions(obj: Any, path: PathT) -> Iterator[tuple[PathT, Any]]:
    """Every distribution in the scenario, with its field path (API bodies included).

    Leaves are skipped before recursing (a 10,000-member scenario has some 200,000),
    so the walk costs a call per model, mapping or list only.
    """
    if isinstance(obj, BaseModel):
        fields = type(obj).model_fields
        if "dist" in fields:
            yield path, obj
            return
        for name in fields:
            value = getattr(obj, name)
            if isinstance(value, _BRANCHES):
                yield from _distributions(value, (*path, name))
    elif isinstance(obj, dict):
        if "dist" in obj:
            try:
                dist = _DIST.validate_python(obj)
            except ValidationError:
                return  # reported by the schema checks of the API body
            yield path, dist
            return
        for key, value in obj.items():
            if isinstance(value, _BRANCHES):
                yield from _distributions(value, (*path, str(key)))
    elif isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            if isinstance(value, _BRANCHES):
                yield from _distributions(value, (*path, i))


def dist_mean(dist: Any, base_dir: Path | None) -> float | None:
    """The mean of a distribution (None when a samples file cannot be read)."""
    if isinstance(dist, m.Constant):
        return float(dist.value)
    if isinstance(dist, m.Uniform):
        return (float(dist.low) + float(dist.high)) / 2.0
    if isinstance(dist, m.Empirical):
        if dist.samples is not None:
            return sum(dist.samples) / len(dist.samples)
        try:
            values = read_samples(resolve(str(dist.file), base_dir))
        except DataFileError:
            return None
        return sum(values) / len(values)
    return float(dist.mean)


def check_values(sc: m.Scenario, base_dir: Path | None = None) -> list[Found]:
    """Values that pass the schema but cannot be simulated (see the module docstring)."""
    return list(_values(sc, base_dir))


def trees(sc: m.Scenario) -> list[tuple[PathT, m.LoadBalancer]]:
    """Every load-balancer tree at the start, with its field path (``loadbalancers[k]`` or
    ``loadbalancer``)."""
    if sc.loadbalancers is not None:
        return [(("loadbalancers", k), lb) for k, lb in enumerate(sc.loadbalancers)]
    return [(("loadbalancer",), sc.loadbalancer)]


def _pools(sc: m.Scenario) -> Iterator[tuple[PathT, m.Pool]]:
    for prefix, lb in trees(sc):
        for i, p in enumerate(lb.pools):
            yield (*prefix, "pools", i), p


def _listeners(sc: m.Scenario) -> Iterator[tuple[PathT, m.Listener]]:
    for prefix, lb in trees(sc):
        for i, li in enumerate(lb.listeners):
            yield (*prefix, "listeners", i), li


def _values(sc: m.Scenario, base_dir: Path | None) -> Iterator[Found]:
    if sc.start != "provision":  # the tree exists at t=0 (running, fresh)
        for here, p in _pools(sc):
            if p.lb_algorithm == "SOURCE_IP_PORT":
                yield (
                    (*here, "lb_algorithm"),
                    "Octavia's amphora provider refuses SOURCE_IP_PORT (HTTP 501 'Provider does not "
                    "support a requested option'), so this pool cannot exist; use SOURCE_IP, "
                    "ROUND_ROBIN or LEAST_CONNECTIONS (or start: provision to see the 501)",
                )
    for path, dist in _distributions(sc, ()):
        if isinstance(dist, m.Gamma) and dist.cv > GAMMA_MAX_CV:
            yield (*path, "cv"), f"expected a gamma cv of at most {GAMMA_MAX_CV:g}, got {dist.cv:g}"
        if isinstance(dist, m.Empirical) and dist.file is not None:
            sample_file = resolve(dist.file, base_dir)
            if sample_file.is_file():
                try:
                    read_samples(sample_file)
                except DataFileError as exc:
                    yield (*path, "file"), str(exc)
    for i, tr in enumerate(sc.traffic):
        arr = tr.arrival
        if isinstance(arr, m.Mmpp) and not any(r > 0 for r in arr.rates):
            yield ("traffic", i, "arrival", "rates"), "both MMPP rates are 0: no request would ever arrive"
        if isinstance(arr, m.Trace):
            trace_file = resolve(arr.file, base_dir)
            if trace_file.is_file():
                try:
                    read_trace(trace_file)
                except DataFileError as exc:
                    yield ("traffic", i, "arrival", "file"), str(exc)
    for i, fl in enumerate(sc.failures):
        up, down = dist_mean(fl.mttf, base_dir), dist_mean(fl.mttr, base_dir)
        if up == 0 and down == 0:
            yield (
                ("failures", i, "mttf"),
                "mttf and mttr are both always 0: a member would fail and recover for ever at one instant",
            )
    for i, ex in enumerate(sc.expect):
        yield from _expectation_values(ex, ("expect", i))


def _allowed(fld: str, value: str) -> str | None:
    """Why ``value`` is not a status of ``fld`` (None when it is one)."""
    if fld == "data_plane_state":
        if DATA_PLANE_STATE.fullmatch(value):
            return None
        return f"expected a HAProxy state (UP, UP 1/3, DOWN, DOWN 2/3, DRAIN, MAINT, no check), got {value!r}"
    known = OPERATING_STATUSES if fld == "operating_status" else PROVISIONING_STATUSES
    if value in known:
        return None
    close = difflib.get_close_matches(value, known, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"expected one of {', '.join(known)}, got {value!r}{hint}"


def _expectation_values(ex: m.Expectation, here: PathT) -> Iterator[Found]:
    if ex.transition is not None:
        fld = ex.status_field
        for j, value in enumerate(ex.transition):
            if value == "":  # "did not exist", as transitions.csv writes it
                continue
            why = _allowed(fld, value)
            if why is not None:
                yield (*here, "transition", j), why
        return
    fld = ex.status_field
    why = _allowed(fld, str(getattr(ex, fld)))
    if why is not None:
        yield (*here, fld), why


# ----------------------------------------------------------------------------- warnings


def scenario_warnings(sc: m.Scenario) -> list[Found]:
    """Things that run but rarely mean what the user thinks (see the module docstring)."""
    return list(_warnings(sc))


def _monitor_of_member(sc: m.Scenario) -> dict[str, tuple[int, m.HealthMonitor | None]]:
    """Each initial member's pool index and the pool's health monitor."""
    return {mem.name: (i, p.healthmonitor) for i, (_, p) in enumerate(_pools(sc)) for mem in p.members}


def _warnings(sc: m.Scenario) -> Iterator[Found]:
    all_pools = [p for _, p in _pools(sc)]
    monitor_of = _monitor_of_member(sc)
    for i, ev in enumerate(sc.events):
        if not isinstance(ev, m.MemberEvent) or ev.port == "monitor":
            continue
        fault = ev.fault if ev.behaviour in ("flap", "partial") else ev.behaviour
        hm = monitor_of.get(ev.member, (0, None))[1]
        if hm is not None and fault in UNSEEN_FAULTS.get(hm.type, ()):
            yield (
                ("events", i, "behaviour"),
                f"member '{ev.member}' {_SEEN_AS[fault]}, but its pool's {hm.type} monitor cannot see that "
                "(its checks still pass): HAProxy keeps it UP, the API keeps it ONLINE, and requests sent "
                f"to it fail ({'504' if fault == 'hang' else 'the error'}); "
                "an HTTP monitor detects hangs and errors",
            )
    for i, fl in enumerate(sc.failures):
        pools = [p for p in all_pools if p.name == fl.pool or any(mem.name in (fl.members or []) for mem in p.members)]
        blind = sorted(
            {
                p.healthmonitor.type
                for p in pools
                if p.healthmonitor is not None and fl.fault in UNSEEN_FAULTS.get(p.healthmonitor.type, ())
            }
        )
        if blind:
            yield (
                ("failures", i, "fault"),
                f"'{fl.fault}' failures are invisible to the {' and '.join(blind)} monitor: the members stay "
                "ONLINE while their requests fail",
            )
    given_pool = {
        ev.listener
        for ev in sc.events
        if isinstance(ev, m.ApiEvent) and ev.api == "create" and ev.target[0] == "pool" and ev.listener
    } | {
        ev.target[1]
        for ev in sc.events
        if isinstance(ev, m.ApiEvent) and ev.target[0] == "listener" and ev.set.get("default_pool")
    }
    for here, li in _listeners(sc):
        if li.default_pool is None and li.name not in given_pool:
            yield (
                (*here, "default_pool"),
                f"listener '{li.name}' has no default pool: HAProxy answers every request to it with 503",
            )
    for here, p in _pools(sc):
        hm = p.healthmonitor
        if hm is not None and hm.timeout > hm.delay:
            yield (
                (*here, "healthmonitor", "timeout"),
                f"timeout {hm.timeout} s is longer than delay {hm.delay} s: Octavia accepts it, but a check "
                "can then take longer than the interval between checks",
            )
        if hm is None:
            for j, mem in enumerate(p.members):
                if mem.weight == 0:
                    yield (
                        (*here, "members", j, "weight"),
                        f"member '{mem.name}' has weight 0 and its pool has no monitor: it gets no new "
                        "requests, and the API shows NO_MONITOR whatever it does",
                    )
    disabled = {li.name for _, li in _listeners(sc) if not li.admin_state_up}
    for i, tr in enumerate(sc.traffic):
        if tr.listener in disabled:
            yield (
                ("traffic", i, "listener"),
                f"listener '{tr.listener}' is disabled (admin_state_up: false): its traffic is refused",
            )
    for i, ev in enumerate(sc.events):
        if isinstance(ev, m.ApiEvent) and ev.target[0] == "pool" and ev.set.get("lb_algorithm") == "SOURCE_IP_PORT":
            yield (
                ("events", i, "set", "lb_algorithm"),
                "Octavia's amphora provider refuses SOURCE_IP_PORT: this call will be answered 501",
            )
    if sc.start == "provision":
        for here, p in _pools(sc):
            if p.lb_algorithm == "SOURCE_IP_PORT":
                yield (
                    (*here, "lb_algorithm"),
                    "Octavia's amphora provider refuses SOURCE_IP_PORT: creating this pool will be answered 501",
                )
