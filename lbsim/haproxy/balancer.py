"""The balancer interface and HAProxy's weight constants (see :mod:`lbsim.haproxy.balancing`)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from heapq import heapify
from typing import ClassVar, Final

BE_WEIGHT_SCALE: Final = 16
"""HAProxy scales user weights by 16 for the dynamic algorithms."""
SRV_UWGHT_RANGE: Final = 256
SRV_EWGHT_MAX: Final = SRV_UWGHT_RANGE * BE_WEIGHT_SCALE
MAX_WEIGHT: Final = 256
"""HAProxy accepts weights 0..256 (Octavia's API allows the same range)."""

ALGORITHMS: Final = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")

_U32: Final = 0xFFFFFFFF

# Heap entries are single ints ``key << 64 | seq << 20 | idx`` (int comparisons are
# much cheaper than tuple comparisons). ``seq`` is a global insertion counter: it
# reproduces the insertion order HAProxy's ebtrees keep among equal keys. Each
# server remembers its one live entry; any other entry of it is stale and skipped
# when it reaches the top (lazy deletion). Heaps are compacted when stale entries
# outnumber live ones, which keeps every operation O(log n) amortised.
_IDX_BITS: Final = 20
_IDX_MASK: Final = (1 << _IDX_BITS) - 1
_SEQ_SHIFT: Final = _IDX_BITS
_KEY_SHIFT: Final = 64
MAX_SERVERS: Final = 1 << _IDX_BITS


class Balancer(ABC):
    """One HAProxy backend's server choice.

    Servers are indexed ``0..n-1`` in configuration order. A server receives new
    picks only while it is *usable*: ``set_usable(idx, True)`` (UP, not MAINT) and a
    non-zero weight. ``pick`` returns ``-1`` when nothing is usable (HAProxy answers
    503). ``pick`` counts as a new active connection on the chosen server; ``release``
    ends one (only leastconn uses that bookkeeping).
    """

    #: whether :meth:`release` does anything (callers may skip it when not)
    tracks_connections: ClassVar[bool] = False

    __slots__ = ("_backup", "_n", "_up", "_weights")

    def __init__(
        self,
        weights: Sequence[int],
        backup: Sequence[bool],
        usable: Sequence[bool] | None = None,
    ) -> None:
        """Configure servers in order; ``usable`` (default all True) is the start-up
        state, e.g. False for a member rendered ``disabled`` (admin_state_up False).
        Passing it here is equivalent to ``set_usable(i, False)`` before the first pick
        (checked against HAProxy for roundrobin)."""
        n = len(weights)
        if n > MAX_SERVERS:
            raise ValueError(f"at most {MAX_SERVERS} servers per backend")
        if len(backup) != n or (usable is not None and len(usable) != n):
            raise ValueError("weights, backup and usable must have the same length")
        for w in weights:
            _check_weight(w)
        self._n = n
        self._weights = [int(w) for w in weights]
        self._backup = [bool(b) for b in backup]
        self._up = [True] * n if usable is None else [bool(u) for u in usable]

    def __len__(self) -> int:
        """Number of configured servers."""
        return self._n

    def is_usable(self, idx: int) -> bool:
        """Whether ``idx`` may receive new picks (UP and weight > 0); it may still be
        unused because it is a backup and an active server is usable."""
        return self._up[idx] and self._weights[idx] > 0

    def weight(self, idx: int) -> int:
        """Current user weight of ``idx``."""
        return self._weights[idx]

    @abstractmethod
    def set_usable(self, idx: int, usable: bool) -> None:
        """Health/admin state change: DOWN, MAINT or unreachable → False; UP → True."""

    @abstractmethod
    def set_weight(self, idx: int, weight: int) -> None:
        """Run-time weight change (``set server … weight``); 0 means DRAIN."""

    @abstractmethod
    def pick(self, src_ip: int = 0, src_port: int = 0, avoid: int = -1) -> int:
        """Choose the server for a new connection; -1 when none is usable.

        ``src_ip`` is the IPv4 client address as an unsigned 32-bit integer (used by
        the hash algorithms only). ``avoid`` is the server a redispatch moves away from.
        """

    def address_map(self) -> list[int] | None:
        """The map when :meth:`pick` is ``map[src_ip % len(map)]`` for any address (a
        source hash with more than one server in use), else None. It changes only with
        :meth:`set_usable` and :meth:`set_weight`: callers may keep it until they call one."""
        return None

    def release(self, idx: int) -> None:  # noqa: B027 - deliberate no-op default
        """A connection to ``idx`` ended (leastconn bookkeeping; no-op otherwise)."""

    @abstractmethod
    def usable_weight(self) -> int:
        """Sum of user weights of the group in use (HAProxy's ``tot_weight``, which it
        stores scaled); 0 means the backend is DOWN."""

    @abstractmethod
    def active_connections(self, idx: int) -> int:
        """Connections currently counted on ``idx`` (leastconn only; 0 otherwise)."""


def _check_weight(w: int) -> None:
    if not 0 <= int(w) <= MAX_WEIGHT:
        raise ValueError(f"weight must be within 0..{MAX_WEIGHT}, got {w}")


def _cdiv(a: int, b: int) -> int:
    """C integer division (truncates toward zero), for the rare negative operands."""
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b > 0) else -q


def _curr_key(npos: int, rweight: int, ew: int) -> int:
    """Sort key of the "current" tree: position, then heavier, then less remainder."""
    return (SRV_UWGHT_RANGE * npos + (SRV_EWGHT_MAX + rweight - ew) // BE_WEIGHT_SCALE) & _U32


def _compact(heap: list[int], live: list[int]) -> None:
    """Drop stale entries from a lazily-deleted heap."""
    heap[:] = [e for e in heap if live[e & _IDX_MASK] == e]
    heapify(heap)
