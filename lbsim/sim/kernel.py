"""The simulation kernel: a SimPy environment with a second, lightweight calendar.

SimPy events and processes carry everything where time passes in a structured way
(health checks, heartbeats, control-plane workers, scheduled faults). The data plane
schedules millions of tiny callbacks (an arrival, a completion), for which a full SimPy
event is more than is needed: :class:`TwinEnvironment` keeps them on a plain heap of
``(time, seq, fn, a, b)`` entries and interleaves both calendars in time order, so
``env.now``, ``env.run()`` and every SimPy process behave exactly as in SimPy. At equal
times SimPy's events run first; among data-plane callbacks, first scheduled runs first.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from heapq import heappop, heappush, heapreplace
from typing import Any

import simpy
from simpy.core import SimTime
from simpy.events import NORMAL, URGENT, EventPriority

#: a fast-calendar callback ``fn(a, b)``; it may return ``(time, a, b)``: run ``fn`` again then
Callback = Callable[[Any, Any], Any]


class TwinEnvironment(simpy.Environment):
    """A SimPy environment with a fast calendar for data-plane callbacks."""

    def __init__(self, initial_time: float = 0.0) -> None:
        super().__init__(initial_time)
        self.fast: list[tuple[float, int, Callback, Any, Any]] = []
        self.fast_seq = itertools.count()
        #: the compiled data plane (lbsim.sim.compiled) when it owns the requests: it is
        #: advanced up to each SimPy event (the processes that read data-plane state)
        self.chunked: Any = None
        #: set whenever a SimPy event is scheduled: :meth:`run` keeps the time of SimPy's
        #: next event in a local and reads the queue again only when this is set
        self.queue_changed = False

    def schedule(self, event: simpy.Event, priority: EventPriority = NORMAL, delay: SimTime = 0) -> None:
        """SimPy's ``schedule``, noting that the SimPy queue changed (see :meth:`run`)."""
        super().schedule(event, priority, delay)
        self.queue_changed = True

    def call_later(self, delay: float, fn: Callback, a: Any = None, b: Any = None) -> None:
        """Run ``fn(a, b)`` ``delay`` seconds from now (delay >= 0)."""
        heappush(self.fast, (self._now + delay, next(self.fast_seq), fn, a, b))

    def call_first(self, delay: float, fn: Callback, a: Any = None, b: Any = None) -> None:
        """Run ``fn(a, b)`` ``delay`` seconds from now, before anything else due then.

        Used for scheduled faults and API calls, so that a check or request at the same
        instant already sees their effect.
        """
        ev = simpy.Event(self)
        ev._ok = True
        ev._value = None
        ev.callbacks = [lambda _ev: fn(a, b)]
        self.schedule(ev, URGENT, delay)

    def peek(self) -> float:
        """Time of the next event on either calendar."""
        t = super().peek()
        if self.fast and self.fast[0][0] < t:
            return self.fast[0][0]
        return t

    def run(self, until: Any = None) -> Any:
        """Like SimPy's ``run``; a numeric ``until`` runs a tight loop over both calendars.

        Events due strictly before ``until`` are processed, then the clock is set to
        ``until`` (as SimPy does). Other forms of ``until`` defer to SimPy.
        """
        if until is None or isinstance(until, simpy.Event):
            return super().run(until)
        at = float(until)
        if at <= self._now:
            raise ValueError(f"until ({at}) must be greater than the current simulation time")
        if self.chunked is not None:
            return self._run_chunked(at)
        fast = self.fast
        queue = self._queue
        simpy_step = super().step
        pop = heappop
        replace = heapreplace
        seq = self.fast_seq
        inf = math.inf
        qt = queue[0][0] if queue else inf  # when SimPy's next event is due
        self.queue_changed = False
        while True:
            if self.queue_changed:  # a callback scheduled a SimPy event
                qt = queue[0][0] if queue else inf
                self.queue_changed = False
            if fast:
                t, _, fn, a, b = fast[0]
                if qt <= t:  # SimPy's events first on equal times
                    if qt >= at:
                        break
                    simpy_step()
                    qt = queue[0][0] if queue else inf
                    continue
                if t >= at:
                    break
                self._now = t
                # A callback may hand back its own follow-up (time, a, b): replacing the
                # entry it came from costs one heap sift instead of a pop and a push. The
                # entry is still the heap's top, since anything the callback scheduled
                # is due no earlier and was scheduled later.
                again = fn(a, b)
                if again is None:
                    pop(fast)
                else:
                    t, a, b = again
                    replace(fast, (t, next(seq), fn, a, b))
            elif qt < at:
                simpy_step()
                qt = queue[0][0] if queue else inf
            else:
                break
        self._now = at
        return None

    def _run_chunked(self, at: float) -> None:
        """``run`` while the compiled data plane owns the requests.

        Callbacks on the fast calendar (health checks) neither read nor change the data
        plane in a run the compiled path covers, so only SimPy events cut chunks: before
        one due at ``t`` the data plane processes everything due strictly before ``t``
        (at equal times SimPy's events run first, as in :meth:`run`).
        """
        fast = self.fast
        queue = self._queue
        simpy_step = super().step
        seq = self.fast_seq
        chunked = self.chunked
        while True:
            if fast and (not queue or fast[0][0] < queue[0][0]):
                top = fast[0]
                if top[0] >= at:
                    break
                self._now = top[0]
                fn = top[2]
                again = fn(top[3], top[4])
                if again is None:
                    heappop(fast)
                else:
                    heapreplace(fast, (again[0], next(seq), fn, again[1], again[2]))
            elif queue and queue[0][0] < at:
                chunked.advance(queue[0][0])
                simpy_step()
            else:
                break
        chunked.advance(at)
        self._now = at

    def step(self) -> None:
        """Process the next event of either calendar (SimPy's first on equal times)."""
        if self.chunked is not None and self._queue:
            self.chunked.advance(self._queue[0][0])
        fast = self.fast
        if fast:
            q = self._queue
            if not q or fast[0][0] < q[0][0]:
                t, _, fn, a, b = heappop(fast)
                self._now = t
                again = fn(a, b)
                if again is not None:
                    heappush(fast, (again[0], next(self.fast_seq), fn, again[1], again[2]))
                return
        super().step()
