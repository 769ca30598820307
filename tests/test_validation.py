"""Scenario loading: every Octavia rule and lbsim rule, good and bad, with where and why.

Each bad case checks the four things a user needs to fix a file without a traceback: a
:class:`ScenarioError` is raised, one of its problems has the right field path, that
problem names the right line of the file, and its message says what was expected.
Expected lines are found by searching the YAML text the test wrote (never by asking the
loader), and the allowed protocol/monitor combinations are copied from
octavia-semantics.md §4 (never imported from :mod:`lbsim.scenario.model`), so a wrong table or a
wrong line in lbsim fails here.

The last test is a property: random mutations of a valid scenario either load and run, or
fail with a clean :class:`ScenarioError` -- never any other exception.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from conftest import find_line, make_scenario, scenario_yaml
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from lbsim.api import run_scenario
from lbsim.scenario import model as m
from lbsim.scenario.loader import Problem, ScenarioError, load_scenario, parse_scenario

FILE = "case.yaml"
L0 = "loadbalancer.listeners[0]"
P0 = "loadbalancer.pools[0]"
HM = P0 + ".healthmonitor"
M0 = P0 + ".members[0]"

Mutator = Callable[[dict[str, Any]], Any]


# -- helpers -------------------------------------------------------------------------------


def lb(d: dict[str, Any]) -> dict[str, Any]:
    return d["loadbalancer"]


def lst(d: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return d["loadbalancer"]["listeners"][i]


def pool(d: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return d["loadbalancer"]["pools"][i]


def hm(d: dict[str, Any]) -> dict[str, Any]:
    return pool(d)["healthmonitor"]


def mem(d: dict[str, Any], i: int = 0) -> dict[str, Any]:
    return pool(d)["members"][i]


def problems_of(text: str) -> list[Problem]:
    """The problems parsing ``text`` reports (the test fails if it parses)."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario(text, file=FILE)
    problems = info.value.problems
    assert problems, "a ScenarioError must carry at least one problem"
    # the exception text is the problems, one per line, so a CLI can print it as it is
    assert str(info.value) == "\n".join(str(p) for p in problems)
    return problems


def assert_problem(text: str, path: str, line: int | None, *fragments: str) -> Problem:
    """Parsing ``text`` fails with a problem at ``path`` on ``line`` saying ``fragments``."""
    problems = problems_of(text)
    at_path = [p for p in problems if p.path == path]
    assert at_path, f"no problem at {path!r}; got:\n" + "\n".join(map(str, problems))
    p = at_path[0]
    assert p.file == FILE
    assert p.line == line, f"{p} should be on line {line}"
    for fragment in fragments:
        assert fragment in p.message, f"{fragment!r} not in {p.message!r}"
    return p


def assert_loads(d: Any) -> m.Scenario:
    """The scenario dict is valid (prints the problems if not)."""
    try:
        return parse_scenario(scenario_yaml(d), file=FILE)
    except ScenarioError as err:  # pragma: no cover - the message is the diagnosis
        pytest.fail(f"expected a valid scenario, got:\n{err}")


def _yaml_scalar(value: Any) -> str:
    """How :func:`scenario_yaml` spells one scalar."""
    return scenario_yaml({"k": value}).split(": ", 1)[1].strip()


def mutated(fn: Mutator) -> dict[str, Any]:
    d = make_scenario()
    fn(d)
    return d


# -- the base scenario ---------------------------------------------------------------------


def test_base_scenario_is_valid_and_problem_renders_file_line_path() -> None:
    sc = assert_loads(make_scenario())
    assert sc.loadbalancer.pools[0].members[1].name == "web-2"
    p = Problem("f.yaml", 12, "a.b[0]", "expected x")
    assert str(p) == "f.yaml:12: a.b[0]: expected x"
    assert str(Problem("f.yaml", None, "", "bad")) == "f.yaml: <top>: bad"


# -- value ranges (octavia-semantics.md §4) ------------------------------------------------

GE = "greater than or equal to"
LE = "less than or equal to"
INT = "valid integer"
MAXT = 2_073_600_000

RANGES: list[tuple[Callable[[dict[str, Any]], dict[str, Any]], str, str, list[tuple[Any, str]], list[Any]]] = [
    (mem, "weight", M0, [(-1, f"{GE} 0"), (257, f"{LE} 256"), ("heavy", INT)], [0, 256]),
    (mem, "protocol_port", M0, [(0, f"{GE} 1"), (65536, f"{LE} 65535")], [1, 65535]),
    (lst, "protocol_port", L0, [(0, f"{GE} 1"), (65536, f"{LE} 65535")], [1, 65535]),
    (hm, "max_retries", HM, [(0, f"{GE} 1"), (11, f"{LE} 10")], [1, 10]),
    (hm, "max_retries_down", HM, [(0, f"{GE} 1"), (11, f"{LE} 10")], [1, 10]),
    (hm, "delay", HM, [(-1, f"{GE} 0"), (1.5, INT), ("often", INT)], [1, 3600]),
    (hm, "timeout", HM, [(-1, f"{GE} 0"), (2.5, INT), ("soon", INT)], [0, 1, 3600]),
    (lst, "connection_limit", L0, [(-2, f"{GE} -1"), (1.5, INT)], [-1, 0, 100000]),
    *[
        (lst, t, L0, [(-1, f"{GE} 0"), (MAXT + 1, f"{LE} {MAXT}"), (0.5, INT)], [0, MAXT])
        for t in (
            "timeout_client_data",
            "timeout_member_connect",
            "timeout_member_data",
            "timeout_tcp_inspect",
        )
    ],
]


def _range_cases(bad: bool) -> list[Any]:
    cases = []
    for target, field, path, bads, goods in RANGES:
        for value, fragment in bads if bad else [(g, "") for g in goods]:
            cases.append(pytest.param(target, field, path, value, fragment, id=f"{path}.{field}={value}"))
    return cases


@pytest.mark.parametrize(("target", "field", "path", "value", "fragment"), _range_cases(True))
def test_out_of_range_or_wrong_type_is_refused(
    target: Callable[[dict[str, Any]], dict[str, Any]], field: str, path: str, value: Any, fragment: str
) -> None:
    d = make_scenario()
    target(d)[field] = value
    text = scenario_yaml(d)
    line = find_line(text, f"{field}: {_yaml_scalar(value)}", exact=True)
    assert_problem(text, f"{path}.{field}", line, fragment, repr(value))


