"""Active health checks as pure logic: the health counter, check outcomes, check timing.

Everything here is deterministic and free of waiting: the simulation engine runs one
check loop per checked server and asks this module what a check on a member with a given
behaviour returns and how long it takes, and how the server's health counter and status
string move. The rules come from ``reference/haproxy-semantics.md`` ("Active health
checks") and ``reference/octavia-semantics.md`` §3.3-3.5 and §4.1.

Facts looked up beyond the references (recorded so they can be re-checked):

* Status strings, HAProxy ``stats.c`` (``stats_fill_sv_stats``): a running server whose
  health is below ``rise+fall-1`` shows ``"UP %d/%d"`` with ``health-rise+1`` and ``fall``;
  a stopped server with health 0 shows ``"DOWN"``, otherwise ``"DOWN %d/%d"`` with
  ``health`` and ``rise``. A server without an enabled check shows ``"no check"``; admin
  maintenance shows ``"MAINT"`` whatever the health. So in ``UP k/n``, k is the number of
  further failures that take the server DOWN; in ``DOWN k/n``, k successes are already in.
* First-check spreading, HAProxy ``checks.c`` (``start_checks`` / ``start_check_task``):
  the first expiry is ``max(mininter, inter) * srvpos / nbcheck`` in integer milliseconds,
  ``mininter`` being the smallest interval of at least 1000 ms (0 when there is none).
* Reload with ``load-server-state-from-file``, HAProxy ``server_state.c``: a server saved
  as running comes back at full health, a stopped one at health 0.
* Octavia's check scripts: PING is ``ping -c 1 -w 1`` on the member address (an ICMP
  echo, so it says nothing about the service port); UDP-CONNECT is ``nc -uzv -w1`` (fails
  only on an ICMP port-unreachable, i.e. a closed port); SCTP sends an INIT and passes on
  INIT-ACK, fails on ABORT or after its timeout.
* keepalived's checkers (UDP/SCTP pools): while a real server is up, a failed check is
  retried ``retry`` times (``delay_before_retry`` apart) before it is removed, so it goes
  DOWN after ``retry + 1`` consecutive failures; one success brings it back; there is no
  rise count and no transitional string.
* Measured on a real HAProxy 2.6.12 on loopback (``timeout connect 5s``), member that
  accepts and never answers:

  - plain TCP check: passes (``L4OK``): an accepted connection is all it tests;
  - HTTP check with ``timeout check T``: ``L7TOUT`` after a duration between ``T`` and
    ``min(inter, timeout connect)`` (T=1 s: inter 2 s gave 1.0 s; inter 3 s gave 1.5 and
    3.0 s; inter 8 s gave 3.8, 4.0, 4.25, 4.5 and 5.0 s); when T is longer than that bound,
    exactly T (T=3 s, inter 1 s: 3.0 s; T=6 s, inter 8 s: 6.0 s);
  - no ``timeout check`` (Octavia ``timeout`` 0 renders ``timeout check 0s``): exactly
    ``inter``, even above ``timeout connect`` (inter 8 s: 8.0 s);
  - HTTPS check (``check-ssl``): the TLS handshake never completes, so ``timeout check``
    never starts: ``L6TOUT`` after exactly ``min(inter, timeout connect)`` (3.0 s, 5.0 s,
    2.0 s with T=4 s > inter 2 s), or ``inter`` without ``timeout check`` (7.0 s);
  - ``inter 0s`` is refused by the configuration parser, so a delay must be positive.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

__all__ = [
    "BEHAVIOURS",
    "DEFAULT_CONNECT_TIMEOUT",
    "HEALTHY_STATUS",
    "KEEPALIVED_DEFAULT_CONNECT_TIMEOUT",
    "MONITOR_TYPES",
    "CheckOutcome",
    "CheckSpec",
    "Checker",
    "Counter",
    "EmptyExpectedCodesError",
    "HealthCounter",
    "InvalidExpectedCodesError",
    "KeepalivedCounter",
    "Window",
    "check_outcome",
    "checker_for",
    "data_plane_state",
    "detection_window",
    "expand_expected_codes",
    "first_check_offsets",
    "hang_check_duration",
    "hang_check_duration_range",
    "recovery_window",
]

#: Octavia health monitor types (octavia-semantics.md §4.1).
MONITOR_TYPES = frozenset({"HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP"})
#: Member behaviours of the scenario contract.
BEHAVIOURS = frozenset({"healthy", "refuse", "hang", "error", "slow"})
#: The HTTP status a healthy (or merely slow) member answers with.
HEALTHY_STATUS = 200
#: Octavia's ``timeout_member_connect`` default (HAProxy ``timeout connect``), seconds.
DEFAULT_CONNECT_TIMEOUT = 5.0
#: keepalived's own ``connect_timeout`` when none is rendered (Octavia timeout 0), seconds.
KEEPALIVED_DEFAULT_CONNECT_TIMEOUT = 5.0

Checker = Literal["haproxy", "keepalived"]

_HTTP_TYPES = frozenset({"HTTP", "HTTPS"})
_L4_TYPES = frozenset({"TCP", "TLS-HELLO"})
_KEEPALIVED_ONLY = frozenset({"UDP-CONNECT", "SCTP"})
_KEEPALIVED_TYPES = frozenset({"UDP-CONNECT", "SCTP", "TCP", "HTTP"})


# --------------------------------------------------------------------------- counters
class Counter(Protocol):
    """What the engine needs from a server's health state, HAProxy's or keepalived's."""

    def record(self, success: bool) -> bool:
        """Apply one check result; True when the server went UP or DOWN."""
        ...

    def is_up(self) -> bool:
        """Whether the checker currently considers the server usable."""
        ...

    def status_string(self) -> str:
        """The status string the amphora reads for this server."""
        ...

    def reset_to_start(self) -> None:
        """Back to the state of a freshly started checker."""
        ...


