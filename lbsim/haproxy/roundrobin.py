"""HAProxy's ``roundrobin``: the fwrr weighted round robin, pick for pick (see :mod:`lbsim.haproxy.balancing`)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from heapq import heappop, heappush, heapreplace
from operator import length_hint
from typing import Any, ClassVar

from lbsim.haproxy.balancer import (
    _IDX_MASK,
    _KEY_SHIFT,
    _SEQ_SHIFT,
    _U32,
    BE_WEIGHT_SCALE,
    SRV_EWGHT_MAX,
    SRV_UWGHT_RANGE,
    Balancer,
    _cdiv,
    _check_weight,
    _compact,
    _curr_key,
)

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

    __slots__ = (
        "_act",
        "_bck",
        "_canon",
        "_ew",
        "_it",
        "_live",
        "_lpos",
        "_npos",
        "_play",
        "_rec",
        "_rweight",
        "_seqno",
        "_tree",
    )

    #: whether a window that repeats the previous one is replayed from its recording
    #: (tests turn it off to compare against the plain computation)
    REPLAY: ClassVar[bool] = True
    #: the longest window (picks) that is recorded; a longer one is always computed
    MAX_RECORDED: ClassVar[int] = 1 << 18

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
        # window replay (see pick): the picks of the window being recorded, the canonical
        # state it started from, and while replaying, the window's picks and an iterator
        # at the next one
        self._rec: list[int] | None = None
        self._canon: Any = None
        self._play: list[int] | None = None
        self._it: Iterator[int] = iter(())
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
        self.settle()
        was = self.is_usable(idx)
        self._up[idx] = bool(usable)
        self._apply(idx, was, self.is_usable(idx), self._ew[idx])

    def set_weight(self, idx: int, weight: int) -> None:
        """See :meth:`Balancer.set_weight`; O(log n)."""
        _check_weight(weight)
        self.settle()
        was = self.is_usable(idx)
        old_ew = self._ew[idx]
        self._weights[idx] = int(weight)
        self._ew[idx] = int(weight) * BE_WEIGHT_SCALE
        self._apply(idx, was, self.is_usable(idx), old_ew)

    # -- picking -------------------------------------------------------------------------

    def settle(self) -> None:
        """Bring the scheduling state up to date with the picks replayed so far, and
        stop replaying (before any change of state, or to read the state).

        While a window is replayed the state stays where the replay began (one pick
        into a window); the picks served since then are computed now, from there.
        """
        play = self._play
        if play is not None:
            n = (len(play) - length_hint(self._it) - 1) % len(play)  # picks since the replay began
            self._play = None
            for _ in range(n):  # within the window: no switch, nothing recorded
                self.pick()
        self._rec = None
        self._canon = None

    def _window(self, g: _FwrrGroup) -> None:
        """A new window starts (the trees just switched): replay the last one if this
        window starts from the same state, else record this one.

        The state that decides every later pick is the group's positions and weights,
        each server's position, remainder and last position, and the order of the
        servers in each tree (sequence numbers only order entries, and new ones always
        sort after old ones, so their values do not matter). Two windows that start from
        the same such state make the same picks and end in the same state again, so the
        window repeats for as long as nothing changes (:meth:`settle` runs first then).
        """
        live = self._live
        trees = tuple(
            tuple((e >> _KEY_SHIFT, e & _IDX_MASK) for e in sorted(e for e in h if live[e & _IDX_MASK] == e))
            for h in (g.curr, g.init, g.next)
        )
        canon = (
            g is self._act,
            g.curr_pos,
            g.curr_weight,
            g.next_weight,
            trees,
            tuple(self._npos),
            tuple(self._rweight),
            tuple(self._lpos),
        )
        rec = self._rec
        if rec and canon == self._canon:
            # this pick (being made) is the window's first: the replay serves the rest
            self._play = rec
            self._it = iter(rec)
            next(self._it)
            self._rec = None
        else:
            self._canon = canon
            self._rec = []

    def pick(self, src_ip: int = 0, src_port: int = 0, avoid: int = -1) -> int:
        """Next server in HAProxy's smooth weighted order; O(log n), O(1) while a
        window that repeats the previous one is replayed (see :meth:`_window`)."""
        play = self._play
        if play is not None:
            if avoid < 0:
                try:
                    return next(self._it)
                except StopIteration:  # the window ends: the next one is the same
                    self._it = iter(play)
                    return next(self._it)
            self.settle()
        g = self._act
        if not g.count:
            g = self._bck
            if not g.count:
                return -1
        if avoid >= 0:
            self.settle()
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
            if self.REPLAY:
                self._window(g)
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
        rec = self._rec
        if rec is not None:
            rec.append(srv)
            if len(rec) > self.MAX_RECORDED:
                self._rec = None
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