@pytest.mark.parametrize(("target", "field", "path", "value", "fragment"), _range_cases(False))
def test_range_boundaries_are_accepted(
    target: Callable[[dict[str, Any]], dict[str, Any]], field: str, path: str, value: Any, fragment: str
) -> None:
    d = make_scenario()
    target(d)[field] = value
    sc = assert_loads(d)
    # the value really reached the model (not replaced by a default)
    obj: Any = {
        M0: sc.loadbalancer.pools[0].members[0],
        L0: sc.loadbalancer.listeners[0],
        HM: sc.loadbalancer.pools[0].healthmonitor,
    }[path]
    assert getattr(obj, field) == value


def test_monitor_delay_zero_is_refused_by_lbsim() -> None:
    """Octavia allows delay 0; lbsim refuses it (a check loop with no pause)."""
    d = mutated(lambda d: hm(d).update(delay=0))
    text = scenario_yaml(d)
    assert_problem(text, f"{HM}.delay", find_line(text, "delay: 0", exact=True), "delay >= 1")


# -- protocol combinations ------------------------------------------------------------------

#: octavia-semantics.md §4.3, VALID_LISTENER_POOL_PROTOCOL_MAP
LISTENER_POOL = {
    "TCP": {"HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"},
    "HTTP": {"HTTP", "PROXY", "PROXYV2"},
    "HTTPS": {"HTTPS", "PROXY", "PROXYV2", "TCP"},
    "TERMINATED_HTTPS": {"HTTP", "PROXY", "PROXYV2"},
    "UDP": {"UDP"},
    "SCTP": {"SCTP"},
    "PROMETHEUS": set(),
}
POOL_PROTOCOLS = ["TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2", "UDP", "SCTP"]
#: octavia-semantics.md §4.1, _validate_healthmonitor_request_for_udp_sctp
_L4_HM = {"UDP-CONNECT", "SCTP", "TCP", "HTTP"}
_L7_HM = {"HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO"}
POOL_HM = {p: (_L4_HM if p in ("UDP", "SCTP") else _L7_HM) for p in POOL_PROTOCOLS}
HM_TYPES = ["HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP"]


@pytest.mark.parametrize("pool_proto", POOL_PROTOCOLS)
@pytest.mark.parametrize("listener_proto", list(LISTENER_POOL))
def test_listener_to_pool_protocol_map(listener_proto: str, pool_proto: str) -> None:
    d = make_scenario()
    lst(d)["protocol"] = listener_proto
    if listener_proto == "TERMINATED_HTTPS":
        lst(d)["default_tls_container_ref"] = "https://barbican.example/v1/containers/1"
    pool(d)["protocol"] = pool_proto
    del pool(d)["healthmonitor"]
    if pool_proto in LISTENER_POOL[listener_proto]:
        assert_loads(d)
        return
    text = scenario_yaml(d)
    p = assert_problem(
        text,
        f"{L0}.default_pool",
        find_line(text, "default_pool: web", exact=True),
        f"{listener_proto} listener cannot use {pool_proto} pool",
    )
    allowed_part = p.message.split("allowed pool protocols:")[1]
    for proto in LISTENER_POOL[listener_proto] or {"none"}:
        assert proto in allowed_part


@pytest.mark.parametrize("hm_type", HM_TYPES)
@pytest.mark.parametrize("pool_proto", POOL_PROTOCOLS)
def test_pool_protocol_to_monitor_types(pool_proto: str, hm_type: str) -> None:
    d = make_scenario()
    lst(d)["protocol"] = pool_proto if pool_proto in ("UDP", "SCTP") else "TCP"
    pool(d)["protocol"] = pool_proto
    pool(d)["healthmonitor"] = {"type": hm_type, "delay": 5, "timeout": 2, "max_retries": 2}
    if hm_type in POOL_HM[pool_proto]:
        assert_loads(d)
        return
    text = scenario_yaml(d)
    assert_problem(
        text,
        f"{HM}.type",
        find_line(text, f"type: {hm_type}", exact=True),
        f"{pool_proto} pool accepts monitor types",
        f"not {hm_type}",
    )


def _udp_connect(delay: int) -> dict[str, Any]:
    d = make_scenario()
    lst(d)["protocol"] = "UDP"
    pool(d)["protocol"] = "UDP"
    pool(d)["healthmonitor"] = {"type": "UDP-CONNECT", "delay": delay, "timeout": 2, "max_retries": 2}
    return d


def test_udp_connect_monitor_needs_delay_of_three() -> None:
    assert_loads(_udp_connect(3))
    text = scenario_yaml(_udp_connect(2))
    assert_problem(text, f"{HM}.delay", find_line(text, "delay: 2", exact=True), "delay >= 3")


def test_terminated_https_needs_a_certificate() -> None:
    d = mutated(lambda d: lst(d).update(protocol="TERMINATED_HTTPS"))
    text = scenario_yaml(d)
    # the missing field has no line of its own: the listener's line is the place to fix
    assert_problem(
        text,
        f"{L0}.default_tls_container_ref",
        find_line(text, "name: http", exact=True),
        "certificate",
    )


def test_unknown_protocol_and_algorithm_list_the_allowed_values() -> None:
    text = scenario_yaml(mutated(lambda d: lst(d).update(protocol="FTP")))
    assert_problem(text, f"{L0}.protocol", find_line(text, "protocol: FTP", exact=True), "TERMINATED_HTTPS", "'FTP'")
    text = scenario_yaml(mutated(lambda d: pool(d).update(lb_algorithm="RANDOM")))
    assert_problem(
        text,
        f"{P0}.lb_algorithm",
        find_line(text, "lb_algorithm: RANDOM", exact=True),
        "ROUND_ROBIN",
        "LEAST_CONNECTIONS",
        "SOURCE_IP",
    )


# -- health monitor options ------------------------------------------------------------------

HTTP_ONLY = [
    ("http_method", "HEAD"),
    ("url_path", "/ready"),
    ("expected_codes", "204"),
    ("http_version", 1.1),
    ("domain_name", "example.com"),
]


@pytest.mark.parametrize("hm_type", ["TCP", "PING", "TLS-HELLO"])
@pytest.mark.parametrize(("option", "value"), HTTP_ONLY)
def test_http_only_options_on_other_monitors_are_refused(hm_type: str, option: str, value: Any) -> None:
    d = make_scenario()
    hm(d).update(type=hm_type)
    del hm(d)["url_path"]
    hm(d)[option] = value
    text = scenario_yaml(d)
    assert_problem(
        text,
        f"{HM}.{option}",
        find_line(text, f" {option}: "),
        "only valid for HTTP and HTTPS monitors",
        hm_type,
    )