class HealthCounter:
    """HAProxy's per-server health counter ``h`` in ``0 .. rise+fall-1``.

    UP when ``h >= rise``. A failure while UP lowers ``h`` by one, or, when that would
    leave the UP range, drops it to 0 (DOWN); a success while UP restores full health at
    once. A success while DOWN raises ``h`` by one, and reaching ``rise`` means full health
    (UP); a failure while DOWN resets ``h`` to 0. A new server starts at ``h = rise``: UP,
    but one failure from DOWN. The counter is consecutive, not a sliding window.
    """

    __slots__ = ("_health", "fall", "rise")

    def __init__(self, rise: int, fall: int) -> None:
        if rise < 1 or fall < 1:
            raise ValueError(f"rise and fall must be at least 1 (got rise={rise}, fall={fall})")
        self.rise = rise
        self.fall = fall
        self._health = rise

    @property
    def health(self) -> int:
        """The raw counter (HAProxy's ``check.health``, the ``check_health`` stats field)."""
        return self._health

    @property
    def full(self) -> int:
        """Full health, ``rise + fall - 1``: ``fall`` failures away from DOWN."""
        return self.rise + self.fall - 1

    def is_up(self) -> bool:
        """UP (takes traffic) when the counter is at least ``rise``."""
        return self._health >= self.rise

    def record(self, success: bool) -> bool:
        """Apply one check result; returns True when the server changed between UP and DOWN."""
        was_up = self.is_up()
        if success:
            if self._health < self.full:
                self._health += 1
                if self._health >= self.rise:
                    self._health = self.full
        elif was_up:
            self._health = self._health - 1 if self._health > self.rise else 0
        else:
            self._health = 0
        return self.is_up() != was_up

    def status_string(self) -> str:
        """HAProxy's ``show stat`` status for a checked, enabled server.

        ``UP``; ``UP k/fall`` while failing (k = failures still needed to go DOWN);
        ``DOWN``; ``DOWN k/rise`` while passing (k = successes so far).
        """
        if self.is_up():
            if self._health < self.full:
                return f"UP {self._health - self.rise + 1}/{self.fall}"
            return "UP"
        if self._health == 0:
            return "DOWN"
        return f"DOWN {self._health}/{self.rise}"

    def reset_to_start(self) -> None:
        """Start-up, or leaving maintenance: back to ``h = rise`` (UP, one failure from DOWN)."""
        self._health = self.rise

    def restore_after_reload(self, was_up: bool) -> None:
        """Reload with ``load-server-state-from-file``: full health if it was UP, else 0.

        Transitional states are not kept: ``UP 1/3`` comes back as ``UP``, ``DOWN 1/2`` as
        ``DOWN``.
        """
        self._health = self.full if was_up else 0

    def __repr__(self) -> str:
        return f"HealthCounter(rise={self.rise}, fall={self.fall}, health={self._health})"


