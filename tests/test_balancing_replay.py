"""The balancers' shortcuts give exactly what the plain computation gives.

Roundrobin's window replay, and the source hash's address map (which callers index
themselves instead of calling ``pick``).

:class:`~lbsim.haproxy.roundrobin.RoundRobinBalancer` replays a scheduling window that
starts from the same state as the previous one instead of recomputing it. The reference
here is the same class with the replay turned off (``REPLAY = False``): any sequence of
picks, redispatches, health and weight changes must give the same picks, and afterwards
the same scheduling state (positions, remainders, tree order).
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.haproxy.balancer import _IDX_MASK, _KEY_SHIFT
from lbsim.haproxy.balancing import make_balancer
from lbsim.haproxy.roundrobin import RoundRobinBalancer


class PlainRoundRobin(RoundRobinBalancer):
    """Roundrobin without the replay: every pick computed."""

    __slots__ = ()
    REPLAY = False


def state(b: RoundRobinBalancer) -> tuple[object, ...]:
    """The scheduling state that decides later picks (sequence numbers only as order)."""
    b.settle()
    groups = []
    for g in (b._act, b._bck):
        trees = tuple(
            tuple((e >> _KEY_SHIFT, e & _IDX_MASK) for e in sorted(e for e in h if b._live[e & _IDX_MASK] == e))
            for h in (g.curr, g.init, g.next)
        )
        groups.append((g.curr_pos, g.curr_weight, g.next_weight, g.count, trees))
    return tuple(groups), list(b._npos), list(b._rweight), list(b._lpos)


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("picks"), st.integers(0, 600)),
        st.tuples(st.just("avoid"), st.integers(0, 100)),
        st.tuples(st.just("usable"), st.integers(0, 100), st.booleans()),
        st.tuples(st.just("weight"), st.integers(0, 100), st.integers(0, 5)),
    ),
    max_size=40,
)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 5), st.booleans()), min_size=1, max_size=6), OPS)
def test_replay_equals_plain_computation(servers: list[tuple[int, bool]], ops: list[tuple]) -> None:
    weights = [w for w, _ in servers]
    backup = [bk for _, bk in servers]
    n = len(servers)
    fast, plain = RoundRobinBalancer(weights, backup), PlainRoundRobin(weights, backup)
    for op in ops:
        if op[0] == "picks":
            assert [fast.pick() for _ in range(op[1])] == [plain.pick() for _ in range(op[1])]
        elif op[0] == "avoid":
            assert fast.pick(avoid=op[1] % n) == plain.pick(avoid=op[1] % n)
        elif op[0] == "usable":
            fast.set_usable(op[1] % n, op[2])
            plain.set_usable(op[1] % n, op[2])
        else:
            fast.set_weight(op[1] % n, op[2])
            plain.set_weight(op[1] % n, op[2])
        assert fast.usable_weight() == plain.usable_weight()
    assert state(fast) == state(plain)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 4), min_size=1, max_size=6), st.lists(st.integers(0, 900), min_size=1, max_size=8))
def test_state_after_replayed_picks_equals_plain(weights: list[int], chunks: list[int]) -> None:
    """Settling mid-replay rebuilds the exact state, wherever in the window it happens."""
    n = len(weights)
    fast, plain = RoundRobinBalancer(weights, [False] * n), PlainRoundRobin(weights, [False] * n)
    for k in chunks:
        assert [fast.pick() for _ in range(k)] == [plain.pick() for _ in range(k)]
        assert state(fast) == state(plain)


def test_steady_rotation_is_replayed_and_a_change_stops_it() -> None:
    """Ten equal servers: windows of 16 x 10 picks repeat from the third window on."""
    b = RoundRobinBalancer([1] * 10, [False] * 10)
    seq = [b.pick() for _ in range(2 * 160)]
    assert b._play is None
    seq += [b.pick() for _ in range(5)]
    assert b._play is not None  # the third window is replayed
    seq += [b.pick() for _ in range(1000)]
    assert seq == [i % 10 for i in range(1325)]  # configuration order, replayed or not
    b.set_usable(3, False)
    assert b._play is None
    assert 3 not in [b.pick() for _ in range(1000)]


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(["ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT"]),
    st.lists(st.tuples(st.integers(0, 6), st.booleans()), min_size=1, max_size=6),
    st.lists(st.tuples(st.integers(0, 100), st.booleans(), st.integers(0, 6)), max_size=12),
    st.lists(st.integers(0, 2**32 - 1), min_size=1, max_size=20),
)
def test_address_map_indexes_like_pick(
    algorithm: str, servers: list[tuple[int, bool]], changes: list[tuple[int, bool, int]], addresses: list[int]
) -> None:
    """Whenever ``address_map()`` gives a map, ``map[address % len(map)]`` is the pick of
    every address (and port); only the plain source hash (more than one server) has one."""
    weights = [w for w, _ in servers]
    b = make_balancer(algorithm, weights, [bk for _, bk in servers])
    n = len(servers)
    for idx, usable, weight in [(0, True, weights[0]), *changes]:
        if algorithm.startswith("SOURCE_IP"):
            weight = weight and weights[idx % n]  # static: 0 or the configured weight
        b.set_usable(idx % n, usable)
        b.set_weight(idx % n, weight)
        table = b.address_map()
        if algorithm != "SOURCE_IP":
            assert table is None
        elif table is not None:
            for a in addresses:
                assert table[a % len(table)] == b.pick(a, a % 28000 + 32768)
        else:
            assert len({b.pick(a) for a in addresses}) <= 1  # one server in use, or none
