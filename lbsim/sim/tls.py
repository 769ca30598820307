"""TLS CPU cost per connection (see :mod:`lbsim.scenario.tls` for the model and sources).

:func:`tls_cost_fn` gives a frontend a function ``() -> seconds`` that the data plane adds
to the flavor's per-connection CPU time; None when the listener does no TLS work.
"""

from __future__ import annotations

from collections.abc import Callable

from lbsim.scenario.tls import TlsCost
from lbsim.sim.distributions import BLOCK, stream


def tls_cost_fn(
    cost: TlsCost,
    terminated: bool,
    reencrypt: bool,
    reuse: float,
    request_bytes: int,
    response_bytes: int,
    seed: int,
    listener: str,
) -> Callable[[], float] | None:
    """The TLS CPU time of one connection on ``listener``; None without TLS work.

    ``terminated``: a TERMINATED_HTTPS listener (handshake with the client, full or
    resumed with probability ``reuse``); ``reencrypt``: the pool has ``tls_enabled``.
    """
    if not terminated and not reencrypt:
        return None
    nbytes = request_bytes + response_bytes
    fixed = 0.0
    if reencrypt:
        fixed += cost.backend_handshake + cost.per_byte * nbytes
    if not terminated:
        return lambda: fixed
    full = fixed + cost.full_handshake + cost.per_byte * nbytes
    resumed = fixed + cost.resumed_handshake + cost.per_byte * nbytes
    if reuse <= 0.0:
        return lambda: full
    if reuse >= 1.0:
        return lambda: resumed
    rng = stream(seed, f"tls:{listener}")
    buf: list[float] = []
    pos = [0]

    def draw() -> float:
        nonlocal buf
        i = pos[0]
        if i >= len(buf):
            buf = rng.random(BLOCK).tolist()
            i = 0
        pos[0] = i + 1
        return resumed if buf[i] < reuse else full

    return draw
