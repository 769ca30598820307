"""Health checks: HAProxy's counter, status strings, check outcomes and timing.

Expected values come from reference/haproxy-semantics.md, octavia-semantics.md §3-4, the
scenario contract, and observations of a real HAProxy 2.6.12 on loopback (noted where
used). Counter properties are checked against an independent model written in terms of
"failures left before DOWN" / "successes so far", not HAProxy's raw health number.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lbsim.haproxy.healthcheck import (
    CheckSpec,
    EmptyExpectedCodesError,
    HealthCounter,
    InvalidExpectedCodesError,
    KeepalivedCounter,
    Window,
    check_outcome,
    data_plane_state,
    detection_window,
    expand_expected_codes,
    first_check_offsets,
    hang_check_duration,
    hang_check_duration_range,
    recovery_window,
)

EPS = 1e-9
thresholds = st.integers(min_value=1, max_value=10)  # Octavia: max_retries(_down) 1..10


def full_health(rise: int, fall: int) -> HealthCounter:
    """A counter that has passed a check since start-up (full health)."""
    c = HealthCounter(rise, fall)
    c.record(True)
    return c


def down_counter(rise: int, fall: int) -> HealthCounter:
    c = HealthCounter(rise, fall)
    c.record(False)  # the first failure after start-up takes it DOWN
    assert not c.is_up()
    return c


# ------------------------------------------------------------------ reference model
@dataclass
class Model:
    """The reference's rules, phrased as remaining failures / successes so far."""

    rise: int
    fall: int
    up: bool = True
    left: int = 1  # failures that still take an UP server DOWN (1 at start-up)
    got: int = 0  # consecutive successes of a DOWN server

    def record(self, success: bool) -> bool:
        was = self.up
        if self.up:
            if success:
                self.left = self.fall
            else:
                self.left -= 1
                if self.left == 0:
                    self.up, self.got = False, 0
        elif success:
            self.got += 1
            if self.got == self.rise:
                self.up, self.left = True, self.fall
        else:
            self.got = 0
        return self.up != was

    def status(self) -> str:
        if self.up:
            return "UP" if self.left == self.fall else f"UP {self.left}/{self.fall}"
        return "DOWN" if self.got == 0 else f"DOWN {self.got}/{self.rise}"


@settings(max_examples=300)
@given(thresholds, thresholds, st.lists(st.booleans(), max_size=60))
def test_counter_matches_reference_model(rise: int, fall: int, results: list[bool]) -> None:
    counter, model = HealthCounter(rise, fall), Model(rise, fall)
    assert counter.status_string() == model.status()
    for ok in results:
        assert counter.record(ok) == model.record(ok)
        assert counter.is_up() == model.up
        assert counter.status_string() == model.status()
        assert 0 <= counter.health <= rise + fall - 1


# ---------------------------------------------------------------- counter properties
@given(thresholds, thresholds)
def test_down_after_exactly_fall_failures_from_full_health(rise: int, fall: int) -> None:
    c = full_health(rise, fall)
    for _ in range(fall - 1):
        assert c.record(False) is False
        assert c.is_up()
    assert c.record(False) is True
    assert not c.is_up()
    assert c.status_string() == "DOWN"


@given(thresholds, thresholds)
def test_first_failure_after_start_up_takes_server_down(rise: int, fall: int) -> None:
    c = HealthCounter(rise, fall)
    assert c.is_up()
    assert c.record(False) is True
    assert not c.is_up()


@given(thresholds, thresholds)
def test_recovery_after_exactly_rise_successes_then_full_health(rise: int, fall: int) -> None:
    c = down_counter(rise, fall)
    for _ in range(rise - 1):
        assert c.record(True) is False
        assert not c.is_up()
    assert c.record(True) is True
    assert c.is_up()
    assert c.status_string() == "UP"
    for _ in range(fall - 1):  # jumped straight to full health: fall failures needed again
        c.record(False)
    assert c.is_up()


