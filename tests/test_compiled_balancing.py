"""The compiled balancers pick exactly as the Python ones (and so as HAProxy 2.6).

The kernels' ``pick``/``lc_release`` run on arrays copied from a Python balancer (the
copy the compiled data plane makes when it takes over). They are checked against the
orders recorded on HAProxy 2.6.12 that ``tests/test_balancing.py`` uses, and pick for
pick against the Python balancers on generated weights, backups, disabled servers and
operation sequences, starting from any state the Python balancer reached first.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.haproxy.balancing import make_balancer

pytest.importorskip("numba", reason="the compiled data plane needs numba (a dependency of lbsim)")

from lbsim.sim import compiled_kernels as k
from lbsim.sim.compiled import ALGORITHM_CODES, CompiledDataPlane

A, B, C, D = 0, 1, 2, 3


class Compiled:
    """A Python balancer's state in the compiled data plane's arrays, with its operations."""

    def __init__(self, algorithm: str, balancer: Any) -> None:
        n = len(balancer)
        self.alg = ALGORITHM_CODES[algorithm]
        self.s = SimpleNamespace(
            be_objs=[
                SimpleNamespace(
                    balancer=balancer, algorithm=algorithm, servers=[SimpleNamespace(gidx=i) for i in range(n)]
                )
            ]
        )
        CompiledDataPlane._build_balancers(self.s)  # type: ignore[arg-type]

    def pick(self, src: int = 0, port: int = 0) -> int:
        s = self.s
        return int(k.pick(0, self.alg, src, port, s.be_base, s.bst, s.bal, s.hp, s.hm, s.smap))

    def release(self, i: int) -> None:
        s = self.s
        k.lc_release(0, i, s.bst, s.bal, s.hp, s.hm)


def ip(a: int, b: int, c: int, d: int) -> int:
    return (a << 24) | (b << 16) | (c << 8) | d


def test_rr_reference_orders() -> None:
    """fwrr's order for weights 1,2,3 and configuration order for equal weights."""
    c = Compiled("ROUND_ROBIN", make_balancer("ROUND_ROBIN", [1, 2, 3]))
    assert [c.pick() for _ in range(36)] == [C, B, C, A, C, B] * 6
    c = Compiled("ROUND_ROBIN", make_balancer("ROUND_ROBIN", [1, 1, 1, 1]))
    assert [c.pick() for _ in range(12)] == [A, B, C, D] * 3


@pytest.mark.parametrize(
    ("weights", "backup", "usable", "expected"),
    [  # HAProxy 2.6.12, the picks before the first runtime command (test_balancing.RR_OBSERVED)
        ([1, 2, 3], None, None, [2, 1, 2, 0, 2, 1]),
        ([5, 1, 3, 2], None, None, [0, 2, 0, 3, 0]),
        ([2, 1, 3, 1], [False, False, True, True], None, [0, 0, 1, 0]),
        ([1, 2, 3], None, [True, False, True], [2, 2, 2, 0, 2, 2]),
    ],
)
def test_rr_recorded_haproxy_sequences(
    weights: list[int], backup: list[bool] | None, usable: list[bool] | None, expected: list[int]
) -> None:
    c = Compiled("ROUND_ROBIN", make_balancer("ROUND_ROBIN", weights, backup, usable))
    assert [c.pick() for _ in expected] == expected


@pytest.mark.parametrize(
    ("weights", "ops", "expected"),
    [  # HAProxy 2.6.12 with held connections (test_balancing.LC_OBSERVED)
        ([1, 3], ["p"] * 8, [0, 1, 1, 1, 1, 1, 0, 1]),
        (
            [1, 2, 3],
            ["p"] * 6 + ["r2", "r2", "p", "p", "r0", "p", "p", "r1", "p", "p"],
            [0, 1, 2, 2, 1, 2, 2, 2, 0, 2, 1, 1],
        ),
        (
            [2, 2, 2],
            ["p", "r0", "p", "r1", "p", "r2", "p", "p", "p", "r0", "p", "r1", "p"],
            [0, 1, 2, 0, 1, 2, 0, 1],
        ),
    ],
)
def test_lc_recorded_haproxy_sequences(weights: list[int], ops: list[str], expected: list[int]) -> None:
    c = Compiled("LEAST_CONNECTIONS", make_balancer("LEAST_CONNECTIONS", weights))
    got = []
    for op in ops:
        if op == "p":
            got.append(c.pick())
        else:
            c.release(int(op[1:]))
    assert got == expected


@pytest.mark.parametrize(
    ("weights", "backup", "expected"),
    [  # HAProxy 2.6.12: sources 127.0.0.1 .. 127.0.0.12 (test_balancing.SRC_OBSERVED)
        ([1, 2, 3], [False] * 3, [2, 0, 2, 1, 2, 1, 2, 0, 2, 1, 2, 1]),
        ([2, 4, 6], [False] * 3, [2, 0, 2, 1, 2, 1, 2, 0, 2, 1, 2, 1]),
        ([3, 1, 2, 2], [False, False, True, True], [0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1, 0]),
    ],
)
def test_source_recorded_haproxy_mapping(weights: list[int], backup: list[bool], expected: list[int]) -> None:
    c = Compiled("SOURCE_IP", make_balancer("SOURCE_IP", weights, backup))
    assert [c.pick(ip(127, 0, 0, n)) for n in range(1, 13)] == expected


@st.composite
def setups(draw: st.DrawFn) -> tuple[str, list[int], list[bool], list[bool]]:
    """An algorithm and servers with at least one usable active server."""
    algorithm = draw(st.sampled_from(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT"]))
    n = draw(st.integers(1, 12))
    weights = draw(st.lists(st.sampled_from([1, 1, 2, 3, 5, 16, 100, 256]), min_size=n, max_size=n))
    backup = [i > 0 and draw(st.integers(0, 4)) == 0 for i in range(n)]
    usable = [draw(st.integers(0, 5)) > 0 for _ in range(n)]
    usable[0] = True
    backup[0] = False
    return algorithm, weights, backup, usable


@settings(max_examples=150, deadline=None)
@given(setups(), st.integers(0, 40), st.lists(st.tuples(st.booleans(), st.integers(0, 2**32 - 1)), max_size=120))
def test_pick_for_pick_as_python(setup: tuple[str, list[int], list[bool], list[bool]], warm: int, ops: list[tuple[bool, int]]) -> None:
    """From any state the Python balancer reached (``warm`` picks and releases first),
    the compiled copy makes the same picks; leastconn releases connections as it goes."""
    algorithm, weights, backup, usable = setup
    py = make_balancer(algorithm, weights, backup, usable)
    held: list[int] = []
    for j in range(warm):
        held.append(py.pick(j * 7919, j))
        if py.tracks_connections and j % 3 == 2:
            py.release(held.pop(0))
    c = Compiled(algorithm, py)
    for release, src in ops:
        if release and held and py.tracks_connections:
            i = held.pop(src % len(held))
            py.release(i)
            c.release(i)
            continue
        port = 32768 + src % 28000
        want = py.pick(src, port)
        assert c.pick(src, port) == want
        held.append(want)
