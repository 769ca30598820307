"""Analytic queueing results used to check the simulator and to seed capacity plans.

Erlang C gives the probability that an arrival to an M/M/c queue waits; the mean wait
follows from it. These are exact for Poisson arrivals and exponential service, which is
what a scenario with ``arrival: poisson`` and ``service_time: exponential`` models.
"""

from __future__ import annotations

import math


def erlang_c(c: int, offered: float) -> float:
    """Probability of waiting in M/M/c with ``offered`` = λ/μ Erlangs (needs offered < c)."""
    if c < 1:
        raise ValueError("c must be >= 1")
    if offered >= c:
        return 1.0
    # Erlang B by the stable recurrence, then C from B
    b = 1.0
    for k in range(1, c + 1):
        b = offered * b / (k + offered * b)
    rho = offered / c
    return b / (1.0 - rho + rho * b)


def mmc_mean_wait(lam: float, mu: float, c: int) -> float:
    """Mean time in queue (before service) of M/M/c."""
    a = lam / mu
    if a >= c:
        return math.inf
    return erlang_c(c, a) / (c * mu - lam)


def mmc_mean_sojourn(lam: float, mu: float, c: int) -> float:
    """Mean time in system (wait + service) of M/M/c."""
    return mmc_mean_wait(lam, mu, c) + 1.0 / mu


def mmc_wait_quantile(lam: float, mu: float, c: int, q: float) -> float:
    """The q-quantile of the M/M/c waiting time (0 when q is below the no-wait mass)."""
    a = lam / mu
    pw = erlang_c(c, a)
    if q <= 1.0 - pw:
        return 0.0
    return math.log(pw / (1.0 - q)) / (c * mu - lam)


def min_servers_for_wait(lam: float, mu: float, max_mean_wait: float, limit: int = 100_000) -> int:
    """Fewest servers c whose M/M/c mean wait is at most ``max_mean_wait``."""
    c = max(1, math.floor(lam / mu) + 1)
    while c <= limit:
        if mmc_mean_wait(lam, mu, c) <= max_mean_wait:
            return c
        c += 1
    raise ValueError("no server count within the limit meets the target")