@pytest.mark.parametrize("hm_type", ["HTTP", "HTTPS"])
def test_http_options_are_accepted_on_http_monitors(hm_type: str) -> None:
    d = make_scenario()
    hm(d).update(dict(HTTP_ONLY), type=hm_type)
    if hm_type == "HTTPS":
        pool(d)["protocol"] = "HTTPS"
        lst(d)["protocol"] = "HTTPS"
    sc = assert_loads(d)
    mon = sc.loadbalancer.pools[0].healthmonitor
    assert mon is not None
    assert (mon.method, mon.path, mon.codes, mon.domain_name) == ("HEAD", "/ready", "204", "example.com")


@pytest.mark.parametrize("codes", ["200", "200,202", "200, 202, 204", "200-204", 200])
def test_expected_codes_good(codes: Any) -> None:
    sc = assert_loads(mutated(lambda d: hm(d).update(expected_codes=codes)))
    mon = sc.loadbalancer.pools[0].healthmonitor
    assert mon is not None and mon.codes == str(codes)


@pytest.mark.parametrize("codes", ["200-204,300", "200,201-204", "20", "2000", "abc", "200-", "200;201", ""])
def test_expected_codes_bad(codes: str) -> None:
    text = scenario_yaml(mutated(lambda d: hm(d).update(expected_codes=codes)))
    assert_problem(text, f"{HM}.expected_codes", find_line(text, " expected_codes:"), "3-digit codes", "range")


def test_http_method_must_be_one_of_octavias() -> None:
    text = scenario_yaml(mutated(lambda d: hm(d).update(http_method="FETCH")))
    assert_problem(text, f"{HM}.http_method", find_line(text, "http_method: FETCH", exact=True), "'GET'", "'PATCH'")


@pytest.mark.parametrize("version", [None, 1.0])
def test_domain_name_needs_http_version_1_1(version: float | None) -> None:
    def fn(d: dict[str, Any]) -> None:
        hm(d)["domain_name"] = "example.com"
        if version is not None:
            hm(d)["http_version"] = version

    text = scenario_yaml(mutated(fn))
    assert_problem(
        text, f"{HM}.domain_name", find_line(text, "domain_name: example.com", exact=True), "http_version 1.1"
    )

    def with_11(d: dict[str, Any]) -> None:
        fn(d)
        hm(d)["http_version"] = 1.1

    assert_loads(mutated(with_11))


def test_http_version_must_be_1_0_or_1_1() -> None:
    text = scenario_yaml(mutated(lambda d: hm(d).update(http_version=2.0)))
    assert_problem(text, f"{HM}.http_version", find_line(text, " http_version:"), "1.0", "1.1")


# -- session persistence -------------------------------------------------------------------


@pytest.mark.parametrize(
    "persistence",
    [
        {"type": "SOURCE_IP"},
        {"type": "HTTP_COOKIE"},
        {"type": "APP_COOKIE", "cookie_name": "JSESSIONID"},
    ],
)
def test_persistence_good_on_http_pool(persistence: dict[str, Any]) -> None:
    sc = assert_loads(mutated(lambda d: pool(d).update(session_persistence=persistence)))
    sp = sc.loadbalancer.pools[0].session_persistence
    assert sp is not None and sp.type == persistence["type"]


def test_app_cookie_requires_cookie_name() -> None:
    text = scenario_yaml(mutated(lambda d: pool(d).update(session_persistence={"type": "APP_COOKIE"})))
    assert_problem(
        text,
        f"{P0}.session_persistence",
        find_line(text, "session_persistence:", exact=True),
        "APP_COOKIE persistence requires cookie_name",
    )


def test_cookie_name_only_with_app_cookie() -> None:
    sp = {"type": "HTTP_COOKIE", "cookie_name": "sid"}
    text = scenario_yaml(mutated(lambda d: pool(d).update(session_persistence=sp)))
    assert_problem(
        text,
        f"{P0}.session_persistence.cookie_name",
        find_line(text, "cookie_name: sid", exact=True),
        "only valid with APP_COOKIE",
    )


def _udp_pool(persistence: dict[str, Any]) -> Mutator:
    """A mutation making the pool UDP (listener and monitor too) with ``persistence``."""

    def fn(d: dict[str, Any]) -> None:
        lst(d)["protocol"] = "UDP"
        pool(d)["protocol"] = "UDP"
        pool(d)["healthmonitor"] = {"type": "UDP-CONNECT", "delay": 5, "timeout": 2, "max_retries": 2}
        pool(d)["session_persistence"] = persistence

    return fn


@pytest.mark.parametrize("persistence", [{"type": "HTTP_COOKIE"}, {"type": "APP_COOKIE", "cookie_name": "sid"}])
def test_udp_pools_accept_only_source_ip_persistence(persistence: dict[str, Any]) -> None:
    text = scenario_yaml(mutated(_udp_pool(persistence)))
    assert_problem(
        text,
        f"{P0}.session_persistence.type",
        find_line(text, f"type: {persistence['type']}", exact=True),
        "only SOURCE_IP",
    )
    good = {"type": "SOURCE_IP", "persistence_timeout": 60, "persistence_granularity": "255.255.255.0"}
    assert_loads(mutated(_udp_pool(good)))


@pytest.mark.parametrize(
    ("option", "value"), [("persistence_timeout", 60), ("persistence_granularity", "255.255.255.0")]
)
def test_udp_only_persistence_options_on_http_pool(option: str, value: Any) -> None:
    sp = {"type": "SOURCE_IP", option: value}
    text = scenario_yaml(mutated(lambda d: pool(d).update(session_persistence=sp)))
    assert_problem(
        text,
        f"{P0}.session_persistence.{option}",
        find_line(text, f" {option}: "),
        "only valid for UDP and SCTP pools",
    )