class KeepalivedCounter:
    """keepalived's real-server state for UDP/SCTP pools (Octavia ``retry`` = max_retries_down).

    A server starts up. While up, ``retry`` failed checks are retried; the next
    consecutive failure removes it (DOWN). One successful check brings it back at once
    (Octavia does not render a rise count). The amphora reports only ``UP`` or ``DOWN``.
    """

    __slots__ = ("_failures", "_up", "retry")

    #: the engine skips a check that passes and changes nothing (``health == full``, as for
    #: :class:`HealthCounter`): for keepalived that is an up server with no failure pending
    full = 0

    @property
    def health(self) -> int:
        """0 for an up server with no failure pending; otherwise not ``full``."""
        return self._failures if self._up else -1

    def __init__(self, retry: int) -> None:
        if retry < 0:
            raise ValueError(f"retry must be >= 0 (got {retry})")
        self.retry = retry
        self._up = True
        self._failures = 0

    @property
    def failures_to_down(self) -> int:
        """Consecutive failures that take an up server down: ``retry + 1``."""
        return self.retry + 1

    def is_up(self) -> bool:
        """Whether the real server is in IPVS."""
        return self._up

    def record(self, success: bool) -> bool:
        """Apply one check result; returns True when the server was added or removed."""
        was_up = self._up
        if success:
            self._failures = 0
            self._up = True
        elif self._up:
            self._failures += 1
            if self._failures > self.retry:
                self._failures = 0
                self._up = False
        return self._up != was_up

    def status_string(self) -> str:
        """``UP`` (in IPVS) or ``DOWN`` (removed); keepalived has no transitional forms."""
        return "UP" if self._up else "DOWN"

    def reset_to_start(self) -> None:
        """A fresh keepalived: every real server starts up."""
        self._up = True
        self._failures = 0

    def __repr__(self) -> str:
        return f"KeepalivedCounter(retry={self.retry}, up={self._up}, failures={self._failures})"


def data_plane_state(counter: Counter | None, *, admin_up: bool, weight: int, checked: bool) -> str:
    """HAProxy's own status string for a server, as ``show stat`` prints it.

    ``MAINT`` for an admin-down (``disabled``) server, ``no check`` without a health
    monitor, otherwise the counter's string. ``weight`` does not change it: a weight-0
    server still shows ``UP`` in HAProxy; the amphora's rewrite of exactly ``UP`` with
    weight 0 into ``DRAIN`` happens when the heartbeat is built, not here.
    """
    del weight  # accepted for symmetry with the amphora's view; HAProxy ignores it here
    if not admin_up:
        return "MAINT"
    if not checked or counter is None:
        return "no check"
    return counter.status_string()


# --------------------------------------------------------------------- expected codes
_CODES_LIST = re.compile(r"[0-9]{3}(\s*,\s*[0-9]{3})*")
_CODES_RANGE = re.compile(r"([0-9]{3})-([0-9]{3})")


class InvalidExpectedCodesError(ValueError):
    """``expected_codes`` does not match Octavia's API pattern (the API answers 400)."""


class EmptyExpectedCodesError(ValueError):
    """A range with its bounds reversed: Octavia accepts it, but it expands to no code and
    the rendered ``http-check expect rstatus`` line has no pattern, which HAProxy refuses."""


