"""numba kernels of the compiled steady-state data plane (see :mod:`lbsim.sim.compiled`).

This module imports numba at its top, so only :mod:`lbsim.sim.compiled` imports it, and
only when a run uses the compiled path. Every function mirrors one piece of the exact
data plane (:mod:`lbsim.sim.dataplane`) or balancer (:mod:`lbsim.haproxy.roundrobin`,
``leastconn``, ``sourcehash``) operation for operation, with the same integer and IEEE
floating-point arithmetic in the same order, so that both paths produce the same picks
and the same latencies to the last bit. The layout of the state arrays is documented
in :class:`lbsim.sim.compiled.CompiledDataPlane`.

Heaps are binary heaps over parallel arrays, ordered by ``(key, seq)``; ``seq`` is
unique per balancer (and per calendar), so the order is total and the layout of a heap
does not matter, only the set of its live entries. Balancer heaps use lazy deletion as
the Python balancers do: an entry is live when its sequence number is the server's
current one.

Everything on the per-event path is a closure inside :func:`run`, which numba inlines:
a call between compiled functions that passes dozens of arrays costs more than the
work of a small function (measured: about 800 ns per event instead of about 100). Of the functions outside
:func:`run`, the balancer's ``pick`` (called per request with ten arrays),
``lc_release`` and the heap comparisons are inlined too (``inline="always"``); the heap
sifts are not: inlining everything saved another 10-20 % per request but made the first
compilation take 85 s of CPU instead of 15.
"""

from __future__ import annotations

import numba as nb
import numpy as np

# balancer constants (lbsim.haproxy.balancer)
BE_WEIGHT_SCALE = 16
SRV_UWGHT_RANGE = 256
SRV_EWGHT_MAX = SRV_UWGHT_RANGE * BE_WEIGHT_SCALE
U32 = 0xFFFFFFFF

# algorithm codes
RR, LC, SRC, SRC_PORT = 0, 1, 2, 3
# outcome codes of output records
OK, E504 = 0, 1
ERROR_PAGE_BYTES = 200

# indexes into the int64 scalar array ``sc``
S_SEQ = 0  # the calendar's insertion counter (first scheduled runs first at equal times)
S_CALN = 1  # calendar size
S_NFREE = 2  # free request slots
S_OUTN = 3  # output records written
S_INFLIGHT = 4  # requests holding a slot (backlog, queued, in service)
S_EVENTS = 5  # events processed (statistics)
S_SAMPN = 6  # occupancy samples written
S_ACTIVE0 = 7  # active connections of frontends the kernel does not own (for the samples)
# indexes into the float64 scalar array ``fs``
F_DURATION = 0
F_WARMUP = 1
F_NEXT_SAMPLE = 2  # when the once-a-second occupancy sampler runs next (inf: never)

# return codes of run()
DONE, NEED_INPUT = 0, 1

# frontend columns (int64 [fe, 11])
FE_ACTIVE, FE_MAXCONN, FE_BE, FE_STOT, FE_BIN, FE_BOUT, FE_RESPB, FE_REQB, FE_BHEAD, FE_BTAIL, FE_BLEN = range(11)
# server columns (int64 [srv, 8], global index)
SV_BUSY, SV_CONC, SV_SERVED, SV_FAILED, SV_QHEAD, SV_QTAIL, SV_QLEN, SV_SAMP = range(8)
# request columns (int64 [req, 6])
R_SRC, R_PORT, R_FE, R_BE, R_LOCAL, R_NEXT = range(6)


# balancer columns (int64 [flat server, 6]); heap entry columns (int64 [entry, 3]);
# heap metadata columns (int64 [heap, 3])
B_EW, B_NPOS, B_LPOS, B_RW, B_CONNS, B_LIVE, B_HPOS = range(7)
H_KEY, H_SEQ, H_IDX = range(3)
M_OFF, M_CAP, M_SIZE = range(3)


