"""L7 policies and rules: Octavia's validation, HAProxy's matching and evaluation order, the
rendered configuration, and routing in simulated time (lbsim.haproxy.l7, lbsim.sim.l7)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from lbsim import load_scenario, run_scenario
from lbsim.haproxy import l7
from lbsim.haproxy.config import render
from lbsim.scenario import model as m
from lbsim.scenario.errors import ScenarioError
from lbsim.scenario.l7 import check_rule, order_positions, sanitize_policy

ROOT = Path(__file__).resolve().parent.parent

# --------------------------------------------------------------------------------------
# Octavia's validation
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        (("HEADER", "EQUAL_TO", None, "x"), "Invalid L7 Rule: L7 rule type requires a key"),
        (("HEADER", "EQUAL_TO", "bad key", "x"), "Invalid characters in key"),
        (("COOKIE", "EQUAL_TO", "sid", "a;b"), "Invalid characters in cookie value"),
        (("PATH", "REGEX", None, "(unclosed"), "Unable to parse regular expression: missing ), unterminated"),
        (("FILE_TYPE", "STARTS_WITH", None, "jpg"), "Invalid L7 Rule: invalid comparison type for rule type"),
        (("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "yes"), "L7rule value yes is not a boolean True string."),
        (("SSL_CONN_HAS_CERT", "EQUAL_TO", "k", "True"), 'does not use the "key" field.'),
        (("SSL_VERIFY_RESULT", "EQUAL_TO", None, "-1"), "needs a int value, which is >= 0"),
        (("SSL_VERIFY_RESULT", "CONTAINS", None, "1"), "only supports the EQUAL_TO compare type."),
        (("SSL_DN_FIELD", "EQUAL_TO", "1CN", "x"), "Invalid L7rule distinguished name field."),
        (("HOST_NAME", "EQUAL_TO", None, "a b"), "Invalid characters in comparison value"),
    ],
)
def test_rule_validation_messages(rule: tuple[str, str, str | None, str], message: str) -> None:
    problem = check_rule(*rule)
    assert problem is not None and message in problem


@pytest.mark.parametrize(
    "rule",
    [
        ("HOST_NAME", "ENDS_WITH", None, ".example.com"),
        ("PATH", "REGEX", None, "^/api/v[0-9]+/"),
        ("FILE_TYPE", "EQUAL_TO", None, "jpg"),
        ("HEADER", "CONTAINS", "User-Agent", "curl"),
        ("HEADER", "EQUAL_TO", "X-Name", '"two words"'),
        ("COOKIE", "EQUAL_TO", "tier", "gold"),
        ("SSL_CONN_HAS_CERT", "EQUAL_TO", None, "TRUE"),
        ("SSL_VERIFY_RESULT", "EQUAL_TO", None, "0"),
        ("SSL_DN_FIELD", "STARTS_WITH", "CN", "client"),
    ],
)
def test_rules_octavia_accepts(rule: tuple[str, str, str | None, str]) -> None:
    assert check_rule(*rule) is None


def test_policy_sanitising_follows_octavia() -> None:
    # a redirect field implies its action and clears the others; redirects default to 302
    p = sanitize_policy({"action": "REDIRECT_TO_URL", "redirect_url": "https://x.example/"}, create=True)
    assert p["redirect_http_code"] == 302 and p["redirect_pool"] is None
    p = sanitize_policy({"redirect_prefix": "http://x.example"}, create=True)
    assert p["action"] == "REDIRECT_PREFIX" and p["redirect_http_code"] == 302
    p = sanitize_policy({"action": "REJECT", "redirect_url": "https://x.example/"}, create=True)
    assert p["redirect_url"] is None
    p = sanitize_policy({"action": "REDIRECT_TO_POOL", "redirect_pool": "api", "redirect_http_code": 301})
    assert p["redirect_http_code"] is None  # pools take no code
    with pytest.raises(l7.L7Error, match="redirect_url must not be None"):
        sanitize_policy({"action": "REDIRECT_TO_URL"}, create=True)
    with pytest.raises(l7.L7Error, match="redirect_pool_id or redirect_pool must not be None"):
        sanitize_policy({"action": "REDIRECT_TO_POOL"}, create=True)
    with pytest.raises(l7.L7Error, match="Cannot specify redirect_pool_id and redirect_url"):
        sanitize_policy({"redirect_pool": "api", "redirect_url": "https://x.example/"}, create=True)
    with pytest.raises(l7.L7Error, match="Not a valid URL: ftp://x"):
        sanitize_policy({"action": "REDIRECT_TO_URL", "redirect_url": "ftp://x"}, create=True)
    with pytest.raises(l7.L7Error, match="Invalid L7 Policy action specified: None"):
        sanitize_policy({"name": "p"}, create=True)


def test_positions_renumber_like_octavia() -> None:
    # create: appended, then moved to its position when that is inside the list
    order = order_positions([], "a")
    order = order_positions(order, "b")
    order = order_positions(order, "c", 1)
    assert order == ["c", "a", "b"]
    assert order_positions(order, "d", 99) == ["c", "a", "b", "d"]
    # update: popped and reinserted; delete: the others close the gap
    assert order_positions(order, "b", 1) == ["b", "c", "a"]
    assert order_positions(order, "c", 3) == ["a", "b", "c"]
    assert [n for n in order if n != "a"] == ["c", "b"]


@given(st.lists(st.integers(1, 8), max_size=8), st.integers(1, 10))
def test_position_renumbering_is_a_permutation(positions: list[int], moved_to: int) -> None:
    order: list[str] = []
    for i, pos in enumerate(positions):
        order = order_positions(order, f"p{i}", pos)
    assert sorted(order) == sorted(f"p{i}" for i in range(len(positions)))
    if order:
        again = order_positions(order, order[0], moved_to)
        assert sorted(again) == sorted(order)
        assert again.index(order[0]) == min(moved_to, len(order)) - 1


# --------------------------------------------------------------------------------------
# Scenario fields
# --------------------------------------------------------------------------------------

BASE: dict[str, Any] = {
    "name": "l7t",
    "duration": 20,
    "loadbalancer": {
        "name": "lb",
        "listeners": [{"name": "http", "protocol": "HTTP", "protocol_port": 80, "default_pool": "web"}],
        "pools": [
            {
                "name": name,
                "protocol": "HTTP",
                "lb_algorithm": "ROUND_ROBIN",
                "members": [
                    {
                        "name": f"{name}-{i}",
                        "address": f"10.0.{k}.{i}",
                        "protocol_port": 80,
                        "concurrency": 50,
                        "service_time": {"dist": "constant", "value": 0.001},
                    }
                    for i in (1, 2)
                ],
            }
            for k, name in enumerate(("web", "api", "img"))
        ],
    },
}


def _scenario(tmp_path: Path, policies: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["loadbalancer"]["listeners"][0]["l7policies"] = policies
    data.update(extra or {})
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _problems(path: Path) -> str:
    with pytest.raises(ScenarioError) as info:
        load_scenario(path)
    return str(info.value)


def test_scenario_l7_errors_name_the_field(tmp_path: Path) -> None:
    bad_rule = [
        {"name": "p", "action": "REJECT", "rules": [{"type": "HEADER", "compare_type": "EQUAL_TO", "value": "x"}]}
    ]
    out = _problems(_scenario(tmp_path, bad_rule))
    assert "l7policies[0].rules[0]" in out and "L7 rule type requires a key" in out
    out = _problems(_scenario(tmp_path, [{"name": "p", "action": "REDIRECT_TO_POOL", "redirect_pool": "nope"}]))
    assert "redirect_pool" in out and "Pool nope not found." in out
    out = _problems(_scenario(tmp_path, [{"name": "p", "action": "REDIRECT_TO_URL", "redirect_http_code": 304}]))
    assert "redirect_url must not be None" in out
    code = [{"name": "p", "redirect_url": "https://x.example/", "redirect_http_code": 304}]
    assert "redirect_http_code" in _problems(_scenario(tmp_path, code))
    many = [
        {"name": "p", "action": "REJECT", "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}] * 51}
    ]
    assert "at most 50" in _problems(_scenario(tmp_path, many))


def test_l7_on_a_tcp_listener_is_refused(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["loadbalancer"]["listeners"][0]["protocol"] = "TCP"
    data["loadbalancer"]["listeners"][0]["l7policies"] = [
        {"name": "p", "action": "REJECT", "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}]}
    ]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert "TCP protocol listeners do not support L7 policies" in _problems(path)


def test_redirect_pool_protocol_must_fit_the_listener(tmp_path: Path) -> None:
    data = yaml.safe_load(yaml.safe_dump(BASE))
    data["loadbalancer"]["pools"][1]["protocol"] = "TCP"
    data["loadbalancer"]["listeners"][0]["l7policies"] = [
        {"name": "p", "redirect_pool": "api", "rules": [{"type": "PATH", "compare_type": "EQUAL_TO", "value": "/"}]}
    ]
    path = tmp_path / "s.yaml"
    path.write_text(yaml.safe_dump(data), encoding="utf-8")
    assert "The pool protocol 'TCP' is invalid while the listener protocol is 'HTTP'." in _problems(path)


# --------------------------------------------------------------------------------------
# Matching and evaluation (pure)
# --------------------------------------------------------------------------------------


def _rule(t: str, c: str, v: str, key: str | None = None, invert: bool = False) -> l7.Rule:
    return l7.Rule(t, c, v, key, invert)


def test_rule_matching_per_fetch() -> None:
    req = l7.Request(
        host="Api.Example.com",
        path="/static/img/logo.PNG?v=2",
        headers={"X-Tier": "gold, silver", "User-Agent": "curl/8"},
        cookies={"sid": "abc123"},
    )
    assert l7.rule_matches(_rule("HOST_NAME", "EQUAL_TO", "api.example.com"), req)  # -i
    assert l7.rule_matches(_rule("HOST_NAME", "ENDS_WITH", ".EXAMPLE.COM"), req)
    assert l7.rule_matches(_rule("PATH", "STARTS_WITH", "/static"), req)
    assert not l7.rule_matches(_rule("PATH", "ENDS_WITH", "v=2"), req)  # path has no query
    assert l7.rule_matches(_rule("FILE_TYPE", "EQUAL_TO", "PNG"), req)  # path_end, case-sensitive
    assert not l7.rule_matches(_rule("FILE_TYPE", "EQUAL_TO", "png"), req)
    assert l7.rule_matches(_rule("FILE_TYPE", "REGEX", r"\.(png|PNG)$"), req)
    assert l7.rule_matches(_rule("HEADER", "EQUAL_TO", "silver", "x-tier"), req)  # comma-split values
    assert not l7.rule_matches(_rule("HEADER", "EQUAL_TO", "Curl/8", "User-Agent"), req)  # case-sensitive
    assert l7.rule_matches(_rule("COOKIE", "STARTS_WITH", "abc", "sid"), req)
    assert not l7.rule_matches(_rule("COOKIE", "CONTAINS", "x", "missing"), req)
    assert l7.rule_matches(_rule("COOKIE", "CONTAINS", "x", "missing", invert=True), req)  # no sample: ! is true
    assert not l7.rule_matches(_rule("SSL_CONN_HAS_CERT", "EQUAL_TO", "True"), req)


def test_haproxy_reads_octavia_escaped_values() -> None:
    # Octavia escapes backslashes and spaces only: quotes still quote, # still comments
    assert l7.haproxy_words(l7.escape_value('"two words"')) == ["two words"]
    assert l7.haproxy_words(l7.escape_value("a#b")) == ["a"]
    assert l7.haproxy_words(l7.escape_value(r"\d+")) == [r"\d+"]
    with pytest.raises(ValueError, match="unmatched quote"):
        l7.haproxy_words(l7.escape_value("it's"))
    # a value HAProxy cannot parse matches nothing
    assert not l7.rule_matches(_rule("HEADER", "EQUAL_TO", "it's", "X"), l7.Request(headers={"X": "it's"}))


_SAFE = st.text(alphabet="abcxyz/.-_0123456789", min_size=1, max_size=12)


@given(_SAFE, _SAFE)
def test_compare_types_are_consistent(value: str, path_tail: str) -> None:
    req = l7.Request(path="/" + path_tail)
    eq = l7.rule_matches(_rule("PATH", "EQUAL_TO", value), req)
    beg = l7.rule_matches(_rule("PATH", "STARTS_WITH", value), req)
    end = l7.rule_matches(_rule("PATH", "ENDS_WITH", value), req)
    sub = l7.rule_matches(_rule("PATH", "CONTAINS", value), req)
    assert eq <= beg and eq <= end and beg <= sub and end <= sub
    assert eq == (req.path == value) and sub == (value in req.path)
    assert l7.rule_matches(_rule("PATH", "CONTAINS", value, invert=True), req) == (not sub)


_ACTIONS = st.sampled_from(["REJECT", "REDIRECT_TO_URL", "REDIRECT_PREFIX", "REDIRECT_TO_POOL"])


@st.composite
def _policies(draw: st.DrawFn) -> list[l7.Policy]:
    out = []
    for i in range(draw(st.integers(1, 6))):
        action = draw(_ACTIONS)
        prefix = draw(st.sampled_from(["/a", "/b", "/", "/ab"]))
        out.append(
            l7.Policy(
                f"p{i}",
                action,
                i + 1,
                (_rule("PATH", "STARTS_WITH", prefix),),
                redirect_pool=f"pool{i}" if action == "REDIRECT_TO_POOL" else None,
                redirect_url="https://x.example/" if action == "REDIRECT_TO_URL" else None,
                redirect_prefix="https://x.example" if action == "REDIRECT_PREFIX" else None,
                redirect_http_code=None if action in ("REJECT", "REDIRECT_TO_POOL") else 302,
            )
        )
    return out


@given(_policies(), st.sampled_from(["/", "/a", "/ab/c", "/b", "/c"]))
def test_evaluation_order_is_deny_then_redirect_then_backend(policies: list[l7.Policy], path: str) -> None:
    req = l7.Request(path=path)
    d = l7.evaluate(policies, req)
    matching = [p for p in policies if l7.rule_matches(p.rules[0], req)]
    kinds = {p.action for p in matching}
    if "REJECT" in kinds:
        assert d.kind == "reject"
    elif kinds & {"REDIRECT_TO_URL", "REDIRECT_PREFIX"}:
        first = next(p for p in matching if p.action in ("REDIRECT_TO_URL", "REDIRECT_PREFIX"))
        assert d.kind == "redirect" and d.policy == first.name
    elif kinds:
        assert d.kind == "pool" and d.pool == matching[0].redirect_pool
    else:
        assert d == l7.DEFAULT
    # positions only order policies of the same kind: reversing them never changes the kind
    reordered = [
        l7.Policy(p.name, p.action, len(policies) - i, p.rules, p.redirect_pool, p.redirect_url, p.redirect_prefix)
        for i, p in enumerate(policies)
    ]
    assert l7.evaluate(sorted(reordered, key=lambda p: p.position), req).kind == d.kind


def test_disabled_rules_and_policies_are_not_rendered() -> None:
    rules = (_rule("PATH", "EQUAL_TO", "/x"), l7.Rule("HOST_NAME", "EQUAL_TO", "h", enabled=False))
    p = l7.Policy("p", "REJECT", 1, rules)
    assert l7.evaluate(l7.rendered_policies([p]), l7.Request(path="/x")).kind == "reject"  # host rule left out
    only_disabled = l7.Policy("q", "REJECT", 1, rules[1:])
    off = l7.Policy("r", "REJECT", 2, rules[:1], enabled=False)
    assert l7.rendered_policies([only_disabled, off]) == []
    to_pool = l7.Policy("s", "REDIRECT_TO_POOL", 3, rules[:1], redirect_pool="down")
    assert l7.rendered_policies([to_pool], pool_enabled=lambda name: name != "down") == []


def test_redirect_prefix_keeps_path_and_query() -> None:
    p = l7.Policy("p", "REDIRECT_PREFIX", 1, (_rule("PATH", "STARTS_WITH", "/"),), redirect_prefix="https://n.example")
    d = l7.evaluate([p], l7.Request(path="/a/b?c=1"))
    assert (d.kind, d.code, d.location) == ("redirect", 302, "https://n.example/a/b?c=1")


# --------------------------------------------------------------------------------------
# Rendered configuration
# --------------------------------------------------------------------------------------


def test_rendered_frontend_lines(tmp_path: Path) -> None:
    pol = [
        {
            "name": "to-api",
            "redirect_pool": "api",
            "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "api.x"}],
        },
        {
            "name": "deny",
            "action": "REJECT",
            "position": 1,
            "rules": [
                {"type": "PATH", "compare_type": "STARTS_WITH", "value": "/admin"},
                {"type": "HEADER", "compare_type": "EQUAL_TO", "key": "X-Ok", "value": "1", "invert": True},
            ],
        },
        {
            "name": "img",
            "redirect_pool": "img",
            "admin_state_up": False,
            "rules": [{"type": "FILE_TYPE", "compare_type": "EQUAL_TO", "value": "png"}],
        },
    ]
    sc = load_scenario(_scenario(tmp_path, pol))
    text = render(sc, ids="name")
    fe = text[text.index("frontend http") : text.index("backend web:http")]
    assert fe.splitlines()[4:9] == [
        "    acl deny-rule1 path -m beg /admin",
        "    acl deny-rule2 req.hdr(X-Ok) -m str 1",
        "    http-request deny if deny-rule1 !deny-rule2",
        "    acl to-api-rule1 req.hdr(host) -i -m str api.x",
        "    use_backend api:http if to-api-rule1",
    ]
    assert "img" not in fe and "backend api:http" in text and "backend img:http" not in text


@pytest.mark.haproxy
def test_rendered_l7_configs_pass_haproxy_check(tmp_path: Path) -> None:
    """The bundled L7 scenario and one with every rule type pass ``haproxy -c``; policies
    out of HAProxy's order only warn (Octavia renders them in position order)."""
    from conformance.haproxy_harness import require_haproxy

    binary = require_haproxy()
    rules = [
        {"type": "HOST_NAME", "compare_type": "REGEX", "value": "^api[.]"},
        {"type": "PATH", "compare_type": "CONTAINS", "value": "/v1"},
        {"type": "FILE_TYPE", "compare_type": "REGEX", "value": "\\.jpe?g$"},
        {"type": "FILE_TYPE", "compare_type": "EQUAL_TO", "value": "gif"},
        {"type": "HEADER", "compare_type": "ENDS_WITH", "key": "X-Client", "value": '"a b"'},
        {"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "tier", "value": "gold"},
        {"type": "SSL_CONN_HAS_CERT", "compare_type": "EQUAL_TO", "value": "True"},
        {"type": "SSL_VERIFY_RESULT", "compare_type": "EQUAL_TO", "value": "0"},
        {"type": "SSL_DN_FIELD", "compare_type": "STARTS_WITH", "key": "CN", "value": "cli"},
    ]
    pol = [
        {"name": "to-api", "redirect_pool": "api", "rules": rules},
        {"name": "url", "redirect_url": "https://x.example/moved", "redirect_http_code": 308, "rules": rules[:2]},
        {"name": "deny", "action": "REJECT", "rules": rules[5:6]},
    ]
    cases = [
        load_scenario(ROOT / "scenarios" / "l7" / "host-path-routing.yaml"),
        load_scenario(_scenario(tmp_path, pol)),
    ]
    for i, sc in enumerate(cases):
        for loopback in (False, True):
            text = render(sc, loopback=loopback)
            cfg = tmp_path / f"h{i}.cfg"
            cfg.write_text(text, encoding="utf-8")
            res = subprocess.run([binary, "-c", "-f", str(cfg)], capture_output=True, text=True, timeout=30)
            assert res.returncode == 0, text + res.stdout + res.stderr
            if not loopback:  # the amphora rendering names a server-state file absent here
                continue
            if i == 0:
                assert "WARNING" not in res.stdout + res.stderr
            else:
                assert "will still be processed before" in res.stdout + res.stderr


# --------------------------------------------------------------------------------------
# Routing in simulated time
# --------------------------------------------------------------------------------------

MIX = [
    {"weight": 4, "host": "www.x", "path": "/index.html"},
    {"weight": 3, "host": "api.x", "path": "/v1/items"},
    {"weight": 2, "host": "www.x", "path": "/img/a.png"},
    {"weight": 1, "host": "api.x", "path": "/admin/x"},
    {"weight": 1, "host": "www.x", "path": "/old", "cookies": {"legacy": "1"}},
]
POLICIES = [
    {
        "name": "to-api",
        "redirect_pool": "api",
        "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "api.x"}],
    },
    {
        "name": "to-img",
        "redirect_pool": "img",
        "rules": [{"type": "FILE_TYPE", "compare_type": "EQUAL_TO", "value": "png"}],
    },
    {"name": "deny", "action": "REJECT", "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/admin"}]},
    {
        "name": "moved",
        "redirect_url": "https://new.x/",
        "redirect_http_code": 301,
        "rules": [{"type": "COOKIE", "compare_type": "EQUAL_TO", "key": "legacy", "value": "1"}],
    },
]