def expand_expected_codes(codes: str) -> frozenset[int]:
    """Expand Octavia's ``expected_codes`` into the set of accepted HTTP statuses.

    Either a comma-separated list of 3-digit codes (``"200"``, ``"200, 202"``) or one
    range ``"200-204"``; lists and ranges cannot be mixed (octavia-semantics.md §4.1).
    Raises :class:`InvalidExpectedCodesError` for anything else and
    :class:`EmptyExpectedCodesError` for a reversed range.
    """
    if _CODES_LIST.fullmatch(codes):
        return frozenset(int(c) for c in codes.split(","))
    rng = _CODES_RANGE.fullmatch(codes)
    if rng:
        low, high = int(rng.group(1)), int(rng.group(2))
        if low > high:
            raise EmptyExpectedCodesError(f"expected_codes range {codes!r} contains no code")
        return frozenset(range(low, high + 1))
    raise InvalidExpectedCodesError(
        f"expected_codes {codes!r} is neither a list like '200, 202' nor a range like '200-204'"
    )


# --------------------------------------------------------------------------- outcomes
@dataclass(frozen=True)
class CheckOutcome:
    """One check's result and how long it ran before the next ``inter`` wait starts.

    ``check_status`` is HAProxy's ``check_status`` token (``L4OK``, ``L4CON``, ``L7OK``,
    ``L7STS``, ``L7TOUT``, ``L6TOUT``, ``PROCOK``, ``PROCERR``); keepalived checks use the
    same tokens for the same situations. ``code`` is the HTTP status seen, if any.
    """

    success: bool
    duration: float
    check_status: str = ""
    code: int | None = None


def checker_for(monitor_type: str, pool_protocol: str | None = None) -> Checker:
    """Which program runs the check: keepalived for UDP/SCTP pools (and their monitor
    types), HAProxy otherwise."""
    if monitor_type in _KEEPALIVED_ONLY:
        return "keepalived"
    if pool_protocol is not None and pool_protocol.upper() in {"UDP", "SCTP"}:
        return "keepalived"
    return "haproxy"


def _resolve_checker(monitor_type: str, checker: Checker | None) -> Checker:
    if monitor_type not in MONITOR_TYPES:
        raise ValueError(f"unknown health monitor type {monitor_type!r}")
    resolved = checker or checker_for(monitor_type)
    if resolved == "haproxy" and monitor_type in _KEEPALIVED_ONLY:
        raise ValueError(f"{monitor_type} monitors are run by keepalived, not HAProxy")
    if resolved == "keepalived" and monitor_type not in _KEEPALIVED_TYPES:
        raise ValueError(f"{monitor_type} monitors are not allowed on UDP/SCTP pools")
    return resolved


def hang_check_duration_range(
    timeout: float,
    delay: float,
    *,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    monitor_type: str = "HTTP",
    checker: Checker | None = None,
    connect_time: float = 0.0,
) -> tuple[float, float]:
    """Earliest and latest duration of a check on a member that accepts and never answers.

    HAProxy HTTP: from ``connect_time + timeout`` up to ``min(delay, connect_timeout)``
    (never below the former); without ``timeout check`` (0), exactly ``delay``. HAProxy
    HTTPS: the handshake never ends, so exactly ``min(delay, connect_timeout)``, or
    ``delay`` without ``timeout check``. keepalived HTTP: exactly its connect timeout
    (``timeout``, or keepalived's 5 s default). Check types that pass on a hung member
    (TCP, TLS-HELLO, PING, UDP-CONNECT, SCTP) return ``(connect_time, connect_time)``.
    """
    if delay <= 0:
        raise ValueError("delay must be positive (HAProxy refuses 'inter 0')")
    resolved = _resolve_checker(monitor_type, checker)
    if monitor_type not in _HTTP_TYPES:
        return (connect_time, connect_time)
    if resolved == "keepalived":
        limit = timeout if timeout > 0 else KEEPALIVED_DEFAULT_CONNECT_TIMEOUT
        return (connect_time + limit, connect_time + limit)
    if timeout <= 0:
        return (delay, delay)
    armed = min(delay, connect_timeout) if connect_timeout > 0 else delay
    if monitor_type == "HTTPS":
        return (armed, armed)
    low = connect_time + timeout
    return (low, max(low, armed))