def test_udp_persistence_options_follow_octavia() -> None:
    """Octavia's wording on a TCP/HTTP pool, its truth test (0 passes), and an IP-typed granularity."""
    sp = {"type": "SOURCE_IP", "persistence_timeout": 30}
    text = scenario_yaml(mutated(lambda d: pool(d).update(session_persistence=sp)))
    assert_problem(
        text,
        f"{P0}.session_persistence.persistence_timeout",
        find_line(text, " persistence_timeout: "),
        "persistence_timeout and persistence_granularity is only for UDP and SCTP protocol pools.",
    )
    zero = {"type": "SOURCE_IP", "persistence_timeout": 0}
    assert_loads(mutated(lambda d: pool(d).update(session_persistence=zero)))
    text = scenario_yaml(mutated(_udp_pool({"type": "SOURCE_IP", "persistence_granularity": "slash24"})))
    assert_problem(
        text,
        f"{P0}.session_persistence.persistence_granularity",
        find_line(text, " persistence_granularity: "),
        "must be an IP address netmask",
        "'slash24'",
    )
    text = scenario_yaml(mutated(_udp_pool({"type": "SOURCE_IP", "persistence_timeout": -1})))
    assert_problem(text, f"{P0}.session_persistence.persistence_timeout", find_line(text, " persistence_timeout: "))
    sc = assert_loads(mutated(_udp_pool({"type": "SOURCE_IP", "persistence_granularity": "255.255.255.0"})))
    got = sc.loadbalancer.pools[0].session_persistence
    assert got is not None and got.persistence_granularity == "255.255.255.0" and got.persistence_timeout is None


# -- unique names, ports and addresses -----------------------------------------------------


def test_duplicate_listener_name() -> None:
    extra = {"name": "http", "protocol": "TCP", "protocol_port": 81}
    text = scenario_yaml(mutated(lambda d: lb(d)["listeners"].append(extra)))
    assert_problem(
        text,
        "loadbalancer.listeners[1].name",
        find_line(text, "name: http", nth=2, exact=True),
        "duplicate listener name 'http'",
        "loadbalancer.listeners[0].name",
    )


def test_duplicate_pool_name() -> None:
    spare = {"name": "spare", "protocol": "HTTP", "lb_algorithm": "ROUND_ROBIN"}
    text = scenario_yaml(mutated(lambda d: lb(d)["pools"].extend([spare, dict(spare)])))
    assert_problem(
        text,
        "loadbalancer.pools[2].name",
        find_line(text, "name: spare", nth=2, exact=True),
        "duplicate pool name 'spare'",
    )


def test_duplicate_member_name_across_pools() -> None:
    other = {
        "name": "spare",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [{"name": "web-1", "address": "10.0.1.1", "protocol_port": 80}],
    }
    text = scenario_yaml(mutated(lambda d: lb(d)["pools"].append(other)))
    assert_problem(
        text,
        "loadbalancer.pools[1].members[0].name",
        find_line(text, "name: web-1", nth=2, exact=True),
        "duplicate member name 'web-1'",
    )


def test_duplicate_health_monitor_name() -> None:
    other = {
        "name": "spare",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "healthmonitor": {"name": "check", "type": "TCP", "delay": 2, "timeout": 1, "max_retries": 1},
    }

    def fn(d: dict[str, Any]) -> None:
        hm(d)["name"] = "check"
        lb(d)["pools"].append(other)

    text = scenario_yaml(mutated(fn))
    assert_problem(
        text,
        "loadbalancer.pools[1].healthmonitor.name",
        find_line(text, "name: check", nth=2, exact=True),
        "duplicate health monitor name 'check'",
    )


@pytest.mark.parametrize(
    ("protocol", "clash"),
    [("TCP", True), ("TERMINATED_HTTPS", True), ("HTTPS", True), ("UDP", False), ("SCTP", False)],
)
def test_listener_ports_are_unique_per_l4_protocol(protocol: str, clash: bool) -> None:
    """HTTP:80 takes TCP port 80; UDP:80 and SCTP:80 are other L4 protocols."""
    extra: dict[str, Any] = {"name": "second", "protocol": protocol, "protocol_port": 80}
    if protocol == "TERMINATED_HTTPS":
        extra["default_tls_container_ref"] = "ref"
    d = mutated(lambda d: lb(d)["listeners"].append(extra))
    if not clash:
        assert_loads(d)
        return
    text = scenario_yaml(d)
    assert_problem(
        text,
        "loadbalancer.listeners[1].protocol_port",
        find_line(text, "protocol_port: 80", nth=2, exact=True),
        "port 80/TCP is already used by listener 'http'",
    )


def test_member_address_and_port_unique_within_a_pool() -> None:
    text = scenario_yaml(mutated(lambda d: mem(d, 1).update(address="10.0.0.11")))
    assert_problem(
        text,
        f"{P0}.members[1].protocol_port",
        find_line(text, "protocol_port: 8080", nth=2, exact=True),
        "10.0.0.11:8080 is already member 'web-1'",
    )
    # same address on another port, and the same address:port in another pool, are fine
    assert_loads(mutated(lambda d: mem(d, 1).update(address="10.0.0.11", protocol_port=8081)))
    other = {
        "name": "spare",
        "protocol": "HTTP",
        "lb_algorithm": "ROUND_ROBIN",
        "members": [{"name": "spare-1", "address": "10.0.0.11", "protocol_port": 8080}],
    }
    assert_loads(mutated(lambda d: lb(d)["pools"].append(other)))


# -- references -----------------------------------------------------------------------------


def test_listener_default_pool_must_exist() -> None:
    text = scenario_yaml(mutated(lambda d: lst(d).update(default_pool="webb")))
    assert_problem(
        text,
        f"{L0}.default_pool",
        find_line(text, "default_pool: webb", exact=True),
        "no pool named 'webb'",
        "did you mean 'web'?",
    )


def test_traffic_listener_must_exist() -> None:
    text = scenario_yaml(mutated(lambda d: d["traffic"][0].update(listener="htp")))
    assert_problem(
        text,
        "traffic[0].listener",
        find_line(text, "listener: htp", exact=True),
        "no listener named 'htp'",
        "did you mean 'http'?",
    )


def test_member_event_must_name_an_existing_member() -> None:
    text = scenario_yaml(mutated(lambda d: d["events"][0].update(member="web-3")))
    assert_problem(text, "events[0].member", find_line(text, "member: web-3", exact=True), "no member named 'web-3'")


