"""``l7.csv``: what each L7 policy did with the requests of a run.

One row per listener and policy that decided at least one request after warm-up, plus
``(default)`` for requests that matched no policy and went to the listener's default
pool. Columns (added at the end only, as every result table):

``listener, policy, position, action, matched, redirected, rejected, to_pool``

``matched`` counts the requests the policy decided; ``redirected`` those answered with
its redirect code (REDIRECT_TO_URL / REDIRECT_PREFIX), ``rejected`` those answered 403
(REJECT), ``to_pool`` those handed to its pool's backend (REDIRECT_TO_POOL, or the
default pool for ``(default)``). ``position`` is the policy's position at the end of the
run (empty for ``(default)``); ``action`` is ``DEFAULT_POOL`` for the default row.
"""

from __future__ import annotations

import pandas as pd

from lbsim.sim.engine import RawRun

L7_COLUMNS = ["listener", "policy", "position", "action", "matched", "redirected", "rejected", "to_pool"]


def l7_frame(raw: RawRun) -> pd.DataFrame | None:
    """The ``l7.csv`` table, or None when the run has no L7 policies."""
    ctx = getattr(raw.dp, "l7", None)
    if ctx is None or not ctx.stats.counts:
        return None
    return pd.DataFrame(ctx.stats.rows(), columns=L7_COLUMNS)