def hang_check_duration(
    timeout: float,
    delay: float,
    *,
    position: float = 0.5,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    monitor_type: str = "HTTP",
    checker: Checker | None = None,
    connect_time: float = 0.0,
) -> float:
    """The point inside :func:`hang_check_duration_range` the twin uses.

    ``position`` 0 is the earliest, 1 the latest; the default 0.5 (the middle) keeps the
    error under half the range, since which end HAProxy lands on varies from run to run.
    An engine may instead draw ``position`` from its seeded random stream.
    """
    if not 0.0 <= position <= 1.0:
        raise ValueError(f"position must be within [0, 1] (got {position})")
    low, high = hang_check_duration_range(
        timeout,
        delay,
        connect_timeout=connect_timeout,
        monitor_type=monitor_type,
        checker=checker,
        connect_time=connect_time,
    )
    return low + position * (high - low)


def check_outcome(
    monitor_type: str,
    behaviour: str,
    *,
    status: int = 500,
    timeout: float,
    delay: float,
    expected: frozenset[int] = frozenset({HEALTHY_STATUS}),
    connect_time: float = 0.0,
    response_time: float = 0.0,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    hang_position: float = 0.5,
    checker: Checker | None = None,
) -> CheckOutcome:
    """What one health check on a member with ``behaviour`` returns, and how long it runs.

    * ``refuse``: every check type that reaches the service port fails at once
      (``L4CON``; ABORT for SCTP; port-unreachable for UDP-CONNECT).
    * ``hang`` (accepts, never answers): HTTP/HTTPS fail after the hang duration
      (:func:`hang_check_duration`); TCP/TLS-HELLO pass (the connection is accepted);
      SCTP passes (the kernel answers INIT with INIT-ACK); UDP-CONNECT passes (no ICMP
      error comes back).
    * ``error``: HTTP/HTTPS pass only if ``status`` is expected (``L7STS`` otherwise);
      every other type passes.
    * ``healthy`` / ``slow``: the member answers ``200`` after ``response_time``; an HTTP
      check fails like a hang if that reaches the check's time limit. The engine decides
      what ``response_time`` a slow member shows to a check; 0 means slowness is not seen.
    * PING pings the member's host: all these behaviours are of the service, so it passes.

    ``connect_time`` is added to every check that connects; ``status`` is only used by
    ``error`` (contract default 500).
    """
    if behaviour not in BEHAVIOURS:
        raise ValueError(f"unknown member behaviour {behaviour!r}")
    if delay <= 0:
        raise ValueError("delay must be positive (HAProxy refuses 'inter 0')")
    resolved = _resolve_checker(monitor_type, checker)

    if monitor_type == "PING":
        return CheckOutcome(True, connect_time, "PROCOK")
    if behaviour == "refuse":
        token = "PROCERR" if monitor_type in _KEEPALIVED_ONLY else "L4CON"
        return CheckOutcome(False, connect_time, token)
    if monitor_type in _KEEPALIVED_ONLY:
        return CheckOutcome(True, connect_time, "PROCOK")
    if monitor_type in _L4_TYPES:
        return CheckOutcome(True, connect_time, "L4OK")

    # HTTP / HTTPS
    hang_duration = hang_check_duration(
        timeout,
        delay,
        position=hang_position,
        connect_timeout=connect_timeout,
        monitor_type=monitor_type,
        checker=resolved,
        connect_time=connect_time,
    )
    timeout_token = "L6TOUT" if monitor_type == "HTTPS" and resolved == "haproxy" else "L7TOUT"
    if behaviour == "hang":
        return CheckOutcome(False, hang_duration, timeout_token)
    answered_at = connect_time + response_time
    if answered_at >= hang_duration:
        return CheckOutcome(False, hang_duration, timeout_token)
    code = status if behaviour == "error" else HEALTHY_STATUS
    if code in expected:
        return CheckOutcome(True, answered_at, "L7OK", code)
    return CheckOutcome(False, answered_at, "L7STS", code)