@nb.njit(cache=True, nogil=True, inline="always")
def _swap(off: int, a: int, b: int, bal: np.ndarray, hp: np.ndarray, track: bool) -> None:
    """Swap heap places ``a`` and ``b`` (relative to ``off``); ``track``: keep each
    server's place in ``bal[:, B_HPOS]`` (leastconn's indexed heap)."""
    x, y = off + a, off + b
    for c in range(3):
        hp[x, c], hp[y, c] = hp[y, c], hp[x, c]
    if track:
        bal[hp[x, H_IDX], B_HPOS] = a
        bal[hp[y, H_IDX], B_HPOS] = b


@nb.njit(cache=True, nogil=True, inline="always")
def _less(hp: np.ndarray, x: int, y: int) -> bool:
    """Heap order: by key, then by sequence number (unique per balancer: a total order)."""
    return hp[x, 0] < hp[y, 0] or (hp[x, 0] == hp[y, 0] and hp[x, 1] < hp[y, 1])


@nb.njit(cache=True, nogil=True)
def sift_up(off: int, pos: int, bal: np.ndarray, hp: np.ndarray, track: bool) -> int:
    """Move the entry at ``pos`` of the heap at ``off`` up to its place; where it ends."""
    while pos > 0:
        p = (pos - 1) // 2
        if not _less(hp, off + pos, off + p):
            break
        _swap(off, pos, p, bal, hp, track)
        pos = p
    return pos


@nb.njit(cache=True, nogil=True)
def sift_down(off: int, n: int, pos: int, bal: np.ndarray, hp: np.ndarray, track: bool) -> None:
    """Move the entry at ``pos`` of the ``n``-entry heap at ``off`` down to its place."""
    while True:
        c = 2 * pos + 1
        if c >= n:
            break
        if c + 1 < n and _less(hp, off + c + 1, off + c):
            c += 1
        if not _less(hp, off + c, off + pos):
            break
        _swap(off, c, pos, bal, hp, track)
        pos = c