@given(thresholds, st.integers(2, 10), st.integers(1, 40), st.booleans())
def test_alternating_never_takes_up_server_down(
    rise: int, fall: int, n: int, fail_first: bool
) -> None:
    c = full_health(rise, fall)
    for i in range(n):
        assert c.record((i % 2 == 0) != fail_first) is False
        assert c.is_up()


@given(st.integers(2, 10), thresholds, st.integers(1, 40), st.booleans())
def test_alternating_never_brings_down_server_up(
    rise: int, fall: int, n: int, ok_first: bool
) -> None:
    c = down_counter(rise, fall)
    for i in range(n):
        assert c.record((i % 2 == 0) == ok_first) is False
        assert not c.is_up()


@given(thresholds, st.integers(1, 30))
def test_fail_fail_success_with_fall_3_never_goes_down(rise: int, repeats: int) -> None:
    c = full_health(rise, 3)
    for _ in range(repeats):
        for ok in (False, False, True):
            c.record(ok)
            assert c.is_up()
    c.record(False)
    c.record(False)
    assert c.is_up()


@settings(max_examples=200)
@given(thresholds, thresholds, st.lists(st.booleans(), max_size=60))
def test_from_full_health_down_exactly_when_a_run_of_fall_failures_completes(
    rise: int, fall: int, results: list[bool]
) -> None:
    c = full_health(rise, fall)
    run = 0
    for ok in results:
        run = 0 if ok else run + 1
        changed = c.record(ok)
        if run == fall:
            assert changed and not c.is_up()
            return
        assert not changed and c.is_up()


def test_status_strings_walkthrough_rise_2_fall_3() -> None:
    c = HealthCounter(2, 3)
    seen = [c.status_string()]
    for ok in (True, False, False, True, False, False, False, True, False, True, True):
        c.record(ok)
        seen.append(c.status_string())
    # "UP 1/3" at start-up was also what real HAProxy 2.6 showed (check status INI)
    assert seen == [
        "UP 1/3",
        "UP", "UP 2/3", "UP 1/3", "UP", "UP 2/3", "UP 1/3", "DOWN",
        "DOWN 1/2", "DOWN", "DOWN 1/2", "UP",
    ]  # fmt: skip


def test_status_strings_with_single_thresholds() -> None:
    c = HealthCounter(1, 1)
    assert c.status_string() == "UP"  # fall 1: there is no "going down" form
    c.record(False)
    assert c.status_string() == "DOWN"
    c.record(True)
    assert c.status_string() == "UP"  # rise 1: no "going up" form either


@given(thresholds, thresholds)
def test_reset_to_start_and_reload_restore(rise: int, fall: int) -> None:
    c = down_counter(rise, fall)
    c.reset_to_start()  # leaving maintenance: like start-up
    assert c.is_up()
    assert c.status_string() == ("UP" if fall == 1 else f"UP 1/{fall}")
    assert c.record(False) and not c.is_up()

    c = full_health(rise, fall)
    c.record(False)  # UP k/n before the reload ...
    c.restore_after_reload(was_up=True)  # ... comes back at full health
    assert c.status_string() == "UP"
    for _ in range(fall - 1):
        c.record(False)
    assert c.is_up()
    if rise > 1:
        c = down_counter(rise, fall)
        c.record(True)  # DOWN 1/rise before the reload ...
        c.restore_after_reload(was_up=False)  # ... comes back plain DOWN
        assert c.status_string() == "DOWN"


@pytest.mark.parametrize(("rise", "fall"), [(0, 3), (3, 0), (-1, 1)])
def test_counter_rejects_non_positive_thresholds(rise: int, fall: int) -> None:
    with pytest.raises(ValueError):
        HealthCounter(rise, fall)


# ------------------------------------------------------------------------ keepalived
@given(st.integers(0, 10), st.integers(0, 5))
def test_keepalived_down_after_retry_plus_one_failures_up_after_one_success(
    retry: int, early_successes: int
) -> None:
    c = KeepalivedCounter(retry)
    assert c.status_string() == "UP"
    for _ in range(early_successes):
        c.record(True)
    for _ in range(retry):
        assert c.record(False) is False
        assert c.status_string() == "UP"  # no transitional strings in LVS
    assert c.record(False) is True
    assert c.status_string() == "DOWN"
    assert c.record(False) is False
    assert c.record(True) is True
    assert c.status_string() == "UP"