@pytest.mark.parametrize(
    ("kind", "name", "api"),
    [("pool", "wbe", "update"), ("listener", "htttp", "delete"), ("healthmonitor", "nope", "delete")],
)
def test_api_event_target_must_exist(kind: str, name: str, api: str) -> None:
    ev: dict[str, Any] = {"at": 3, "api": api, kind: name}
    if api == "update":
        ev["set"] = {"admin_state_up": False}
    text = scenario_yaml(mutated(lambda d: d["events"].append(ev)))
    assert_problem(
        text, f"events[2].{kind}", find_line(text, f"{kind}: {name}", exact=True), f"no {kind} named '{name}'"
    )


@pytest.mark.parametrize("kind", ["member", "pool", "listener", "loadbalancer", "healthmonitor"])
def test_expectation_must_name_an_existing_object(kind: str) -> None:
    ex = {"at": 2, kind: "ghost", "operating_status": "ONLINE"}
    text = scenario_yaml(mutated(lambda d: d["expect"].append(ex)))
    assert_problem(text, f"expect[1].{kind}", find_line(text, f"{kind}: ghost", exact=True), f"no {kind} named 'ghost'")


def _created(d: dict[str, Any]) -> None:
    d["events"].append(
        {
            "at": 1,
            "api": "create",
            "member": "web-3",
            "pool": "web",
            "set": {"address": "10.0.0.13", "protocol_port": 8080},
        }
    )
    d["events"].append({"at": 2.5, "member": "web-3", "behaviour": "hang"})
    d["events"].append({"at": 4, "api": "update", "member": "web-3", "set": {"weight": 5}})
    d["expect"].append({"at": 4, "member": "web-3", "provisioning_status": "ACTIVE"})


def test_objects_created_by_api_events_can_be_referenced() -> None:
    sc = assert_loads(mutated(_created))
    assert [type(e).__name__ for e in sc.events][2:] == ["ApiEvent", "MemberEvent", "ApiEvent"]
    # without the create event, the later references are unknown
    d = mutated(_created)
    del d["events"][2]
    problems = problems_of(scenario_yaml(d))
    assert {p.path for p in problems} >= {"events[2].member", "events[3].member", "expect[1].member"}


def test_api_create_needs_parent_and_a_valid_body() -> None:
    def fn(d: dict[str, Any]) -> None:
        _created(d)
        d["events"][2]["pool"] = "pol"

    text = scenario_yaml(mutated(fn))
    assert_problem(text, "events[2].pool", find_line(text, "pool: pol", exact=True), "no pool named 'pol'; known: web")

    def no_parent(d: dict[str, Any]) -> None:
        _created(d)
        del d["events"][2]["pool"]

    text = scenario_yaml(mutated(no_parent))
    assert_problem(text, "events[2]", find_line(text, "at: 1", exact=True), "needs the 'pool'")

    def bad_body(d: dict[str, Any]) -> None:
        _created(d)
        d["events"][2]["set"]["wieght"] = 3

    text = scenario_yaml(mutated(bad_body))
    assert_problem(
        text,
        "events[2].set.wieght",
        find_line(text, "wieght: 3", exact=True),
        "unknown field 'wieght'",
        "did you mean 'weight'?",
    )


# -- unknown keys, wrong types, not YAML -----------------------------------------------------


@pytest.mark.parametrize(
    ("fn", "path", "key", "suggestion"),
    [
        (lambda d: mem(d).update(wieght=2), f"{M0}.wieght", "wieght", "weight"),
        (lambda d: hm(d).update(max_retry=2), f"{HM}.max_retry", "max_retry", "max_retries"),
        (lambda d: lst(d).update(protocl="TCP"), f"{L0}.protocl", "protocl", "protocol"),
        (lambda d: pool(d).update(lb_algoritm="X"), f"{P0}.lb_algoritm", "lb_algoritm", "lb_algorithm"),
        (lambda d: d.update(sede=3), "sede", "sede", "seed"),
        (
            lambda d: d["octavia"].update(heartbeat_intervall=2),
            "octavia.heartbeat_intervall",
            "heartbeat_intervall",
            "heartbeat_interval",
        ),
        (
            lambda d: d["events"][0].update(behavior=d["events"][0].pop("behaviour")),
            "events[0].behavior",
            "behavior",
            "behaviour",
        ),
        (lambda d: d["events"][1].update(sett={}), "events[1].sett", "sett", "set"),
        (
            lambda d: mem(d)["service_time"].update(meen=1),
            f"{M0}.service_time.meen",
            "meen",
            "mean",
        ),
        (lambda d: d["traffic"][0]["arrival"].update(rat=3), "traffic[0].arrival.rat", "rat", "rate"),
        (lambda d: d["traffic"][0]["clients"].update(cout=3), "traffic[0].clients.cout", "cout", "count"),
        (lambda d: d["expect"][0].update(att=3), "expect[0].att", "att", "at"),
    ],
)
def test_misspelt_key_says_did_you_mean(fn: Mutator, path: str, key: str, suggestion: str) -> None:
    text = scenario_yaml(mutated(fn))
    assert_problem(text, path, find_line(text, f"{key}:"), f"unknown field '{key}'", f"did you mean '{suggestion}'?")


def test_unknown_key_without_a_close_match_lists_the_allowed_fields() -> None:
    text = scenario_yaml(mutated(lambda d: mem(d).update(colour="blue")))
    p = assert_problem(text, f"{M0}.colour", find_line(text, "colour: blue", exact=True), "allowed:")
    for field in ("weight", "protocol_port", "service_time", "backup"):
        assert field in p.message


def test_missing_required_field_points_at_its_parent() -> None:
    text = scenario_yaml(mutated(lambda d: mem(d).pop("address")))
    assert_problem(text, f"{M0}.address", find_line(text, "name: web-1", exact=True), "required")
    text = scenario_yaml(mutated(lambda d: d.pop("loadbalancer")))
    assert_problem(text, "loadbalancer", 1, "required")