@nb.njit(cache=True, nogil=True, inline="always")
def pick(
    b: int, alg: int, src: int, port: int,
    be_base: np.ndarray, bst: np.ndarray, bal: np.ndarray, hp: np.ndarray, hm: np.ndarray, smap: np.ndarray,
) -> int:
    """The balancer's choice for a new connection (local server index, -1: none usable).

    ROUND_ROBIN is RoundRobinBalancer.pick, LEAST_CONNECTIONS LeastConnBalancer.pick,
    SOURCE_IP(_PORT) SourceHashBalancer.pick, all for the active group and without a
    server to avoid. ``bst[b]``: 0 curr_pos, 1 curr_weight, 2 next_weight, 3 usable
    active servers, 4 which of heaps ``3 b + 1`` / ``3 b + 2`` is fwrr's "init" (the
    other is "next"; ``3 b`` is "curr", or leastconn's tree), 5 seqno, 6 map offset,
    7 map size, 8 servers in the map.
    """

    def pop(h: int) -> None:
        off = hm[h, M_OFF]
        n = hm[h, M_SIZE] - 1
        hm[h, M_SIZE] = n
        if n > 0:
            for c in range(3):
                hp[off, c] = hp[off + n, c]
            sift_down(off, n, 0, bal, hp, False)

    def replace(h: int, key: int, seq: int, idx: int) -> None:
        off = hm[h, M_OFF]
        hp[off, 0] = key
        hp[off, 1] = seq
        hp[off, 2] = idx
        sift_down(off, hm[h, M_SIZE], 0, bal, hp, False)

    def top_live(h: int) -> int:
        off = hm[h, M_OFF]
        while hm[h, M_SIZE] > 0:
            i = hp[off, H_IDX]
            if bal[i, B_LIVE] == hp[off, H_SEQ]:
                return i
            pop(h)
        return -1

    if alg in (SRC, SRC_PORT):
        tot = bst[b, 7]
        if tot == 0:
            return -1
        off = bst[b, 6]
        if bst[b, 8] == 1:
            return smap[off]
        if alg == SRC_PORT:
            return smap[off + fmix32(src ^ fmix32(port)) % tot]
        return smap[off + (src & U32) % tot]
    if bst[b, 3] == 0:
        return -1
    if alg == LC:
        h = 3 * b
        off = hm[h, M_OFF]
        i = hp[off, H_IDX]  # leastconn's heap holds live entries only: the top is the pick
        c = bal[i, B_CONNS] + 1
        bal[i, B_CONNS] = c
        s = bst[b, 5]
        bst[b, 5] = s + 1
        bal[i, B_LIVE] = s
        hp[off, 0] = (c + 1) * SRV_EWGHT_MAX // bal[i, B_EW]
        hp[off, 1] = s
        lc_fix(h, 0, bal, hp, hm)
        return i - be_base[b]
    # ROUND_ROBIN: fwrr_get_next_server
    if bst[b, 1] == 0:
        bst[b, 0] = bst[b, 2]
        bst[b, 1] = bst[b, 2]
    curr = 3 * b
    switched = False
    srv = -1
    heap = -1
    while True:
        init = 3 * b + bst[b, 4]
        s1 = top_live(curr)
        if s1 >= 0 and bal[s1, B_NPOS] <= bst[b, 0]:
            srv = s1
            heap = curr
            break
        srv = top_live(init)
        if srv >= 0:
            bal[srv, B_NPOS] = 0
            bal[srv, B_RW] = 0
            heap = init
            break
        if s1 >= 0:
            srv = s1
            heap = curr
            break
        if switched:
            return -1
        switched = True
        bst[b, 4] = 3 - bst[b, 4]
        bst[b, 0] = bst[b, 2]
        bst[b, 1] = bst[b, 2]
    w = bal[srv, B_EW]
    pos = bst[b, 0]
    p = bal[srv, B_NPOS]
    if p == 0:
        p = pos
    bal[srv, B_LPOS] = p
    nw = bst[b, 2]
    r = bal[srv, B_RW] + nw % w
    p += nw // w
    if r >= w:
        r -= w
        p += 1
    bal[srv, B_RW] = r
    bst[b, 0] = pos + 1
    cw = bst[b, 1]
    s = bst[b, 5]
    bst[b, 5] = s + 1
    bal[srv, B_LIVE] = s
    if p >= 2 * cw or p >= cw + nw:
        bal[srv, B_NPOS] = p - cw
        pop(heap)
        heap_push(3 * b + 3 - bst[b, 4], SRV_EWGHT_MAX - w, s, srv, bal, hp, hm)
    else:
        bal[srv, B_NPOS] = p
        key = (SRV_UWGHT_RANGE * p + (SRV_EWGHT_MAX + r - w) // BE_WEIGHT_SCALE) & U32
        if heap == curr:
            replace(curr, key, s, srv)
        else:
            pop(heap)
            heap_push(curr, key, s, srv, bal, hp, hm)
    return srv - be_base[b]


@nb.njit(cache=True, nogil=True)
def heap_push(h: int, key: int, seq: int, idx: int, bal: np.ndarray, hp: np.ndarray, hm: np.ndarray) -> None:
    """Push ``(key, seq, idx)`` on heap ``h``, dropping its stale entries first when it is full."""
    off = hm[h, M_OFF]
    if hm[h, M_SIZE] >= hm[h, M_CAP]:
        n = 0
        for k in range(hm[h, M_SIZE]):
            j = off + k
            if bal[hp[j, H_IDX], B_LIVE] == hp[j, H_SEQ]:
                for c in range(3):
                    hp[off + n, c] = hp[j, c]
                n += 1
        hm[h, M_SIZE] = n
        for start in range(n // 2 - 1, -1, -1):
            sift_down(off, n, start, bal, hp, False)
    pos = hm[h, M_SIZE]
    hp[off + pos, 0] = key
    hp[off + pos, 1] = seq
    hp[off + pos, 2] = idx
    hm[h, M_SIZE] = pos + 1
    sift_up(off, pos, bal, hp, False)


@nb.njit(cache=True, nogil=True)
def lc_fix(h: int, pos: int, bal: np.ndarray, hp: np.ndarray, hm: np.ndarray) -> None:
    """Restore leastconn's heap ``h`` after the entry at ``pos`` changed key (up or down).

    Unlike fwrr's heaps, leastconn's holds exactly one entry per server in the tree, its
    position kept in ``bal[i, B_HPOS]``: an update changes the entry in place instead of
    pushing a new one and leaving the old one stale, so the heap stays as small as the
    pool. The order is the same total ``(key, seq)`` order as the lazy heap of
    :class:`lbsim.haproxy.leastconn.LeastConnBalancer`, so the picks are the same.
    """
    off = hm[h, M_OFF]
    if sift_up(off, pos, bal, hp, True) == pos:
        sift_down(off, hm[h, M_SIZE], pos, bal, hp, True)


@nb.njit(cache=True, nogil=True, inline="always")
def lc_release(b: int, i: int, bst: np.ndarray, bal: np.ndarray, hp: np.ndarray, hm: np.ndarray) -> None:
    """LeastConnBalancer.release of flat server ``i``: re-sorted behind its equals."""
    c = bal[i, B_CONNS] - 1
    bal[i, B_CONNS] = c
    if bal[i, B_LIVE] >= 0:
        s = bst[b, 5]
        bst[b, 5] = s + 1
        bal[i, B_LIVE] = s
        h = 3 * b
        pos = bal[i, B_HPOS]
        j = hm[h, M_OFF] + pos
        hp[j, 0] = (c + 1) * SRV_EWGHT_MAX // bal[i, B_EW] if c else 0
        hp[j, 1] = s
        lc_fix(h, pos, bal, hp, hm)


@nb.njit(cache=True, nogil=True)
def fmix32(h: int) -> int:
    """MurmurHash3's 32-bit finaliser (lbsim.haproxy.sourcehash.fmix32)."""
    x = np.uint64(h) & np.uint64(U32)
    x ^= x >> np.uint64(16)
    x = (x * np.uint64(0x85EBCA6B)) & np.uint64(U32)
    x ^= x >> np.uint64(13)
    x = (x * np.uint64(0xC2B2AE35)) & np.uint64(U32)
    x ^= x >> np.uint64(16)
    return np.int64(x)  # type: ignore[return-value]


@nb.njit(cache=True, nogil=True)
def run(
    until: float, sc: np.ndarray, fs: np.ndarray,
    ct: np.ndarray, cs: np.ndarray, cr: np.ndarray, na_t: np.ndarray, na_s: np.ndarray,
    src_fe: np.ndarray, gaps: np.ndarray, gpos: np.ndarray, glen: np.ndarray,
    picks: np.ndarray, ports: np.ndarray, ppos: np.ndarray, plen: np.ndarray, addrs: np.ndarray, aoff: np.ndarray,
    fe: np.ndarray, fe_tdata: np.ndarray, be_alg: np.ndarray, be_base: np.ndarray, bst: np.ndarray, gidx: np.ndarray,
    bal: np.ndarray, hp: np.ndarray, hm: np.ndarray, smap: np.ndarray,
    sv: np.ndarray, busy_time: np.ndarray, svc: np.ndarray, spos: np.ndarray, slen: np.ndarray,
    r_t0: np.ndarray, r_sent: np.ndarray, ri: np.ndarray, free: np.ndarray,
    o_t0: np.ndarray, o_src: np.ndarray, o_gidx: np.ndarray, o_now: np.ndarray, o_lat: np.ndarray, o_code: np.ndarray,
    samp: np.ndarray,
) -> int:
    """Process the data-plane events due strictly before ``until``.

    Returns DONE, or NEED_INPUT before an event that might run out of a buffer (arrival
    gaps, client picks, service times, request slots, output records): Python refills
    from the same named streams, in the same blocks, and calls again.

    State layout: ``sc`` int64 scalars (S_*), ``fs`` float scalars (F_*); the calendar
    of completions ``ct`` (time), ``cs`` (seq), ``cr`` (request); per source its next
    arrival ``na_t`` (time, inf: none) and ``na_s`` (seq), its frontend, gap and client
    buffers. Arrivals stay out of the heap (each source has at most one pending, due in
    order), which saves a push and a pop per request; the calendar's sequence numbers
    still order an arrival and a completion at the same time as one heap would; ``fe`` frontends (FE_*);
    per backend its algorithm, the offset of its servers in the flat balancer array
    ``bal`` (B_*, indexed ``base + local``) and ``bst`` scalars (see :func:`pick`);
    balancer heap entries ``hp`` (H_*) and heap metadata ``hm`` (M_*); ``sv`` members
    by global index (SV_*); request slots (R_*); output records; occupancy samples
    ``samp`` (active, queued, backlog), one per simulated second from ``fs[F_NEXT_SAMPLE]``.

    The samples are the engine's once-a-second sampler, taken here so that it does not
    cut chunks: a sample at ``t`` sees every event due strictly before ``t`` (SimPy's
    events run before the data plane's at equal times), so it is written before the
    first event at or after ``t``, or when the chunk ends at ``until > t``.
    """

    # ---------------------------------------------------------------- samples
    def take_samples(t: float, upto: bool) -> bool:
        """Write the samples due before ``t`` (or at it, with ``upto``); False when the
        buffer is full first."""
        while fs[F_NEXT_SAMPLE] < t or (upto and fs[F_NEXT_SAMPLE] == t):
            n = sc[S_SAMPN]
            if n >= samp.shape[0]:
                return False
            queued = 0
            for g in range(sv.shape[0]):
                queued += sv[g, SV_QLEN]
            active = sc[S_ACTIVE0]
            backlog = 0
            for f in range(fe.shape[0]):
                active += fe[f, FE_ACTIVE]
                backlog += fe[f, FE_BLEN]
            samp[n, 0] = active
            samp[n, 1] = queued
            samp[n, 2] = backlog
            sc[S_SAMPN] = n + 1
            fs[F_NEXT_SAMPLE] += 1.0
        return True

    # ---------------------------------------------------------------- calendar
    def cless(a: int, b: int) -> bool:
        return ct[a] < ct[b] or (ct[a] == ct[b] and cs[a] < cs[b])

    def cswap(a: int, b: int) -> None:
        ct[a], ct[b] = ct[b], ct[a]
        cs[a], cs[b] = cs[b], cs[a]
        cr[a], cr[b] = cr[b], cr[a]

    def schedule(t: float, r: int) -> None:
        """The kernel's call_later for a completion: the next sequence number breaks ties."""
        pos = sc[S_CALN]
        ct[pos] = t
        cs[pos] = sc[S_SEQ]
        sc[S_SEQ] += 1
        cr[pos] = r
        sc[S_CALN] = pos + 1
        while pos > 0:
            p = (pos - 1) // 2
            if cless(pos, p):
                cswap(pos, p)
                pos = p
            else:
                break

    def cal_pop() -> None:
        n = sc[S_CALN] - 1
        sc[S_CALN] = n
        if n > 0:
            ct[0], cs[0], cr[0] = ct[n], cs[n], cr[n]
            pos = 0
            while True:
                c = 2 * pos + 1
                if c >= n:
                    break
                if c + 1 < n and cless(c + 1, c):
                    c += 1
                if cless(c, pos):
                    cswap(c, pos)
                    pos = c
                else:
                    break

    # ---------------------------------------------------------------- FIFOs and slots
    def append(lst: np.ndarray, row: int, head: int, q: int) -> None:
        """Append request ``q`` to the FIFO kept in ``lst[row, head:head + 3]``."""
        ri[q, R_NEXT] = -1
        if lst[row, head + 2] == 0:
            lst[row, head] = q
        else:
            ri[lst[row, head + 1], R_NEXT] = q
        lst[row, head + 1] = q
        lst[row, head + 2] += 1

    def popleft(lst: np.ndarray, row: int, head: int) -> int:
        q = lst[row, head]
        lst[row, head] = ri[q, R_NEXT]
        lst[row, head + 2] -= 1
        return q

    def service(g: int) -> float:
        k = sv[g, SV_SAMP]
        v = svc[k, spos[k]]
        spos[k] += 1
        return v

    def record(now: float, t0: float, src: int, g: int, code: int) -> None:
        """An outcome after warm-up, for Python's bookkeeping (recorder, errors, log)."""
        if t0 >= fs[F_WARMUP]:
            n = sc[S_OUTN]
            o_t0[n] = t0
            o_src[n] = src
            o_gidx[n] = g
            o_now[n] = now
            o_lat[n] = now - t0
            o_code[n] = code
            sc[S_OUTN] = n + 1

    def release_slot(q: int) -> None:
        free[sc[S_NFREE]] = q
        sc[S_NFREE] += 1
        sc[S_INFLIGHT] -= 1

    # ---------------------------------------------------------------- the request path
    def dispatch(now: float, q: int, f: int, t0: float) -> None:
        """DataPlane.dispatch: the balancer picks a server; it serves at once or queues."""
        b = fe[f, FE_BE]
        alg = be_alg[b]
        local = pick(b, alg, ri[q, R_SRC], ri[q, R_PORT], be_base, bst, bal, hp, hm, smap)
        g = gidx[be_base[b] + local]
        r_t0[q] = t0
        r_sent[q] = now
        ri[q, R_FE] = f
        ri[q, R_BE] = b
        ri[q, R_LOCAL] = local
        if sv[g, SV_BUSY] < sv[g, SV_CONC]:
            sv[g, SV_BUSY] += 1
            s = service(g)
            busy_time[g] += s
            schedule(now + s, q)
        else:
            append(sv, g, SV_QHEAD, q)

    def release_frontend(now: float, f: int) -> None:
        """DataPlane._release_frontend: the freed connection admits the oldest waiting one."""
        if fe[f, FE_BLEN] > 0:
            q = popleft(fe, f, FE_BHEAD)
            dispatch(now, q, f, r_t0[q])
        else:
            fe[f, FE_ACTIVE] -= 1

    def finish504(now: float, g: int, q: int) -> None:
        """DataPlane.finish(req, gidx, OUT_504): HAProxy's ``timeout server`` ended it."""
        b = ri[q, R_BE]
        if be_alg[b] == LC:
            lc_release(b, be_base[b] + ri[q, R_LOCAL], bst, bal, hp, hm)
        sv[g, SV_FAILED] += 1
        f = ri[q, R_FE]
        fe[f, FE_BOUT] += ERROR_PAGE_BYTES
        record(now, r_t0[q], ri[q, R_SRC], g, E504)
        release_slot(q)
        release_frontend(now, f)

    def complete(now: float, g: int, q: int) -> None:
        """DataPlane.complete for a healthy member, then drain_queue when needed."""
        f = ri[q, R_FE]
        if now - r_sent[q] > fe_tdata[f]:
            finish504(now, g, q)
        else:
            b = ri[q, R_BE]
            if be_alg[b] == LC:
                lc_release(b, be_base[b] + ri[q, R_LOCAL], bst, bal, hp, hm)
            fe[f, FE_BOUT] += fe[f, FE_RESPB]
            record(now, r_t0[q], ri[q, R_SRC], g, OK)
            release_slot(q)
            release_frontend(now, f)
        sv[g, SV_BUSY] -= 1
        sv[g, SV_SERVED] += 1
        if sv[g, SV_QLEN] > 0:
            h = sv[g, SV_QHEAD]
            if now - r_sent[h] < fe_tdata[ri[h, R_FE]]:
                # the freed slot takes the next queued request (the kernel's follow-up entry)
                popleft(sv, g, SV_QHEAD)
                sv[g, SV_BUSY] += 1
                s = service(g)
                busy_time[g] += s
                schedule(now + s, h)
            else:
                while sv[g, SV_QLEN] > 0 and sv[g, SV_BUSY] < sv[g, SV_CONC]:
                    h = popleft(sv, g, SV_QHEAD)
                    if now - r_sent[h] >= fe_tdata[ri[h, R_FE]]:
                        finish504(now, g, h)
                        continue
                    sv[g, SV_BUSY] += 1  # DataPlane.start (factor 1.0: s * 1.0 == s)
                    s = service(g) * 1.0
                    busy_time[g] += s
                    schedule(now + s, h)

    # ---------------------------------------------------------------- the event loop
    duration = fs[F_DURATION]
    nsamp = spos.shape[0]
    ocap = o_t0.shape[0]
    nsrc = na_t.shape[0]
    while True:
        # the next event: the calendar's top or the earliest pending arrival, (time, seq) order
        a = -1
        for i in range(nsrc):
            if na_t[i] != np.inf and (a < 0 or na_t[i] < na_t[a] or (na_t[i] == na_t[a] and na_s[i] < na_s[a])):
                a = i
        arrival = a >= 0 and (sc[S_CALN] == 0 or na_t[a] < ct[0] or (na_t[a] == ct[0] and na_s[a] < cs[0]))
        if arrival:
            now = na_t[a]
        elif sc[S_CALN] > 0:
            now = ct[0]
        else:
            break
        if now >= until:
            break
        if fs[F_NEXT_SAMPLE] <= now and not take_samples(now, True):
            return NEED_INPUT
        need = sc[S_INFLIGHT] + 2  # the worst case of one event: everything in flight ends
        if sc[S_OUTN] + need > ocap:
            return NEED_INPUT
        for k in range(nsamp):
            if slen[k] - spos[k] < need:
                return NEED_INPUT
        if arrival and (gpos[a] >= glen[a] or ppos[a] >= plen[a] or sc[S_NFREE] == 0):
            return NEED_INPUT
        sc[S_EVENTS] += 1
        if not arrival:
            q = cr[0]
            cal_pop()
            b = ri[q, R_BE]
            complete(now, gidx[be_base[b] + ri[q, R_LOCAL]], q)
            continue
        # an arrival: the engine's traffic callback, then DataPlane.arrive
        k = ppos[a]
        ppos[a] = k + 1
        f = src_fe[a]
        sc[S_NFREE] -= 1
        q = free[sc[S_NFREE]]
        sc[S_INFLIGHT] += 1
        r_t0[q] = now
        ri[q, R_SRC] = addrs[aoff[a] + picks[a, k]]
        ri[q, R_PORT] = ports[a, k]
        fe[f, FE_STOT] += 1
        fe[f, FE_BIN] += fe[f, FE_REQB]
        if fe[f, FE_ACTIVE] >= fe[f, FE_MAXCONN]:
            append(fe, f, FE_BHEAD, q)
        else:
            fe[f, FE_ACTIVE] += 1
            dispatch(now, q, f, now)
        gap = gaps[a, gpos[a]]
        gpos[a] += 1
        t = now + gap
        if t <= duration:  # the traffic callback's follow-up, with the next sequence number
            na_t[a] = t
            na_s[a] = sc[S_SEQ]
            sc[S_SEQ] += 1
        else:
            na_t[a] = np.inf
    if not take_samples(until, False):
        return NEED_INPUT
    return DONE


@nb.njit(cache=True, nogil=True)
def schedule_first(na_t: np.ndarray, na_s: np.ndarray, sc: np.ndarray, t: float, a: int) -> None:
    """Schedule a source's first arrival (the engine's first ``call_later``)."""
    na_t[a] = t
    na_s[a] = sc[S_SEQ]
    sc[S_SEQ] += 1