@given(st.integers(1, 10), st.integers(1, 20))
def test_keepalived_success_resets_the_failure_run(retry: int, cycles: int) -> None:
    c = KeepalivedCounter(retry)
    for _ in range(cycles):
        for _ in range(retry):
            c.record(False)
        c.record(True)
        assert c.is_up()


# ------------------------------------------------------------------ data plane state
def test_data_plane_state() -> None:
    down = down_counter(2, 3)
    assert data_plane_state(down, admin_up=False, weight=1, checked=True) == "MAINT"
    assert data_plane_state(None, admin_up=False, weight=1, checked=False) == "MAINT"
    assert data_plane_state(None, admin_up=True, weight=1, checked=False) == "no check"
    assert data_plane_state(None, admin_up=True, weight=0, checked=False) == "no check"
    assert data_plane_state(down, admin_up=True, weight=1, checked=True) == "DOWN"
    up = full_health(2, 3)
    # weight 0: HAProxy itself still shows UP (the DRAIN rewrite is the amphora's)
    assert data_plane_state(up, admin_up=True, weight=0, checked=True) == "UP"
    assert data_plane_state(HealthCounter(2, 3), admin_up=True, weight=1, checked=True) == "UP 1/3"


# -------------------------------------------------------------------- expected codes
@pytest.mark.parametrize(
    ("codes", "expected"),
    [
        ("200", {200}),
        ("200,202", {200, 202}),
        ("200, 202", {200, 202}),
        ("200 ,  202,204", {200, 202, 204}),
        ("200-204", {200, 201, 202, 203, 204}),
        ("404-404", {404}),
        ("200,200", {200}),
    ],
)
def test_expand_expected_codes_examples(codes: str, expected: set[int]) -> None:
    assert expand_expected_codes(codes) == frozenset(expected)


@pytest.mark.parametrize(
    "codes",
    ["", "20", "2000", "200-", "-200", "200-204,206", "200,202-204", "200;202", "abc",
     " 200", "200 ", "200,", "200-204-206", "2xx"],
)  # fmt: skip
def test_expand_expected_codes_rejects_what_the_api_rejects(codes: str) -> None:
    with pytest.raises(InvalidExpectedCodesError):
        expand_expected_codes(codes)


def test_reversed_range_is_accepted_by_api_but_has_no_code() -> None:
    for codes in ("204-200", "201-200"):
        with pytest.raises(EmptyExpectedCodesError):
            expand_expected_codes(codes)
    assert issubclass(EmptyExpectedCodesError, ValueError)


@given(st.lists(st.integers(100, 999), min_size=1, max_size=8), st.sampled_from([",", ", ", " , "]))
def test_expand_expected_codes_lists(codes: list[int], sep: str) -> None:
    assert expand_expected_codes(sep.join(str(c) for c in codes)) == frozenset(codes)


@given(st.integers(100, 999), st.integers(0, 60))
def test_expand_expected_codes_ranges(low: int, width: int) -> None:
    high = min(999, low + width)
    got = expand_expected_codes(f"{low}-{high}")
    assert len(got) == high - low + 1
    assert min(got) == low and max(got) == high


# ------------------------------------------------------------------- check outcomes
# Expected success per (monitor type, behaviour), from the contract's behaviours and
# octavia-semantics §3.3/§3.5: TCP/TLS-HELLO are plain connects (a hung member accepts,
# an erroring one still accepts), PING tests the host, UDP-CONNECT only fails on a closed
# port, SCTP passes on the kernel's INIT-ACK.
OUTCOMES = {
    "HTTP":        {"healthy": True, "refuse": False, "hang": False, "error": False, "slow": True},
    "HTTPS":       {"healthy": True, "refuse": False, "hang": False, "error": False, "slow": True},
    "TCP":         {"healthy": True, "refuse": False, "hang": True, "error": True, "slow": True},
    "TLS-HELLO":   {"healthy": True, "refuse": False, "hang": True, "error": True, "slow": True},
    "PING":        {"healthy": True, "refuse": True, "hang": True, "error": True, "slow": True},
    "UDP-CONNECT": {"healthy": True, "refuse": False, "hang": True, "error": True, "slow": True},
    "SCTP":        {"healthy": True, "refuse": False, "hang": True, "error": True, "slow": True},
}  # fmt: skip