# ---------------------------------------------------------------------------- timing
def first_check_offsets(check_intervals_ms: Sequence[int]) -> list[float]:
    """When each check first runs after HAProxy starts, in seconds (HAProxy 2.6).

    ``check_intervals_ms`` lists the ``inter`` of every server with ``check`` in the
    process, in configuration order (disabled and backup servers included). With ``N``
    checks and ``M`` the smallest interval of at least 1000 ms (0 if none), check ``k``
    first runs ``floor(max(M, inter_k) * k / N)`` ms after start-up.
    """
    intervals = [int(i) for i in check_intervals_ms]
    if any(i <= 0 for i in intervals):
        raise ValueError("check intervals must be positive milliseconds")
    n = len(intervals)
    mininter = min((i for i in intervals if i >= 1000), default=0)
    return [(max(mininter, inter) * k // n) / 1000.0 for k, inter in enumerate(intervals)]


@dataclass(frozen=True)
class Window:
    """Earliest and latest (supremum) time of an event after its cause, in seconds."""

    earliest: float
    latest: float

    def __contains__(self, t: object) -> bool:
        return isinstance(t, int | float) and self.earliest <= t <= self.latest


def _duration_bounds(monitor_type: str, behaviour: str, kwargs: dict[str, object]) -> tuple[CheckOutcome, CheckOutcome]:
    """The outcome of a check at both ends of the hang range."""
    early = check_outcome(monitor_type, behaviour, hang_position=0.0, **kwargs)  # type: ignore[arg-type]
    late = check_outcome(monitor_type, behaviour, hang_position=1.0, **kwargs)  # type: ignore[arg-type]
    return early, late


def detection_window(
    monitor_type: str,
    behaviour: str,
    *,
    delay: float,
    timeout: float,
    fall: int,
    failures_needed: int | None = None,
    status: int = 500,
    expected: frozenset[int] = frozenset({HEALTHY_STATUS}),
    connect_time: float = 0.0,
    response_time: float = 0.0,
    healthy_duration: float = 0.0,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    checker: Checker | None = None,
) -> Window | None:
    """Time from a fault to DOWN, or None if checks of this type never see the fault.

    The first failing check is the first one that starts at or after the fault: it
    starts between 0 and one healthy period (``delay + healthy_duration``) later.
    ``failures_needed`` consecutive failing checks follow, each ending ``delay`` before
    the next starts; DOWN is set when the last one ends. ``failures_needed`` defaults to
    ``fall`` (a server at full health); it is 1 just after start-up or leaving
    maintenance, and ``retry + 1`` for keepalived. For a hung member the earliest uses
    the shortest hang duration and the latest the longest.
    """
    kwargs: dict[str, object] = {
        "status": status,
        "timeout": timeout,
        "delay": delay,
        "expected": expected,
        "connect_time": connect_time,
        "response_time": response_time,
        "connect_timeout": connect_timeout,
        "checker": checker,
    }
    early, late = _duration_bounds(monitor_type, behaviour, kwargs)
    if early.success or late.success:
        return None
    n = fall if failures_needed is None else failures_needed
    if n < 1:
        raise ValueError("at least one failure is needed to go DOWN")
    earliest = (n - 1) * (delay + early.duration) + early.duration
    latest = (delay + healthy_duration) + (n - 1) * (delay + late.duration) + late.duration
    return Window(earliest, latest)


def recovery_window(
    monitor_type: str,
    fault_behaviour: str,
    *,
    delay: float,
    timeout: float,
    rise: int,
    status: int = 500,
    expected: frozenset[int] = frozenset({HEALTHY_STATUS}),
    connect_time: float = 0.0,
    response_time: float = 0.0,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    checker: Checker | None = None,
) -> Window | None:
    """Time from a DOWN member turning healthy to UP (``rise`` successes; 1 for keepalived).

    The first passing check starts between 0 and one failing period (``delay`` plus the
    longest failing check) after the repair. None if a healthy member fails this check
    type (e.g. 200 not among ``expected``).
    """
    kwargs: dict[str, object] = {
        "status": status,
        "timeout": timeout,
        "delay": delay,
        "expected": expected,
        "connect_time": connect_time,
        "response_time": response_time,
        "connect_timeout": connect_timeout,
        "checker": checker,
    }
    ok = check_outcome(monitor_type, "healthy", **kwargs)  # type: ignore[arg-type]
    if not ok.success:
        return None
    _, failing = _duration_bounds(monitor_type, fault_behaviour, kwargs)
    n = 1 if _resolve_checker(monitor_type, checker) == "keepalived" else rise
    earliest = (n - 1) * (delay + ok.duration) + ok.duration
    latest = (delay + failing.duration) + earliest
    return Window(earliest, latest)


# ------------------------------------------------------------------------ check spec
@dataclass(frozen=True)
class CheckSpec:
    """A health monitor as the amphora renders it for one server (Octavia → HAProxy).

    ``inter`` = delay, ``timeout check`` = timeout, ``rise`` = max_retries, ``fall`` =
    max_retries_down, ``expected`` from expected_codes; ``connect_timeout`` is the
    listener's ``timeout_member_connect`` in seconds. UDP/SCTP pools are checked by
    keepalived, whose ``retry`` is max_retries_down.
    """

    monitor_type: str
    delay: float
    timeout: float
    rise: int
    fall: int
    expected: frozenset[int] = frozenset({HEALTHY_STATUS})
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    checker: Checker = "haproxy"

    @classmethod
    def from_octavia(
        cls,
        monitor: dict[str, object],
        *,
        pool_protocol: str = "HTTP",
        timeout_member_connect_ms: int = 5000,
    ) -> CheckSpec:
        """Build from Octavia API fields (``type``, ``delay``, ``timeout``, ``max_retries``,
        ``max_retries_down`` default 3, ``expected_codes`` default ``"200"``)."""
        monitor_type = str(monitor["type"])
        raw_down = monitor.get("max_retries_down")
        codes = monitor.get("expected_codes")
        expected = (
            expand_expected_codes(str(codes or "200")) if monitor_type in _HTTP_TYPES else frozenset({HEALTHY_STATUS})
        )
        return cls(
            monitor_type=monitor_type,
            delay=float(monitor["delay"]),  # type: ignore[arg-type]
            timeout=float(monitor["timeout"]),  # type: ignore[arg-type]
            rise=int(monitor["max_retries"]),  # type: ignore[call-overload]
            fall=int(raw_down) if raw_down is not None else 3,  # type: ignore[call-overload]
            expected=expected,
            connect_timeout=timeout_member_connect_ms / 1000.0,
            checker=checker_for(monitor_type, pool_protocol),
        )

    def new_counter(self) -> HealthCounter | KeepalivedCounter:
        """A fresh counter of the right kind for this checker."""
        if self.checker == "keepalived":
            return KeepalivedCounter(self.fall)
        return HealthCounter(self.rise, self.fall)

    def outcome(
        self,
        behaviour: str,
        *,
        status: int = 500,
        connect_time: float = 0.0,
        response_time: float = 0.0,
        hang_position: float = 0.5,
    ) -> CheckOutcome:
        """:func:`check_outcome` with this monitor's settings."""
        return check_outcome(
            self.monitor_type,
            behaviour,
            status=status,
            timeout=self.timeout,
            delay=self.delay,
            expected=self.expected,
            connect_time=connect_time,
            response_time=response_time,
            connect_timeout=self.connect_timeout,
            hang_position=hang_position,
            checker=self.checker,
        )

    def detection_window(self, behaviour: str, *, status: int = 500, at_start: bool = False) -> Window | None:
        """:func:`detection_window` for this monitor, from full health (or from start-up)."""
        needed = 1 if at_start else self.fall
        if self.checker == "keepalived":
            needed = self.fall + 1  # keepalived has no start-up special case
        return detection_window(
            self.monitor_type,
            behaviour,
            delay=self.delay,
            timeout=self.timeout,
            fall=self.fall,
            failures_needed=needed,
            status=status,
            expected=self.expected,
            connect_timeout=self.connect_timeout,
            checker=self.checker,
        )

    def hang_range(self) -> tuple[float, float]:
        """:func:`hang_check_duration_range` for this monitor."""
        return hang_check_duration_range(
            self.timeout,
            self.delay,
            connect_timeout=self.connect_timeout,
            monitor_type=self.monitor_type,
            checker=self.checker,
        )