@pytest.mark.parametrize(
    ("fn", "path", "needle", "fragment"),
    [
        (lambda d: pool(d).update(members=5), f"{P0}.members", "members: 5", "valid list"),
        (lambda d: lb(d).update(listeners={"a": 1}), "loadbalancer.listeners", "listeners:", "valid list"),
        (lambda d: d.update(events={"at": 1}), "events", "events:", "valid list"),
        (lambda d: d.update(duration="soon"), "duration", "duration: soon", "valid number"),
        (lambda d: d.update(duration=-5), "duration", "duration: -5", "greater than 0"),
        (lambda d: d.update(duration=float("inf")), "duration", "duration: .inf", "finite number"),
        (
            lambda d: d["traffic"][0]["arrival"].update(rate=float("nan")),
            "traffic[0].arrival.rate",
            "rate: .nan",
            "finite number",
        ),
        (lambda d: d.update(name=5), "name", "name: 5", "valid string"),
        (lambda d: d.update(name="web tier"), "name", "name: web tier", "letters, digits"),
        (lambda d: d.update(version=2), "version", "version: 2", "expected 1"),
        (lambda d: d.update(seed=-1), "seed", "seed: -1", "greater than or equal to 0"),
        (lambda d: d.update(warmup=5), "warmup", "warmup: 5", "shorter than duration"),
        (lambda d: d.update(loadbalancer="lb1"), "loadbalancer", "loadbalancer: lb1", "dictionary"),
        (
            lambda d: lst(d).update(admin_state_up="maybe"),
            f"{L0}.admin_state_up",
            "admin_state_up: maybe",
            "valid boolean",
        ),
        (lambda d: mem(d).update(address="10.0.0.300"), f"{M0}.address", "address: 10.0.0.300", "IPv4 or IPv6 address"),
        (
            lambda d: d["traffic"][0]["clients"].update(cidr="nowhere"),
            "traffic[0].clients.cidr",
            "cidr: nowhere",
            "CIDR",
        ),
        (
            lambda d: mem(d).update(service_time={"dist": "weibull"}),
            f"{M0}.service_time",
            "service_time:",
            "'exponential'",
        ),
        (
            lambda d: mem(d).update(service_time={"dist": "uniform", "low": 2, "high": 1}),
            f"{M0}.service_time",
            "service_time:",
            "must be >= low",
        ),
        (lambda d: d["traffic"][0].update(arrival={"process": "burst"}), "traffic[0].arrival", "arrival:", "'poisson'"),
        (
            lambda d: d["events"].append({"at": 1, "behaviour": "refuse"}),
            "events[2]",
            "at: 1",
            "an event needs 'api'",
        ),
        (lambda d: d["events"][0].update(behaviour="explode"), "events[0].behaviour", "behaviour: explode", "'hang'"),
        (
            lambda d: d["events"].append({"at": 1, "amphora": "MASTER", "behaviour": "melt"}),
            "events[2].behaviour",
            "behaviour: melt",
            "'fail'",
        ),
        (
            lambda d: d["events"].append({"at": 1, "api": "failover", "member": "web-1"}),
            "events[2]",
            "at: 1",
            "failover takes only 'loadbalancer'",
        ),
        (lambda d: d["expect"][0].update(pool="web"), "expect[0]", "at: 1", "name exactly one object"),
        (lambda d: d["expect"][0].pop("at"), "expect[0]", "loadbalancer: lb1", "exactly one of 'at' or 'within"),
        (
            lambda d: d["expect"][0].update(operating_status="ONLINE"),
            "expect[0]",
            "at: 1",
            "exactly one of operating_status",
        ),
        (
            lambda d: d["expect"].append({"transition": ["ONLINE", "ERROR"], "member": "web-1", "at": 3}),
            "expect[1]",
            "transition:",
            "needs 'within",
        ),
        (lambda d: d["expect"][0].update(at=None, within=[4, 2]), "expect[0]", "at: null", "t0 <= t1"),
    ],
)
def test_wrong_types_and_shapes(fn: Mutator, path: str, needle: str, fragment: str) -> None:
    text = scenario_yaml(mutated(fn))
    assert_problem(text, path, find_line(text, needle), fragment)


def test_not_yaml_names_the_line_of_the_syntax_error() -> None:
    good = scenario_yaml(make_scenario())
    broken_at = find_line(good, "protocol_port: 80", exact=True)
    lines = good.splitlines()
    lines[broken_at - 1] += ": 81"  # "protocol_port: 80: 81" -- a mapping inside a scalar
    assert_problem("\n".join(lines) + "\n", "", broken_at, "not valid YAML")

    lines = good.splitlines()
    lines.insert(3, "\tseed: 2")  # a tab can not indent YAML
    assert_problem("\n".join(lines) + "\n", "", 4, "not valid YAML", "'\\t'")

    assert_problem("name: [unclosed\n", "", 2, "not valid YAML")
    assert_problem("duration: *nowhere\n", "", 1, "not valid YAML", "alias")
    assert_problem("a: 1\n---\nb: 2\n", "", 2, "not valid YAML")


def test_yaml_tags_cannot_build_python_objects() -> None:
    assert_problem("!!python/object/apply:os.system ['true']\n", "", 1, "not valid YAML")


@pytest.mark.parametrize("text", ["- name: x\n- name: y\n", "just a string\n", "42\n", "", "# only a comment\n"])
def test_a_document_that_is_not_a_mapping(text: str) -> None:
    assert_problem(text, "", 1, "expected a YAML mapping")


def test_a_list_of_scenarios_is_not_a_scenario() -> None:
    assert_problem(scenario_yaml([make_scenario()]), "", 1, "expected a YAML mapping")


def test_a_key_given_twice_is_an_error_not_silently_overwritten() -> None:
    text = scenario_yaml(make_scenario()) + "seed: 9\n"
    last = len(text.splitlines())
    assert_problem(text, "seed", last, "given twice", f"first on line {find_line(text, 'seed: 7')}")
    # inside a nested block, e.g. a member given `weight` twice
    lines = scenario_yaml(make_scenario()).splitlines()
    at = find_line("\n".join(lines), "concurrency: 4")
    indent = lines[at - 1][: len(lines[at - 1]) - len(lines[at - 1].lstrip())]
    lines[at:at] = [f"{indent}weight: 1", f"{indent}weight: 2"]
    assert_problem("\n".join(lines) + "\n", f"{M0}.weight", at + 2, "given twice")


def test_an_alias_that_contains_itself_is_an_error() -> None:
    assert_problem("version: 1\nname: &n [*n]\n", "name[0]", 2, "contains it")


def test_anchors_and_aliases_are_allowed() -> None:
    text = scenario_yaml(make_scenario()).replace("service_time:", "service_time: &svc", 1)
    # second member's service time becomes an alias of the first
    lines = text.splitlines()
    at = find_line(text, "service_time:", nth=2)
    indent = lines[at - 1][: len(lines[at - 1]) - len(lines[at - 1].lstrip())]
    lines[at - 1 : at + 2] = [f"{indent}service_time: *svc"]
    sc = parse_scenario("\n".join(lines) + "\n", file=FILE)
    a, b = sc.loadbalancer.pools[0].members
    assert a.service_time == b.service_time