@pytest.mark.parametrize("monitor_type", sorted(OUTCOMES))
@pytest.mark.parametrize("behaviour", ["healthy", "refuse", "hang", "error", "slow"])
def test_outcome_table(monitor_type: str, behaviour: str) -> None:
    out = check_outcome(
        monitor_type, behaviour, status=500, timeout=2, delay=8, expected=frozenset({200})
    )
    assert out.success is OUTCOMES[monitor_type][behaviour]
    if behaviour == "hang" and monitor_type == "HTTP":
        assert 2 <= out.duration <= 5  # between timeout check and min(inter, timeout connect)
    elif behaviour == "hang" and monitor_type == "HTTPS":
        assert out.duration == pytest.approx(5)  # TLS never completes: min(inter, connect)
    else:
        assert out.duration == 0  # everything else answers at once on loopback-like links


def test_outcome_status_tokens() -> None:
    kw = {"timeout": 2.0, "delay": 8.0, "expected": frozenset({200})}
    assert check_outcome("HTTP", "refuse", **kw).check_status == "L4CON"  # type: ignore[arg-type]
    assert check_outcome("HTTP", "hang", **kw).check_status == "L7TOUT"  # type: ignore[arg-type]
    assert check_outcome("HTTPS", "hang", **kw).check_status == "L6TOUT"  # type: ignore[arg-type]
    err = check_outcome("HTTP", "error", status=503, **kw)  # type: ignore[arg-type]
    assert (err.check_status, err.code) == ("L7STS", 503)
    ok = check_outcome("HTTP", "healthy", **kw)  # type: ignore[arg-type]
    assert (ok.check_status, ok.code) == ("L7OK", 200)
    assert check_outcome("TCP", "hang", **kw).check_status == "L4OK"  # type: ignore[arg-type]


def test_error_passes_when_its_status_is_expected() -> None:
    expected = expand_expected_codes("500-504")
    assert check_outcome("HTTP", "error", status=503, timeout=3, delay=5, expected=expected).success
    assert not check_outcome(
        "HTTP", "error", status=505, timeout=3, delay=5, expected=expected
    ).success
    # a healthy member answers 200, which fails a monitor expecting only 202
    assert not check_outcome(
        "HTTP", "healthy", timeout=3, delay=5, expected=frozenset({202})
    ).success


def test_slow_fails_only_when_the_answer_comes_too_late() -> None:
    kw = {"timeout": 2.0, "delay": 8.0, "expected": frozenset({200}), "hang_position": 0.0}
    fast = check_outcome("HTTP", "slow", response_time=1.5, **kw)  # type: ignore[arg-type]
    assert fast.success and fast.duration == pytest.approx(1.5)
    late = check_outcome("HTTP", "slow", response_time=2.5, **kw)  # type: ignore[arg-type]
    assert not late.success and late.duration == pytest.approx(2.0)
    assert check_outcome("TCP", "slow", response_time=100, **kw).success  # type: ignore[arg-type]


def test_connect_time_is_added() -> None:
    kw = {"timeout": 2.0, "delay": 8.0, "expected": frozenset({200}), "connect_time": 0.01}
    assert check_outcome("TCP", "healthy", **kw).duration == pytest.approx(0.01)  # type: ignore[arg-type]
    assert check_outcome("HTTP", "refuse", **kw).duration == pytest.approx(0.01)  # type: ignore[arg-type]
    low, _ = hang_check_duration_range(2, 8, connect_time=0.01)
    assert low == pytest.approx(2.01)


