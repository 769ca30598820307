"""HAProxy's ``leastconn`` (see :mod:`lbsim.haproxy.balancing`)."""

from __future__ import annotations

from collections.abc import Sequence
from heapq import heappop, heappush, heapreplace
from typing import ClassVar

from lbsim.haproxy.balancer import (
    _IDX_MASK,
    _KEY_SHIFT,
    _SEQ_SHIFT,
    BE_WEIGHT_SCALE,
    SRV_EWGHT_MAX,
    Balancer,
    _check_weight,
    _compact,
)

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
        "_keys",
        "_live",
        "_seqno",
        "_stale",
        "_stale_max",
        "_tot",
        "_tree_of",
        "_use",
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
        #: per server, its tree key (shifted into place) by connection count, filled on
        #: demand (:meth:`_key`) and cleared when its weight changes
        self._keys: list[list[int]] = [[] for _ in range(n)]
        self._conns = [0] * n
        self._live = [-1] * n  # the server's live heap entry, -1 when in no tree
        self._seqno = 0
        self._act_tree: list[int] = []
        self._bck_tree: list[int] = []
        self._count = [0, 0]  # usable servers: [active, backup]
        self._tot = [0, 0]  # usable user weight: [active, backup]
        self._stale = 0
        self._stale_max = n + 64  # stale entries beyond this: compact the trees
        #: each server's tree (its group's; a server never changes group)
        self._tree_of = [self._bck_tree if b else self._act_tree for b in self._backup]
        #: the tree picks come from: the active one while it has a usable server, else
        #: the backup one while it has, else None
        self._use: list[int] | None = None
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
        self._choose_tree()

    def _leave(self, i: int, old_weight: int) -> None:
        b = 1 if self._backup[i] else 0
        self._count[b] -= 1
        self._tot[b] -= old_weight
        self._unlink(i)
        self._choose_tree()

    def _choose_tree(self) -> None:
        count = self._count
        self._use = self._act_tree if count[0] else self._bck_tree if count[1] else None

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
        self._keys[idx] = []
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
        heap = self._use
        if heap is None:
            return -1
        live = self._live
        e = heap[0]
        i = e & _IDX_MASK
        if live[i] != e:  # drop stale entries from the top
            stale = self._stale
            while True:
                heappop(heap)
                stale -= 1
                e = heap[0]
                i = e & _IDX_MASK
                if live[i] == e:
                    break
            self._stale = stale
        if i == avoid:
            return self._pick_avoiding(heap, avoid)
        conns = self._conns
        c = conns[i] + 1
        conns[i] = c
        s = self._seqno
        self._seqno = s + 1
        try:
            k = self._keys[i][c]
        except IndexError:
            k = self._key(i, c)
        e = k | (s << _SEQ_SHIFT) | i
        live[i] = e
        heapreplace(heap, e)
        return i

    def _key(self, i: int, c: int) -> int:
        """Server ``i``'s tree key with ``c`` connections, shifted into place: 0 when
        idle, else ``(c + 1) * SRV_EWGHT_MAX // ew`` (lb_fwlc's ``fwlc_queue_srv``)."""
        keys = self._keys[i]
        ew = self._ew[i]
        while len(keys) <= c:
            k = len(keys)
            keys.append((((k + 1) * SRV_EWGHT_MAX // ew) << _KEY_SHIFT) if k else 0)
        return keys[c]

    def _pick_avoiding(self, heap: list[int], avoid: int) -> int:
        """:meth:`pick` when the least loaded server is the one to avoid (redispatch):
        look past it; it keeps its place in the order."""
        live = self._live
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
        conns = self._conns
        c = conns[idx] - 1
        if c < 0:
            raise ValueError(f"release of server {idx} without an active connection")
        conns[idx] = c
        live = self._live
        if live[idx] >= 0:
            # The key always changes when the count does (ew <= SRV_EWGHT_MAX), so the
            # server is always re-inserted behind its equals, as in HAProxy.
            s = self._seqno
            self._seqno = s + 1
            try:
                k = self._keys[idx][c]
            except IndexError:
                k = self._key(idx, c)
            e = k | (s << _SEQ_SHIFT) | idx
            live[idx] = e
            heappush(self._tree_of[idx], e)
            stale = self._stale + 1
            if stale > self._stale_max:
                _compact(self._act_tree, self._live)
                _compact(self._bck_tree, self._live)
                stale = 0
            self._stale = stale

    def usable_weight(self) -> int:
        """See :meth:`Balancer.usable_weight`."""
        return self._tot[0] if self._count[0] else self._tot[1]

    def active_connections(self, idx: int) -> int:
        """Connections picked and not yet released on ``idx``."""
        return self._conns[idx]