# -- times ------------------------------------------------------------------------------------


def test_event_after_the_end_of_the_run() -> None:
    text = scenario_yaml(mutated(lambda d: d["events"][0].update(at=6)))
    assert_problem(text, "events[0].at", find_line(text, "at: 6", exact=True), "after the end of the run")
    assert_loads(mutated(lambda d: d["events"][0].update(at=5)))  # at the very end is fine


def test_expectation_after_the_end_of_the_run() -> None:
    text = scenario_yaml(mutated(lambda d: d["expect"][0].update(at=5.5)))
    assert_problem(text, "expect[0].at", find_line(text, "at: 5.5", exact=True), "after the end of the run")

    def window(d: dict[str, Any]) -> None:
        d["expect"][0].pop("at")
        d["expect"][0]["within"] = [6, 7]

    text = scenario_yaml(mutated(window))
    assert_problem(text, "expect[0].within", find_line(text, "within:", exact=True), "after the end")


def test_negative_event_time() -> None:
    text = scenario_yaml(mutated(lambda d: d["events"][0].update(at=-1)))
    assert_problem(text, "events[0].at", find_line(text, "at: -1", exact=True), "greater than or equal to 0")


@pytest.mark.parametrize(
    ("topology", "role", "ok"),
    [
        ("SINGLE", "STANDALONE", True),
        ("SINGLE", "MASTER", False),
        ("SINGLE", "BACKUP", False),
        ("ACTIVE_STANDBY", "MASTER", True),
        ("ACTIVE_STANDBY", "BACKUP", True),
        ("ACTIVE_STANDBY", "STANDALONE", False),
    ],
)
def test_amphora_event_role_must_exist_in_the_topology(topology: str, role: str, ok: bool) -> None:
    def fn(d: dict[str, Any]) -> None:
        lb(d)["topology"] = topology
        d["events"].append({"at": 4, "amphora": role, "behaviour": "fail"})

    if ok:
        assert_loads(mutated(fn))
        return
    text = scenario_yaml(mutated(fn))
    assert_problem(text, "events[2].amphora", find_line(text, f"amphora: {role}", exact=True), f"not {role}", topology)


# -- API updates ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "field", "value"),
    [
        ({"member": "web-2"}, "address", "10.0.0.99"),
        ({"member": "web-2"}, "protocol_port", 9090),
        ({"listener": "http"}, "protocol", "TCP"),
        ({"listener": "http"}, "protocol_port", 8000),
        ({"pool": "web"}, "protocol", "TCP"),
        ({"healthmonitor": "web-hm"}, "type", "TCP"),
        ({"loadbalancer": "lb1"}, "topology", "ACTIVE_STANDBY"),
    ],
)
def test_update_of_a_field_octavia_does_not_update(target: dict[str, str], field: str, value: Any) -> None:
    ev = {"at": 4, "api": "update", **target, "set": {field: value}}
    text = scenario_yaml(mutated(lambda d: d["events"].append(ev)))
    p = assert_problem(
        text,
        f"events[2].set.{field}",
        find_line(text, f"{field}: {value}", exact=True),
        f"'{field}' cannot be updated",
        "updatable:",
    )
    assert "name" in p.message.split("updatable:")[1]


@pytest.mark.parametrize(
    ("target", "changes"),
    [
        ({"member": "web-2"}, {"weight": 0, "backup": True, "admin_state_up": False}),
        ({"listener": "http"}, {"connection_limit": 10, "timeout_member_data": 1000}),
        ({"pool": "web"}, {"lb_algorithm": "LEAST_CONNECTIONS"}),
        ({"healthmonitor": "web-hm"}, {"delay": 2, "max_retries_down": 5, "url_path": "/live"}),
        ({"loadbalancer": "lb1"}, {"admin_state_up": False}),
    ],
)
def test_updates_of_updatable_fields_are_accepted(target: dict[str, str], changes: dict[str, Any]) -> None:
    ev = {"at": 4, "api": "update", **target, "set": changes}
    sc = assert_loads(mutated(lambda d: d["events"].append(ev)))
    last = sc.events[2]
    assert isinstance(last, m.ApiEvent) and last.set == changes


@pytest.mark.parametrize(
    ("target", "field", "value", "fragment"),
    [
        ({"member": "web-2"}, "weight", 999, f"{LE} 256"),
        ({"healthmonitor": "web-hm"}, "max_retries", 0, f"{GE} 1"),
        ({"listener": "http"}, "connection_limit", -5, f"{GE} -1"),
        ({"pool": "web"}, "lb_algorithm", "FASTEST", "ROUND_ROBIN"),
    ],
)
def test_update_values_obey_the_same_rules(target: dict[str, str], field: str, value: Any, fragment: str) -> None:
    ev = {"at": 4, "api": "update", **target, "set": {field: value}}
    text = scenario_yaml(mutated(lambda d: d["events"].append(ev)))
    assert_problem(text, f"events[2].set.{field}", find_line(text, f"{field}: {value}", exact=True), fragment)


def test_update_needs_set_and_delete_takes_none() -> None:
    text = scenario_yaml(mutated(lambda d: d["events"][1].pop("set")))
    assert_problem(text, "events[1].set", find_line(text, "at: 3", exact=True), "needs the fields")
    ev = {"at": 4, "api": "delete", "member": "web-2", "set": {"weight": 3}}
    text = scenario_yaml(mutated(lambda d: d["events"].append(ev)))
    assert_problem(
        text, "events[2].set", find_line(text, "set:", nth=2, exact=True), "only used with create and update"
    )


# -- files ------------------------------------------------------------------------------------