@pytest.mark.parametrize(
    ("monitor_type", "behaviour", "checker"),
    [("HTTP", "crash", None), ("GRPC", "healthy", None), ("HTTPS", "healthy", "keepalived"),
     ("PING", "healthy", "keepalived"), ("UDP-CONNECT", "healthy", "haproxy")],
)  # fmt: skip
def test_outcome_rejects_impossible_combinations(
    monitor_type: str, behaviour: str, checker: str | None
) -> None:
    with pytest.raises(ValueError):
        check_outcome(monitor_type, behaviour, timeout=1, delay=5, checker=checker)  # type: ignore[arg-type]


def test_zero_delay_is_rejected_like_haproxy_inter_0() -> None:
    with pytest.raises(ValueError):
        check_outcome("HTTP", "hang", timeout=0, delay=0)


# --------------------------------------------------------------------- hang timing
# Durations measured on HAProxy 2.6.12, loopback, timeout connect 5 s, member that
# accepts and never answers: (type, timeout check, inter) -> observed durations.
MEASURED_HANG = [
    ("HTTP", 1, 2, [1.0]),
    ("HTTP", 1, 3, [1.5, 3.0]),
    ("HTTP", 1, 8, [3.77, 4.0, 4.25, 4.47, 4.55, 5.0]),
    ("HTTP", 3, 1, [3.0]),
    ("HTTP", 6, 8, [6.0]),
    ("HTTP", 0, 2, [2.0]),
    ("HTTP", 0, 8, [8.0]),
    ("HTTPS", 1, 3, [3.0]),
    ("HTTPS", 1, 8, [5.0]),
    ("HTTPS", 4, 2, [2.0]),
    ("HTTPS", 0, 7, [7.0]),
]


@pytest.mark.parametrize(("monitor_type", "timeout", "delay", "observed"), MEASURED_HANG)
def test_hang_range_covers_real_haproxy(
    monitor_type: str, timeout: float, delay: float, observed: list[float]
) -> None:
    low, high = hang_check_duration_range(timeout, delay, monitor_type=monitor_type)
    for d in observed:
        assert low - 0.01 <= d <= high + 0.01
    assert low >= min(timeout, delay) if timeout else low == delay


@given(st.integers(0, 30), st.integers(1, 60), st.floats(0, 1))
def test_hang_point_lies_in_range(timeout: int, delay: int, position: float) -> None:
    low, high = hang_check_duration_range(timeout, delay)
    assert low <= high
    assert low - EPS <= hang_check_duration(timeout, delay, position=position) <= high + EPS
    assert hang_check_duration(timeout, delay, position=0) == pytest.approx(low)
    assert hang_check_duration(timeout, delay, position=1) == pytest.approx(high)


def test_keepalived_hang_fails_after_its_connect_timeout() -> None:
    out = check_outcome("HTTP", "hang", timeout=3, delay=5, checker="keepalived")
    assert not out.success and out.duration == pytest.approx(3)
    assert hang_check_duration_range(0, 5, checker="keepalived") == (5.0, 5.0)


# --------------------------------------------------------------- first check offsets
@pytest.mark.parametrize(
    ("intervals", "expected_ms"),
    [
        ([5000, 5000, 5000], [0, 1666, 3333]),  # one pool, floor(D*k/n)
        ([2000, 2000], [0, 1000]),  # measured: second server first checked at 1.0 s
        ([3000, 3000], [0, 1500]),  # measured
        ([7000, 2000, 3000], [0, 666, 2000]),  # measured: M = 2000 spreads all three
        ([8000, 1300], [0, 650]),  # measured
        ([500, 2000, 800], [0, 666, 1333]),  # short interval raised to M = 2000
        ([500, 500], [0, 250]),  # no interval >= 1 s: M = 0
        ([10000], [0]),
        ([], []),
    ],
)
def test_first_check_offsets_examples(intervals: list[int], expected_ms: list[int]) -> None:
    assert first_check_offsets(intervals) == pytest.approx([m / 1000 for m in expected_ms])


