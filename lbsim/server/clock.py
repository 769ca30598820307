"""The serve clock: wall time × speed → simulated time.

``sim_now()`` is where the Twin should be now: the simulated time at the last re-base plus
the wall seconds since then times ``speed``. Speed 0 (``--speed 0``) and ``pause()`` stop it;
``advance(dt)`` moves it by hand. Re-basing on every speed change keeps simulated time
continuous and never backwards. ``wall_now`` is injectable so that tests drive it.
"""

from __future__ import annotations

import time
from collections.abc import Callable


class SimClock:
    """Maps the wall clock onto the Twin's simulated clock."""

    def __init__(self, speed: float = 1.0, *, start: float = 0.0, wall_now: Callable[[], float] = time.monotonic):
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self._wall_now = wall_now
        self._speed = float(speed)
        self._paused = False
        self._base_sim = float(start)
        self._base_wall = wall_now()

    @property
    def speed(self) -> float:
        """Simulated seconds per wall second (0: manual)."""
        return self._speed

    @property
    def paused(self) -> bool:
        """True while paused (time stands still whatever the speed)."""
        return self._paused

    @property
    def running(self) -> bool:
        """True when simulated time moves by itself."""
        return not self._paused and self._speed > 0

    def sim_now(self) -> float:
        """The simulated time that corresponds to the wall clock now."""
        if not self.running:
            return self._base_sim
        return self._base_sim + (self._wall_now() - self._base_wall) * self._speed

    def _rebase(self) -> None:
        self._base_sim = self.sim_now()
        self._base_wall = self._wall_now()

    def set_speed(self, speed: float) -> None:
        """Change the speed from now on (0 stops the clock)."""
        if not speed >= 0 or speed == float("inf"):
            raise ValueError("speed must be a finite number >= 0")
        self._rebase()
        self._speed = float(speed)

    def pause(self) -> None:
        """Stop simulated time."""
        self._rebase()
        self._paused = True

    def resume(self) -> None:
        """Let simulated time run again at the current speed."""
        self._rebase()
        self._paused = False

    def advance(self, seconds: float) -> float:
        """Move simulated time forward by hand; returns the new time."""
        if not seconds >= 0 or seconds == float("inf"):
            raise ValueError("seconds must be a finite number >= 0")
        self._rebase()
        self._base_sim += float(seconds)
        return self._base_sim

    def hold_back(self, t: float) -> None:
        """Let the clock say ``t`` now (``t`` behind it): the simulation could not keep up, so
        simulated time runs slower than asked instead of piling up work."""
        if t < self.sim_now():
            self._rebase()
            self._base_sim = t

    def catch_up(self, t: float) -> None:
        """Never show a time before ``t`` (the Twin is already there)."""
        if t > self.sim_now():
            self._rebase()
            self._base_sim = t