def test_load_scenario_names_the_file(write_scenario: Callable[..., Path]) -> None:
    d = mutated(lambda d: mem(d).update(weight=300))
    path = write_scenario(d, "bad.yaml")
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    (p,) = info.value.problems
    assert p.file == str(path)
    assert p.line == find_line(path.read_text(), "weight: 300", exact=True)
    assert str(p).startswith(f"{path}:{p.line}: {M0}.weight: ")


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match="cannot read file"):
        load_scenario(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name: x")
    with pytest.raises(ScenarioError, match="not a UTF-8 text file"):
        load_scenario(binary)


def test_relative_trace_and_sample_files_resolve_beside_the_scenario(
    write_scenario: Callable[..., Path], tmp_path: Path
) -> None:
    def fn(d: dict[str, Any]) -> None:
        d["traffic"][0]["arrival"] = {"process": "trace", "file": "trace.csv"}
        mem(d)["service_time"] = {"dist": "empirical", "file": "samples.csv"}

    path = write_scenario(mutated(fn))
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    assert {p.path for p in info.value.problems} == {
        "traffic[0].arrival.file",
        f"{M0}.service_time.file",
    }
    assert all("file not found" in p.message for p in info.value.problems)
    (tmp_path / "trace.csv").write_text("time,client\n0.5,198.51.100.7\n1.5,198.51.100.8\n")
    (tmp_path / "samples.csv").write_text("0.01\n0.02\n")
    assert load_scenario(path).traffic[0].arrival.process == "trace"


# -- property: mutations never crash ----------------------------------------------------------

_WORDS = [
    "HTTP", "HTTPS", "TCP", "UDP", "SCTP", "PROXY", "PING", "UDP-CONNECT", "TLS-HELLO",
    "TERMINATED_HTTPS", "PROMETHEUS", "ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP",
    "SOURCE_IP_PORT", "APP_COOKIE", "HTTP_COOKIE", "ACTIVE_STANDBY", "MASTER", "BACKUP",
    "STANDALONE", "web", "web-1", "web-2", "http", "lb1", "web-hm", "refuse", "hang",
    "error", "slow", "healthy", "fail", "create", "update", "delete", "failover",
    "poisson", "constant", "mmpp", "profile", "exponential", "lognormal", "gamma",
    "uniform", "empirical", "10.0.0.11", "::1", "198.51.100.0/24", "200-204", "/", "1.1",
    "ONLINE", "ERROR", "ACTIVE", "DEGRADED", "UP", "DOWN",
]  # fmt: skip
_NUMBERS = [-1, 0, 1, 2, 3, 10, 11, 256, 257, 65535, 65536, 2_073_600_001, 2**63, -(2**70)]
_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), max_size=10)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.sampled_from(_NUMBERS),
    st.integers(-3, 300),
    st.floats(allow_nan=True, allow_infinity=True),
    st.floats(0, 10),
    st.sampled_from(_WORDS),
    _TEXT,
)
_VALUES = st.one_of(
    _SCALARS,
    st.lists(_SCALARS, max_size=3),
    st.dictionaries(st.sampled_from(["at", "name", "type", "member", "dist", "x"]), _SCALARS, max_size=3),
)

Path_ = tuple[Any, ...]


def _paths(node: Any, path: Path_ = ()) -> list[Path_]:
    """Every path into a tree of dicts and lists (the root excluded)."""
    out: list[Path_] = []
    if isinstance(node, dict):
        items: Any = node.items()
    elif isinstance(node, list):
        items = enumerate(node)
    else:
        return out
    for key, child in items:
        out.append((*path, key))
        out.extend(_paths(child, (*path, key)))
    return out


def _get(tree: Any, path: Path_) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _typo(word: str, i: int) -> str:
    if len(word) < 2:
        return word + "x"
    i %= len(word) - 1
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


@st.composite
def _mutations(draw: st.DrawFn) -> tuple[str, list[str]]:
    """A mutated copy of the base scenario (as YAML text) and what was done to it."""
    d = make_scenario()
    done: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        paths = _paths(d)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        parent, key = _get(d, path[:-1]), path[-1]
        op = draw(st.sampled_from(["delete", "replace", "rename", "duplicate", "insert", "graft"]))
        if op == "delete":
            del parent[key]
        elif op == "replace":
            parent[key] = draw(_VALUES)
        elif op == "rename" and isinstance(parent, dict):
            new = draw(st.one_of(st.just(_typo(str(key), draw(st.integers(0, 20)))), _TEXT))
            value = parent.pop(key)
            parent[new] = value
        elif op == "duplicate" and isinstance(parent, list):
            parent.append(copy.deepcopy(parent[key]))
        elif op == "insert" and isinstance(parent, dict):
            parent[draw(st.sampled_from([*_WORDS, "weight", "delay", "cookie_name", "set"]))] = draw(_VALUES)
        elif op == "graft":
            # put a copy of some other part of the document here: plausible structure in
            # the wrong place (an event where a member was, a pool inside a listener, ...)
            parent[key] = copy.deepcopy(_get(d, draw(st.sampled_from(paths))))
        done.append(f"{op} {path}")
    text = scenario_yaml(d)
    if draw(st.integers(0, 9)) == 0:  # sometimes break the text itself
        cut = draw(st.integers(0, len(text)))
        text = text[:cut] + draw(st.sampled_from(["", ":", "[", "\t", "- ", "&a *a", "{"])) + text[cut:]
        done.append(f"text edit at {cut}")
    return text, done


def _cheap(sc: m.Scenario) -> bool:
    """True when the scenario runs in milliseconds (few requests, few timer ticks)."""
    rates: list[float] = []
    for tr in sc.traffic:
        a = tr.arrival
        if isinstance(a, m.Poisson | m.ConstantRate):
            rates.append(a.rate)
        elif isinstance(a, m.Profile):
            rates.append(max(r for _, r in a.profile))
        elif isinstance(a, m.Mmpp):
            rates.append(max(a.rates))
    o = sc.octavia
    timers = [o.heartbeat_interval, o.health_check_interval, o.vrrp_advert_int]
    clients = max((tr.clients.count for tr in sc.traffic), default=1)
    return sc.duration <= 60 and sum(rates) * sc.duration <= 5000 and min(timers) >= 0.05 and clients <= 100_000


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(_mutations())
def test_mutated_scenarios_load_and_run_or_fail_cleanly(case: tuple[str, list[str]]) -> None:
    text, _done = case
    try:
        sc = parse_scenario(text, file="fuzz.yaml")
    except ScenarioError as err:
        assert err.problems
        n_lines = len(text.splitlines()) + 1
        for p in err.problems:
            assert p.file == "fuzz.yaml"
            assert isinstance(p.message, str) and p.message.strip()
            assert isinstance(p.path, str)
            assert p.line is None or 1 <= p.line <= n_lines
        return
    assume(_cheap(sc))
    result = run_scenario(sc)
    s = result.summary
    assert s["requests"] == s["ok"] + sum(s["errors"].values())
    assert math.isfinite(s["duration"]) and s["duration"] == pytest.approx(sc.duration)
    assert len(result.expectations) == len(sc.expect)