@given(st.integers(1000, 120_000), st.integers(1, 50))
def test_first_check_offsets_one_pool(delay_ms: int, n: int) -> None:
    offsets = first_check_offsets([delay_ms] * n)
    for k, off in enumerate(offsets):
        assert off * 1000 == pytest.approx((delay_ms * k) // n)
        assert 0 <= off < delay_ms / 1000
    assert offsets == sorted(offsets)


def test_first_check_offsets_reject_zero_interval() -> None:
    with pytest.raises(ValueError):
        first_check_offsets([1000, 0])


# -------------------------------------------------------------- detection timing loop
def within(window: Window | None, t: float) -> bool:
    """``t`` lies in ``window`` up to float rounding."""
    return window is not None and window.earliest - EPS <= t <= window.latest + EPS


def run_checks(
    counter: HealthCounter | KeepalivedCounter,
    before: str,
    after: str,
    change_at: float,
    *,
    monitor_type: str,
    delay: float,
    timeout: float,
    hang_position: float,
    want_up: bool,
    checker: str | None = None,
) -> float:
    """A tiny deterministic check loop: check, wait ``delay`` after it ends, repeat.

    The member behaves as ``before`` until ``change_at`` and as ``after`` from then on;
    a check meets the behaviour at its start. Returns when the counter reaches
    ``want_up``.
    """
    t = 0.0
    for _ in range(10_000):
        out = check_outcome(
            monitor_type,
            before if t < change_at else after,
            timeout=timeout,
            delay=delay,
            hang_position=hang_position,
            checker=checker,  # type: ignore[arg-type]
        )
        t += out.duration
        if counter.record(out.success) and counter.is_up() == want_up:
            return t
        t += delay
    raise AssertionError("never changed state")


@settings(max_examples=300)
@given(
    delay=st.integers(1, 30),
    timeout=st.integers(1, 30),
    fall=thresholds,
    rise=thresholds,
    cycles=st.integers(0, 5),
    phase=st.floats(0, 0.999),
    hang_position=st.sampled_from([0.0, 0.5, 1.0]),
)
def test_detection_time_refuse_and_hang(
    delay: int, timeout: int, fall: int, rise: int, cycles: int, phase: float, hang_position: float
) -> None:
    fault_at = (cycles + phase) * delay  # healthy checks take no time: period = delay
    # refused: DOWN between (fall-1)*delay and fall*delay after the fault
    got = run_checks(
        full_health(rise, fall),
        "healthy", "refuse", fault_at,
        monitor_type="HTTP", delay=delay, timeout=timeout, hang_position=0.0, want_up=False,
    )  # fmt: skip
    assert (fall - 1) * delay - EPS <= got - fault_at < fall * delay + EPS
    window = detection_window("HTTP", "refuse", delay=delay, timeout=timeout, fall=fall)
    assert within(window, got - fault_at)

    # hung: each failing check also lasts its hang duration d
    d = hang_check_duration(timeout, delay, position=hang_position)
    got = run_checks(
        full_health(rise, fall),
        "healthy", "hang", fault_at,
        monitor_type="HTTP", delay=delay, timeout=timeout, hang_position=hang_position,
        want_up=False,
    )  # fmt: skip
    assert (fall - 1) * delay + fall * d - EPS <= got - fault_at < fall * delay + fall * d + EPS
    window = detection_window("HTTP", "hang", delay=delay, timeout=timeout, fall=fall)
    assert within(window, got - fault_at)
    if hang_position == 0.0 and timeout < delay:
        # the brief's rule of thumb: a hung member adds `timeout` per failing check
        assert got - fault_at >= (fall - 1) * delay + fall * timeout - EPS


@given(delay=st.integers(1, 30), timeout=st.integers(1, 30), rise=thresholds, fall=thresholds)
def test_hung_at_start_up_is_down_after_one_check(
    delay: int, timeout: int, rise: int, fall: int
) -> None:
    got = run_checks(
        HealthCounter(rise, fall),
        "hang", "hang", 0.0,
        monitor_type="HTTP", delay=delay, timeout=timeout, hang_position=0.0, want_up=False,
    )  # fmt: skip
    assert got == pytest.approx(hang_check_duration(timeout, delay, position=0.0))
    w = detection_window("HTTP", "hang", delay=delay, timeout=timeout, fall=fall, failures_needed=1)
    assert within(w, got)


@settings(max_examples=200)
@given(
    delay=st.integers(1, 30),
    timeout=st.integers(1, 30),
    rise=thresholds,
    cycles=st.integers(0, 5),
    phase=st.floats(0, 0.999),
    fault=st.sampled_from(["refuse", "hang", "error"]),
)
def test_recovery_time(
    delay: int, timeout: int, rise: int, cycles: int, phase: float, fault: str
) -> None:
    failing = check_outcome("HTTP", fault, timeout=timeout, delay=delay, hang_position=0.0)
    period = delay + failing.duration
    repaired_at = (cycles + phase) * period
    got = run_checks(
        down_counter(rise, 3),
        fault, "healthy", repaired_at,
        monitor_type="HTTP", delay=delay, timeout=timeout, hang_position=0.0, want_up=True,
    )  # fmt: skip
    # rise passing checks, the first one starting within one failing period of the repair
    assert (rise - 1) * delay - EPS <= got - repaired_at < (rise - 1) * delay + period + EPS
    w = recovery_window("HTTP", fault, delay=delay, timeout=timeout, rise=rise)
    assert within(w, got - repaired_at)


@given(
    delay=st.integers(3, 30),
    retry=st.integers(0, 10),
    cycles=st.integers(0, 5),
    phase=st.floats(0, 0.999),
)
def test_keepalived_udp_detection(delay: int, retry: int, cycles: int, phase: float) -> None:
    fault_at = (cycles + phase) * delay
    got = run_checks(
        KeepalivedCounter(retry),
        "healthy", "refuse", fault_at,
        monitor_type="UDP-CONNECT", delay=delay, timeout=3, hang_position=0.0, want_up=False,
    )  # fmt: skip
    assert retry * delay - EPS <= got - fault_at < (retry + 1) * delay + EPS
    spec = CheckSpec.from_octavia(
        {"type": "UDP-CONNECT", "delay": delay, "timeout": 3, "max_retries": 2,
         "max_retries_down": retry or None},
        pool_protocol="UDP",
    )  # fmt: skip
    if retry:
        w = spec.detection_window("refuse")
        assert within(w, got - fault_at)


@pytest.mark.parametrize(
    ("monitor_type", "behaviour"),
    [
        ("TCP", "hang"),
        ("TCP", "error"),
        ("PING", "refuse"),
        ("UDP-CONNECT", "hang"),
        ("HTTP", "slow"),
    ],
)
def test_undetectable_faults_have_no_window(monitor_type: str, behaviour: str) -> None:
    assert detection_window(monitor_type, behaviour, delay=5, timeout=3, fall=3) is None


# ----------------------------------------------------------------------- check spec
def test_check_spec_from_octavia() -> None:
    spec = CheckSpec.from_octavia(
        {"type": "HTTP", "delay": 5, "timeout": 3, "max_retries": 2,
         "max_retries_down": None, "expected_codes": "200-202"},
        timeout_member_connect_ms=4000,
    )  # fmt: skip
    assert (spec.delay, spec.timeout, spec.rise, spec.fall) == (5, 3, 2, 3)
    assert spec.expected == frozenset({200, 201, 202})
    assert spec.connect_timeout == pytest.approx(4.0)
    assert spec.checker == "haproxy"
    assert spec.hang_range() == (3.0, 4.0)
    counter = spec.new_counter()
    assert isinstance(counter, HealthCounter) and counter.status_string() == "UP 1/3"
    assert spec.outcome("error", status=201).success

    udp = CheckSpec.from_octavia(
        {"type": "TCP", "delay": 5, "timeout": 3, "max_retries": 2, "max_retries_down": 4},
        pool_protocol="UDP",
    )
    assert udp.checker == "keepalived"
    kc = udp.new_counter()
    assert isinstance(kc, KeepalivedCounter) and kc.failures_to_down == 5
