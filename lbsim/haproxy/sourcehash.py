"""HAProxy's map-based ``balance source`` hashing (see :mod:`lbsim.haproxy.balancing`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

from lbsim.haproxy.balancer import _U32, Balancer, _check_weight

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

    __slots__ = ("_cache", "_eweights", "_hashed", "_init_weights", "_map", "_tot", "_use_port", "_used")

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
        #: the map when a pick is just ``map[address % tot]`` (more than one server in
        #: use, no port), else None: the one test of the common pick
        self._hashed: list[int] | None = None
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
        self._hashed = m if self._used > 1 and not self._use_port else None

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
        hashed = self._hashed
        if hashed is not None:
            return hashed[(src_ip & _U32) % self._tot]
        tot = self._tot
        if tot == 0:
            return -1
        if self._used == 1:
            return self._map[0]
        if self._use_port:
            return self._map[fmix32(src_ip ^ fmix32(src_port)) % tot]
        return self._map[(src_ip & _U32) % tot]

    def address_map(self) -> list[int] | None:
        """See :meth:`Balancer.address_map`."""
        return self._hashed

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
