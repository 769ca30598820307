"""HAProxy server selection for one backend: ``roundrobin``, ``leastconn``, ``source``.

This is the twin's hottest path (one call per simulated request), so every algorithm
is written for speed: O(log n) per pick and per state change for ROUND_ROBIN and
LEAST_CONNECTIONS (binary heaps with lazy deletion), O(1) per pick for SOURCE_IP
(a precomputed map, rebuilt only when the usable set changes).

Fidelity is the point: the algorithms reproduce HAProxy 2.6 pick for pick, including
its integer arithmetic and tie-breaking, and ``tests/conformance`` checks them against
a real HAProxy on loopback. The rules below were learnt from HAProxy's sources
(``src/lb_fwrr.c``, ``src/lb_fwlc.c``, ``src/lb_map.c``, ``src/backend.c``) and the
reference ``haproxy-semantics.md``; the code is our own.

Facts used (HAProxy 2.6):

* Dynamic algorithms (roundrobin, leastconn) scale user weights by
  ``BE_WEIGHT_SCALE = 16`` (effective weight ``ew = 16 * weight``), ``SRV_EWGHT_MAX =
  256 * 16``. HAProxy's ebtrees keep duplicate keys in insertion order; a monotonic
  sequence number reproduces that here.
* A server is *usable* when it is UP (not DOWN / MAINT) and its weight is non-zero.
  Backup servers are used only when no non-backup server is usable; Octavia always
  sets ``option allbackups``, so then all usable backups share the traffic.
* ``roundrobin`` (lb_fwrr): each group (active, backup) has a position counter
  ``curr_pos`` that advances by one per pick, a "current" tree ordered by each
  server's next position ``npos`` (then heavier first, then accumulated remainder),
  an "init" tree ordered by weight (servers waiting to be placed) and a "next" tree
  for servers whose next position falls beyond the current window. A server that
  is picked advances by ``next_weight // ew`` positions, carrying the remainder.
  When nothing in the current tree is due the heaviest "init" server is taken; when
  both are empty the trees switch and a new window starts at ``curr_pos =
  curr_weight = next_weight``. A server leaving is dropped from its tree at once; a
  server rejoining is placed at ``curr_pos + (next_weight + curr_weight - curr_pos)
  // ew``. Weight changes keep the server's last position (``lpos``) and re-step it.
* ``leastconn`` (lb_fwlc): servers are ordered by the key
  ``0 if c == 0 else (c + 1) * 4096 // ew`` where ``c`` is the number of active
  connections; a server is re-inserted (so goes after its equals) whenever its key
  changes, i.e. on every pick and every release. Idle servers therefore rotate in
  the order in which they became idle.
* ``source`` with ``hash-type map-based`` (the default): the map has one slot per
  unit of ``tot_weight`` where weights are divided by the GCD of all configured
  weights; slot ``o`` goes to the server with the largest ``(wscore + tot) // tot``
  after every usable server of the group added its weight to its ``wscore``
  (first in configuration order wins ties), and the winner then loses ``tot``.
  The IPv4 source address, as a big-endian 32-bit integer, modulo ``tot_weight``
  indexes the map (no hashing when only one server is in use: slot 0). Static
  algorithms only accept weights ``0`` and the configured weight at run time.
* SOURCE_IP_PORT is refused by Octavia's amphora driver. Other providers (OVN) offer
  it; the twin simulates it as the same map indexed by
  ``fmix32(address ^ fmix32(port))`` (MurmurHash3's 32-bit finaliser), documented
  here as a twin choice, not an HAProxy behaviour.
* Redispatch (``retries`` + ``option redispatch``) asks the LB for a server other
  than the failed one: ``pick(..., avoid=idx)`` implements HAProxy's
  ``srvtoavoid`` for roundrobin and leastconn (the avoided server is still returned
  if it is the only choice); the map-based source hash ignores it, as HAProxy does.
  Checked against HAProxy 2.6 with a refusing server that stays UP: serve
  ``i = pick()``; if ``i`` refuses, ``release(i)`` then ``pick(avoid=i)`` (retries on
  the same server do not consult the balancer).
* Roundrobin is smooth but not exact in every window: from the second window of
  ``Σweights`` picks on each server gets exactly its weight per window; any
  ``Σweights`` consecutive picks, including HAProxy's first window (weights 3,2,3
  start A C A C B A C A), are within one pick of it.
* A configuration reload (how Octavia applies member/pool updates) starts a new
  HAProxy process: callers should build a new balancer then, not call
  ``set_weight`` (which models the runtime API ``set server … weight``).
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from heapq import heapify, heappop, heappush, heapreplace
from typing import ClassVar, Final

__all__ = [
    "ALGORITHMS",
    "Balancer",
    "LeastConnBalancer",
    "RoundRobinBalancer",
    "SourceHashBalancer",
    "fmix32",
    "make_balancer",
]

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


# --------------------------------------------------------------------------------------
# roundrobin (lb_fwrr)
# --------------------------------------------------------------------------------------


class _FwrrGroup:
    """Scheduling state of one group (active or backup servers) for roundrobin."""

    __slots__ = ("count", "curr", "curr_pos", "curr_weight", "init", "next", "next_weight")

    def __init__(self) -> None:
        self.curr: list[int] = []  # ordered by (position, heavier first, remainder)
        self.init: list[int] = []  # servers waiting to be placed, heaviest first
        self.next: list[int] = []  # servers placed in the next window
        self.curr_pos = 0
        self.curr_weight = 0
        self.next_weight = 0  # sum of usable effective weights (HAProxy tot_wact/bck)
        self.count = 0  # number of usable servers in the group


class RoundRobinBalancer(Balancer):
    """HAProxy ``balance roundrobin`` (fast weighted round robin, lb_fwrr.c)."""

    __slots__ = ("_act", "_bck", "_ew", "_live", "_lpos", "_npos", "_rweight", "_seqno", "_tree")

    def __init__(
        self,
        weights: Sequence[int],
        backup: Sequence[bool],
        usable: Sequence[bool] | None = None,
    ) -> None:
        super().__init__(weights, backup, usable)
        n = self._n
        self._ew = [w * BE_WEIGHT_SCALE for w in self._weights]
        self._npos = [0] * n
        self._lpos = [0] * n
        self._rweight = [0] * n
        self._live = [-1] * n  # the server's live heap entry, -1 when in no tree
        self._tree: list[list[int] | None] = [None] * n
        self._seqno = 0
        self._act = _FwrrGroup()
        self._bck = _FwrrGroup()
        for i in range(n):
            if self.is_usable(i):
                g = self._bck if self._backup[i] else self._act
                g.next_weight += self._ew[i]
                g.count += 1
        for g in (self._act, self._bck):
            g.curr_pos = g.curr_weight = g.next_weight
        for i in range(n):
            if self.is_usable(i):
                g = self._bck if self._backup[i] else self._act
                self._queue_by_weight(g.init, i)

    # -- tree primitives -------------------------------------------------------------

    def _push(self, heap: list[int], key: int, i: int) -> None:
        s = self._seqno
        self._seqno = s + 1
        e = (key << _KEY_SHIFT) | (s << _SEQ_SHIFT) | i
        self._live[i] = e
        self._tree[i] = heap
        heappush(heap, e)

    def _queue_by_weight(self, heap: list[int], i: int) -> None:
        self._push(heap, SRV_EWGHT_MAX - self._ew[i], i)

    def _dequeue(self, i: int) -> None:
        """Remove ``i`` from its tree (lazily: its entry goes stale)."""
        heap = self._tree[i]
        self._live[i] = -1
        self._tree[i] = None
        if heap is not None and len(heap) > 2 * self._n + 16:
            _compact(heap, self._live)

    def _first(self, heap: list[int]) -> int:
        live = self._live
        while heap:
            e = heap[0]
            i = e & _IDX_MASK
            if live[i] == e:
                return i
            heappop(heap)
        return -1

    def _group(self, i: int) -> _FwrrGroup:
        return self._bck if self._backup[i] else self._act

    def _queue_srv(self, g: _FwrrGroup, i: int) -> None:
        """Place a dequeued server in the current or next tree according to npos."""
        if not (self._up[i] and self._ew[i] > 0):
            self._tree[i] = None
            return
        npos = self._npos[i]
        cw = g.curr_weight
        if npos >= 2 * cw or npos >= cw + g.next_weight:
            self._npos[i] = npos - cw
            self._queue_by_weight(g.next, i)
        else:
            self._push(g.curr, _curr_key(npos, self._rweight[i], self._ew[i]), i)

    def _get_srv(self, g: _FwrrGroup, i: int) -> None:
        """Prepare ``i``'s position before it is extracted from its tree."""
        t = self._tree[i]
        if t is g.init:
            self._npos[i] = 0
            self._rweight[i] = 0
        elif t is g.next:
            self._npos[i] += g.curr_weight
        elif t is None:
            self._npos[i] = g.curr_pos

    def _update_position(self, g: _FwrrGroup, i: int) -> None:
        """Advance a picked server by next_weight / ew, carrying the remainder."""
        ew = self._ew[i]
        p = self._npos[i] or g.curr_pos
        self._lpos[i] = p
        nw = g.next_weight
        r = self._rweight[i] + nw % ew
        p += nw // ew
        if r >= ew:
            r -= ew
            p += 1
        self._npos[i] = p
        self._rweight[i] = r

    # -- state changes -----------------------------------------------------------------

    def _apply(self, i: int, was: bool, now: bool, old_ew: int) -> None:
        g = self._group(i)
        if was and not now:
            g.next_weight -= old_ew
            g.count -= 1
            self._dequeue(i)
        elif now and not was:
            ew = self._ew[i]
            g.next_weight += ew
            g.count += 1
            self._get_srv(g, i)
            self._npos[i] = g.curr_pos + _cdiv(g.next_weight + g.curr_weight - g.curr_pos, ew)
            self._queue_srv(g, i)
        elif now and was and old_ew != self._ew[i]:
            ew = self._ew[i]
            g.next_weight += ew - old_ew
            if self._tree[i] is g.init:
                self._dequeue(i)
                self._queue_by_weight(g.init, i)
            else:
                self._get_srv(g, i)
                prev_next = self._npos[i]
                step = g.next_weight // ew
                npos = self._lpos[i] + step
                self._rweight[i] = 0
                if npos > prev_next:
                    npos = prev_next
                if npos < g.curr_pos + 2:
                    npos = g.curr_pos + step
                self._npos[i] = npos
                self._dequeue(i)
                self._queue_srv(g, i)

    def set_usable(self, idx: int, usable: bool) -> None:
        """See :meth:`Balancer.set_usable`; O(log n)."""
        was = self.is_usable(idx)
        self._up[idx] = bool(usable)
        self._apply(idx, was, self.is_usable(idx), self._ew[idx])

    def set_weight(self, idx: int, weight: int) -> None:
        """See :meth:`Balancer.set_weight`; O(log n)."""
        _check_weight(weight)
        was = self.is_usable(idx)
        old_ew = self._ew[idx]
        self._weights[idx] = int(weight)
        self._ew[idx] = int(weight) * BE_WEIGHT_SCALE
        self._apply(idx, was, self.is_usable(idx), old_ew)

    # -- picking -------------------------------------------------------------------------

    def pick(self, src_ip: int = 0, src_port: int = 0, avoid: int = -1) -> int:
        """Next server in HAProxy's smooth weighted order; O(log n)."""
        g = self._act
        if not g.count:
            g = self._bck
            if not g.count:
                return -1
        if avoid >= 0:
            return self._pick_avoiding(g, avoid)
        if not g.curr_weight:
            g.curr_pos = g.curr_weight = g.next_weight
        live = self._live
        npos = self._npos
        switched = False
        # fwrr_get_server_from_group, inlined: the first due server of "curr", else
        # the heaviest server waiting in "init", else the first of "curr" anyway.
        while True:
            curr = g.curr
            s1 = -1
            while curr:
                e = curr[0]
                s1 = e & _IDX_MASK
                if live[s1] == e:
                    break
                heappop(curr)
                s1 = -1
            if s1 >= 0 and npos[s1] <= g.curr_pos:
                srv, heap = s1, curr
                break
            init = g.init
            srv = -1
            while init:
                e = init[0]
                srv = e & _IDX_MASK
                if live[srv] == e:
                    break
                heappop(init)
                srv = -1
            if srv >= 0:
                npos[srv] = 0
                self._rweight[srv] = 0
                heap = init
                break
            if s1 >= 0:
                srv, heap = s1, curr
                break
            if switched:  # unreachable while count > 0; kept as HAProxy's guard
                return -1
            switched = True
            g.init, g.next = g.next, g.init
            g.curr_pos = g.curr_weight = g.next_weight
        # fwrr_update_position, inlined
        ew = self._ew[srv]
        pos = g.curr_pos
        p = npos[srv] or pos
        self._lpos[srv] = p
        nw = g.next_weight
        r = self._rweight[srv] + nw % ew
        p += nw // ew
        if r >= ew:
            r -= ew
            p += 1
        self._rweight[srv] = r
        g.curr_pos = pos + 1
        # dequeue (srv is the live top of ``heap``) and fwrr_queue_srv, inlined
        cw = g.curr_weight
        s = self._seqno
        self._seqno = s + 1
        if p >= 2 * cw or p >= cw + nw:
            npos[srv] = p - cw
            heappop(heap)
            e = ((SRV_EWGHT_MAX - ew) << _KEY_SHIFT) | (s << _SEQ_SHIFT) | srv
            nxt = g.next
            self._tree[srv] = nxt
            heappush(nxt, e)
        else:
            npos[srv] = p
            key = (SRV_UWGHT_RANGE * p + (SRV_EWGHT_MAX + r - ew) // BE_WEIGHT_SCALE) & _U32
            e = (key << _KEY_SHIFT) | (s << _SEQ_SHIFT) | srv
            if heap is curr:
                heapreplace(curr, e)
            else:
                heappop(heap)
                heappush(curr, e)
            self._tree[srv] = curr
        live[srv] = e
        return srv

    def _pick_avoiding(self, g: _FwrrGroup, avoid: int) -> int:
        """fwrr_get_next_server with ``srvtoavoid`` (redispatch); not on the hot path."""
        switched = False
        avoided = -1  # HAProxy chains the avoided server and re-queues it at the end
        while True:
            if g.curr_weight == 0:
                g.curr_pos = g.curr_weight = g.next_weight
            while True:
                srv = self._from_group(g)
                if srv >= 0 or switched:
                    break
                switched = True
                g.init, g.next = g.next, g.init
                g.curr_pos = g.curr_weight = g.next_weight
            if srv < 0:
                srv = avoided  # only the avoided server is left (or nothing)
                break
            self._update_position(g, srv)
            heap = self._tree[srv]
            assert heap is not None
            heappop(heap)  # srv is the live top of the heap it came from
            self._live[srv] = -1
            self._tree[srv] = None
            g.curr_pos += 1
            if srv != avoid or avoided >= 0:
                break
            avoided = srv
        if srv >= 0:
            self._queue_srv(g, srv)
        if avoided >= 0 and avoided != srv:
            if switched:
                self._queue_by_weight(g.init, avoided)
            else:
                self._queue_srv(g, avoided)
        return srv

    def _from_group(self, g: _FwrrGroup) -> int:
        """First due server of the current tree, else the heaviest waiting one."""
        s1 = self._first(g.curr)
        if s1 >= 0 and self._npos[s1] <= g.curr_pos:
            return s1
        s2 = self._first(g.init)
        if s2 >= 0:
            self._npos[s2] = 0
            self._rweight[s2] = 0
            return s2
        return s1

    def usable_weight(self) -> int:
        """See :meth:`Balancer.usable_weight`."""
        g = self._act if self._act.count else self._bck
        return g.next_weight // BE_WEIGHT_SCALE

    def active_connections(self, idx: int) -> int:
        """Roundrobin does not track connections: always 0."""
        return 0


def _curr_key(npos: int, rweight: int, ew: int) -> int:
    """Sort key of the "current" tree: position, then heavier, then less remainder."""
    return (SRV_UWGHT_RANGE * npos + (SRV_EWGHT_MAX + rweight - ew) // BE_WEIGHT_SCALE) & _U32


def _compact(heap: list[int], live: list[int]) -> None:
    """Drop stale entries from a lazily-deleted heap."""
    heap[:] = [e for e in heap if live[e & _IDX_MASK] == e]
    heapify(heap)


# --------------------------------------------------------------------------------------
# leastconn (lb_fwlc)
# --------------------------------------------------------------------------------------


class LeastConnBalancer(Balancer):
    """HAProxy ``balance leastconn`` (fast weighted least connections, lb_fwlc.c)."""

    tracks_connections: ClassVar[bool] = True

    __slots__ = (
        "_act_tree",
        "_bck_tree",
        "_conns",
        "_count",
        "_ew",
        "_live",
        "_seqno",
        "_stale",
        "_tot",
    )

    def __init__(
        self,
        weights: Sequence[int],
        backup: Sequence[bool],
        usable: Sequence[bool] | None = None,
    ) -> None:
        super().__init__(weights, backup, usable)
        n = self._n
        self._ew = [w * BE_WEIGHT_SCALE for w in self._weights]
        self._conns = [0] * n
        self._live = [-1] * n  # the server's live heap entry, -1 when in no tree
        self._seqno = 0
        self._act_tree: list[int] = []
        self._bck_tree: list[int] = []
        self._count = [0, 0]  # usable servers: [active, backup]
        self._tot = [0, 0]  # usable user weight: [active, backup]
        self._stale = 0
        for i in range(n):
            if self.is_usable(i):
                self._join(i)

    def _insert(self, i: int) -> None:
        c = self._conns[i]
        key = (c + 1) * SRV_EWGHT_MAX // self._ew[i] if c else 0
        s = self._seqno
        self._seqno = s + 1
        e = (key << _KEY_SHIFT) | (s << _SEQ_SHIFT) | i
        self._live[i] = e
        heappush(self._bck_tree if self._backup[i] else self._act_tree, e)

    def _join(self, i: int) -> None:
        b = 1 if self._backup[i] else 0
        self._count[b] += 1
        self._tot[b] += self._weights[i]
        self._insert(i)

    def _leave(self, i: int, old_weight: int) -> None:
        b = 1 if self._backup[i] else 0
        self._count[b] -= 1
        self._tot[b] -= old_weight
        self._unlink(i)

    def _unlink(self, i: int) -> None:
        self._live[i] = -1
        self._stale += 1
        if self._stale > self._n + 64:
            _compact(self._act_tree, self._live)
            _compact(self._bck_tree, self._live)
            self._stale = 0

    def set_usable(self, idx: int, usable: bool) -> None:
        """See :meth:`Balancer.set_usable`; O(log n)."""
        was = self.is_usable(idx)
        self._up[idx] = bool(usable)
        now = self.is_usable(idx)
        if was and not now:
            self._leave(idx, self._weights[idx])
        elif now and not was:
            self._join(idx)

    def set_weight(self, idx: int, weight: int) -> None:
        """See :meth:`Balancer.set_weight`; O(log n)."""
        _check_weight(weight)
        old = self._weights[idx]
        if int(weight) == old:
            return  # HAProxy ignores updates that change nothing (srv_lb_status_changed)
        was = self.is_usable(idx)
        self._weights[idx] = int(weight)
        self._ew[idx] = int(weight) * BE_WEIGHT_SCALE
        now = self.is_usable(idx)
        if was and not now:
            self._leave(idx, old)
        elif now and not was:
            self._join(idx)
        elif now and was:
            b = 1 if self._backup[idx] else 0
            self._tot[b] += int(weight) - old
            self._unlink(idx)
            self._insert(idx)

    def pick(self, src_ip: int = 0, src_port: int = 0, avoid: int = -1) -> int:
        """Least loaded server relative to weight, ties in rotation order; O(log n)."""
        if self._count[0]:
            heap = self._act_tree
        elif self._count[1]:
            heap = self._bck_tree
        else:
            return -1
        live = self._live
        while True:  # drop stale entries from the top
            e = heap[0]
            i = e & _IDX_MASK
            if live[i] == e:
                break
            heappop(heap)
            self._stale -= 1
        held = -1
        if i == avoid:
            # Look past the avoided server; it keeps its place in the order.
            held = heappop(heap)
            i = -1
            while heap:
                e = heap[0]
                if live[e & _IDX_MASK] == e:
                    i = e & _IDX_MASK
                    break
                heappop(heap)
                self._stale -= 1
            if i < 0:
                heappush(heap, held)
                i = avoid
                held = -1
        c = self._conns[i] + 1
        self._conns[i] = c
        s = self._seqno
        self._seqno = s + 1
        e = (((c + 1) * SRV_EWGHT_MAX // self._ew[i]) << _KEY_SHIFT) | (s << _SEQ_SHIFT) | i
        live[i] = e
        heapreplace(heap, e)
        if held >= 0:
            heappush(heap, held)
        return i

    def release(self, idx: int) -> None:
        """One connection to ``idx`` ended; re-sorts it if it is usable; O(log n)."""
        c = self._conns[idx] - 1
        if c < 0:
            raise ValueError(f"release of server {idx} without an active connection")
        self._conns[idx] = c
        if self._live[idx] >= 0:
            # The key always changes when the count does (ew <= SRV_EWGHT_MAX), so the
            # server is always re-inserted behind its equals, as in HAProxy.
            key = (c + 1) * SRV_EWGHT_MAX // self._ew[idx] if c else 0
            s = self._seqno
            self._seqno = s + 1
            e = (key << _KEY_SHIFT) | (s << _SEQ_SHIFT) | idx
            self._live[idx] = e
            self._stale += 1
            heappush(self._bck_tree if self._backup[idx] else self._act_tree, e)
            if self._stale > self._n + 64:
                _compact(self._act_tree, self._live)
                _compact(self._bck_tree, self._live)
                self._stale = 0

    def usable_weight(self) -> int:
        """See :meth:`Balancer.usable_weight`."""
        return self._tot[0] if self._count[0] else self._tot[1]

    def active_connections(self, idx: int) -> int:
        """Connections picked and not yet released on ``idx``."""
        return self._conns[idx]


# --------------------------------------------------------------------------------------
# source (lb_map, hash-type map-based)
# --------------------------------------------------------------------------------------


def fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finaliser: a fixed, well-mixing bijection on uint32."""
    h &= _U32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & _U32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & _U32
    h ^= h >> 16
    return h


def build_server_map(eweights: Sequence[int], members: Sequence[int]) -> list[int]:
    """HAProxy's weighted map (lb_map.c ``recalc_server_map``) over ``members``.

    ``members`` are the server indexes of the group in use, in configuration order,
    ``eweights`` their (GCD-reduced) weights, indexed by server. Returns a list of
    ``sum(weights)`` server indexes where servers are interleaved by weight.
    Cost O(tot · len(members)): pure Python for small maps, numpy-vectorised per slot
    for large ones (1,000 members of weight 1..10: ~0.05 s instead of ~0.7 s);
    ``SourceHashBalancer`` also caches maps by usable set.
    """
    ws = [eweights[i] for i in members]
    tot = sum(ws)
    if tot == 0:
        return []
    if tot == 1:
        return [members[0]]
    slots = _map_slots_numpy(ws, tot) if tot * len(ws) > 20_000 else _map_slots_python(ws, tot)
    return [members[k] for k in slots]


def _map_slots_python(ws: Sequence[int], tot: int) -> list[int]:
    """Slot → member position, straight from the rule (small maps)."""
    m = len(ws)
    score = [0] * m
    out = [0] * tot
    rng = range(m)
    for o in range(tot):
        best = -1
        vmax = 0
        for k in rng:
            sc = score[k] + ws[k]
            score[k] = sc
            v = (sc + tot) // tot  # sc > -tot always, so floor == C truncation
            if best < 0 or v > vmax:
                vmax = v
                best = k
        score[best] -= tot
        out[o] = best
    return out


def _map_slots_numpy(ws: Sequence[int], tot: int) -> list[int]:
    """Same rule, one vectorised step per slot (argmax returns the first maximum,
    like HAProxy's strict ``v > max`` scan in configuration order)."""
    import numpy as np

    w = np.asarray(ws, dtype=np.int64)
    score = np.zeros(len(ws), dtype=np.int64)
    level = np.empty_like(score)
    out = [0] * tot
    argmax = np.argmax
    for o in range(tot):
        score += w
        np.floor_divide(score, tot, out=level)
        k = int(argmax(level))
        score[k] -= tot
        out[o] = k
    return out


class SourceHashBalancer(Balancer):
    """HAProxy ``balance source`` with ``hash-type map-based`` (Octavia SOURCE_IP).

    With ``use_port=True`` it is the twin's SOURCE_IP_PORT (see the module docstring).
    """

    __slots__ = ("_cache", "_eweights", "_init_weights", "_map", "_tot", "_use_port", "_used")

    _CACHE_SIZE: Final = 16

    def __init__(
        self,
        weights: Sequence[int],
        backup: Sequence[bool],
        usable: Sequence[bool] | None = None,
        use_port: bool = False,
    ) -> None:
        super().__init__(weights, backup, usable)
        self._use_port = use_port
        self._init_weights = list(self._weights)
        nz = [w for w in self._weights if w]
        g = math.gcd(*nz) if nz else 1
        self._eweights = [-(-w // g) for w in self._weights]
        self._cache: dict[tuple[int, ...], list[int]] = {}
        self._map: list[int] = []
        self._tot = 0
        self._used = 0
        self._rebuild()

    def _rebuild(self) -> None:
        act = [i for i in range(self._n) if not self._backup[i] and self.is_usable(i)]
        members = act or [i for i in range(self._n) if self._backup[i] and self.is_usable(i)]
        key = tuple(members)
        m = self._cache.get(key)
        if m is None:
            m = build_server_map(self._eweights, members)
            if len(self._cache) >= self._CACHE_SIZE:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = m
        self._map = m
        self._tot = len(m)
        self._used = len(members)

    def set_usable(self, idx: int, usable: bool) -> None:
        """See :meth:`Balancer.set_usable`; rebuilds (or fetches a cached) map."""
        was = self.is_usable(idx)
        self._up[idx] = bool(usable)
        if was != self.is_usable(idx):
            self._rebuild()

    def set_weight(self, idx: int, weight: int) -> None:
        """Only 0 and the configured weight are accepted, as HAProxy does for static
        algorithms ("only accepts weights '0%' and '100%'")."""
        _check_weight(weight)
        if weight not in (0, self._init_weights[idx]):
            raise ValueError(
                "source balancing is static: weight must be 0 or the configured "
                f"{self._init_weights[idx]}, got {weight}"
            )
        was = self.is_usable(idx)
        self._weights[idx] = int(weight)
        if was != self.is_usable(idx):
            self._rebuild()

    def pick(self, src_ip: int = 0, src_port: int = 0, avoid: int = -1) -> int:
        """Server for this source; O(1). ``avoid`` is ignored, as in HAProxy."""
        tot = self._tot
        if tot == 0:
            return -1
        if self._used == 1:
            return self._map[0]
        if self._use_port:
            return self._map[fmix32(src_ip ^ fmix32(src_port)) % tot]
        return self._map[(src_ip & _U32) % tot]

    def server_map(self) -> list[int]:
        """A copy of the current map (slot → server index)."""
        return list(self._map)

    def usable_weight(self) -> int:
        """See :meth:`Balancer.usable_weight`."""
        act = [i for i in range(self._n) if not self._backup[i] and self.is_usable(i)]
        grp = act or [i for i in range(self._n) if self._backup[i] and self.is_usable(i)]
        return sum(self._weights[i] for i in grp)

    def active_connections(self, idx: int) -> int:
        """Source hashing does not track connections: always 0."""
        return 0


def make_balancer(
    algorithm: str,
    weights: Sequence[int],
    backup: Sequence[bool] | None = None,
    usable: Sequence[bool] | None = None,
) -> Balancer:
    """Balancer for an Octavia ``lb_algorithm`` (ROUND_ROBIN, LEAST_CONNECTIONS,
    SOURCE_IP, SOURCE_IP_PORT); ``backup`` defaults to all False."""
    if backup is None:
        backup = [False] * len(weights)
    if algorithm == "ROUND_ROBIN":
        return RoundRobinBalancer(weights, backup, usable)
    if algorithm == "LEAST_CONNECTIONS":
        return LeastConnBalancer(weights, backup, usable)
    if algorithm == "SOURCE_IP":
        return SourceHashBalancer(weights, backup, usable)
    if algorithm == "SOURCE_IP_PORT":
        return SourceHashBalancer(weights, backup, usable, use_port=True)
    raise ValueError(f"unknown lb_algorithm {algorithm!r}; expected one of {ALGORITHMS}")


def _benchmark(picks: int = 100_000, repeat: int = 3) -> list[tuple[str, int, float]]:
    """Picks per second (best of ``repeat``) for 10 and 1,000 members per algorithm.

    Weights are random in 1..10. Leastconn pairs each pick with the release of the
    oldest of ~n open connections, so its figure is for pick + release.
    """
    import random
    import time
    from collections import deque

    results = []
    for algo in ALGORITHMS:
        for n in (10, 1000):
            best = 0.0
            for rep in range(repeat):
                rnd = random.Random(rep)
                b = make_balancer(algo, [rnd.randint(1, 10) for _ in range(n)])
                srcs = [rnd.getrandbits(32) for _ in range(4096)]
                pick, release = b.pick, b.release
                open_: deque[int] = deque(pick() for _ in range(n))
                t0 = time.perf_counter()
                if algo == "LEAST_CONNECTIONS":
                    for _ in range(picks):
                        open_.append(pick())
                        release(open_.popleft())
                elif algo == "ROUND_ROBIN":
                    for _ in range(picks):
                        pick()
                else:
                    for k in range(picks):
                        pick(srcs[k & 4095], k & 0xFFFF)
                best = max(best, picks / (time.perf_counter() - t0))
            results.append((algo, n, best))
    return results


if __name__ == "__main__":
    _rates = {(a, n): r for a, n, r in _benchmark()}
    print("algorithm            picks/s (10)  picks/s (1000)  ratio")
    for _algo in ALGORITHMS:
        _r10, _r1k = _rates[(_algo, 10)], _rates[(_algo, 1000)]
        print(f"{_algo:<20} {_r10:>12,.0f} {_r1k:>15,.0f} {_r1k / _r10:>6.2f}")