def _run(tmp_path: Path, policies: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Any:
    traffic = [{"listener": "http", "arrival": {"process": "constant", "rate": 100}, "requests": MIX}]
    sc = load_scenario(_scenario(tmp_path, policies, {"traffic": traffic, **(extra or {})}))
    return run_scenario(sc, base_dir=tmp_path)


def _pool_requests(res: Any) -> dict[str, int]:
    out: dict[str, int] = {}
    for row in res.members.itertuples():
        pool = str(row.name).rsplit("-", 1)[0]
        out[pool] = out.get(pool, 0) + int(row.requests)
    return out


def test_request_mix_is_routed_to_the_right_pools(tmp_path: Path) -> None:
    res = _run(tmp_path, POLICIES)
    n = res.summary["requests"]
    pools = _pool_requests(res)
    table = res.l7.set_index("policy")
    # every request is accounted for exactly once, per policy and per pool
    assert table["matched"].sum() == n
    assert pools["api"] == table.loc["to-api", "to_pool"]
    assert pools["img"] == table.loc["to-img", "to_pool"]
    assert pools["web"] == table.loc["(default)", "to_pool"]
    assert table.loc["deny", "rejected"] == res.summary["errors"]["403"]
    assert table.loc["moved", "redirected"] == res.summary["errors"]["301"]
    # and in the proportions of the mix (weights 4:3:2:1:1), within sampling error
    for name, weight in (("(default)", 4), ("to-api", 3), ("to-img", 2), ("deny", 1), ("moved", 1)):
        share = table.loc[name, "matched"] / n
        assert abs(share - weight / 11) < 0.03, (name, share)
    # api.x/admin is rejected: REJECT runs before use_backend although to-api comes first
    assert pools["api"] < n * 3.5 / 11


def test_a_policy_pool_that_goes_down_answers_503_without_falling_back(tmp_path: Path) -> None:
    hm = {"type": "HTTP", "delay": 1, "timeout": 1, "max_retries": 1, "max_retries_down": 1}
    data_pools = yaml.safe_load(yaml.safe_dump(BASE["loadbalancer"]["pools"]))
    for p in data_pools:
        p["healthmonitor"] = {**hm, "name": f"{p['name']}-hm"}
    events = [{"at": 5, "member": "img-1", "behaviour": "refuse"}, {"at": 5, "member": "img-2", "behaviour": "refuse"}]
    lb = {**BASE["loadbalancer"], "pools": data_pools}
    lb["listeners"] = [{**lb["listeners"][0], "l7policies": POLICIES}]
    traffic = [{"listener": "http", "arrival": {"process": "constant", "rate": 100}, "requests": MIX}]
    data = {**BASE, "loadbalancer": lb, "traffic": traffic, "events": events, "warmup": 10}
    path = tmp_path / "down.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    res = run_scenario(load_scenario(path), base_dir=tmp_path)
    table = res.l7.set_index("policy")
    # after warm-up the img pool is DOWN: every png request gets 503, none reaches web
    assert res.summary["errors"]["503"] == table.loc["to-img", "to_pool"] > 0
    pools = _pool_requests(res)
    assert pools.get("img", 0) == 0
    assert pools["web"] == table.loc["(default)", "to_pool"]


def test_position_decides_between_overlapping_pool_policies(tmp_path: Path) -> None:
    api_first = [
        {
            "name": "to-api",
            "redirect_pool": "api",
            "rules": [{"type": "HOST_NAME", "compare_type": "EQUAL_TO", "value": "api.x"}],
        },
        {
            "name": "to-img",
            "redirect_pool": "img",
            "rules": [{"type": "PATH", "compare_type": "STARTS_WITH", "value": "/"}],
        },
    ]
    img_first = [api_first[0], {**api_first[1], "position": 1}]
    a = _pool_requests(_run(tmp_path, api_first))
    b = _pool_requests(_run(tmp_path, img_first))
    assert a["api"] > 0 and a["img"] > 0 and b["api"] == 0 and b["img"] == a["api"] + a["img"]


def test_bundled_scenario_runs_and_holds_its_expectations() -> None:
    path = ROOT / "scenarios" / "l7" / "host-path-routing.yaml"
    res = run_scenario(load_scenario(path), base_dir=path.parent)
    assert res.passed
    table = res.l7.set_index("policy")
    assert table.loc["no-admin", "rejected"] == res.summary["errors"]["403"] > 0
    assert set(table.index) == {"no-admin", "legacy", "to-api", "to-static", "(default)"}


def test_schema_lists_the_l7_fields() -> None:
    schema = m.Scenario.model_json_schema()
    text = yaml.safe_dump(schema)
    for word in ("l7policies", "redirect_prefix", "compare_type", "SSL_DN_FIELD", "requests"):
        assert word in text


def test_l7_csv_is_written_and_read_back(tmp_path: Path) -> None:
    res = _run(tmp_path, POLICIES[:1])
    folder = res.save(tmp_path / "out")
    head = (folder / "l7.csv").read_text().splitlines()[0]
    assert head == "listener,policy,position,action,matched,redirected,rejected,to_pool"
    from lbsim.results.folder import RunResult

    again = RunResult.load(folder)
    assert again.l7 is not None and list(again.l7["policy"]) == list(res.l7["policy"])


def test_two_different_mixes_on_one_listener_are_refused(tmp_path: Path) -> None:
    src = {"listener": "http", "arrival": {"process": "constant", "rate": 1}}
    traffic = [{**src, "requests": MIX}, {**src, "requests": MIX[:1]}]
    out = _problems(_scenario(tmp_path, POLICIES, {"traffic": traffic}))
    assert "traffic[1].requests" in out and "already has a request mix" in out
    same = [{**src, "requests": MIX}, {**src, "requests": MIX}, src]
    load_scenario(_scenario(tmp_path, POLICIES, {"traffic": same}))
