"""Scaling policy evaluation, apart from the SimPy process that acts on it.

:func:`scaling_rule` is the decision of one evaluation -- target tracking (the Kubernetes HPA
rule: ``ceil(load / target)`` members, act outside ``target +- tolerance``) or step
thresholds (a Heat scaling policy behind an Aodh alarm). It is a pure function of the
policy, the measurement and the current capacity, so it is tested without a simulation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lbsim.scenario import model as m


@dataclass(frozen=True)
class Measure:
    """The policy metric at one evaluation: per serving member, the load it implies, who serves."""

    value: float
    load: float
    serving: int


def target_level(pol: m.Autoscaling) -> float:
    """The policy's target per member (NaN for step policies)."""
    if pol.policy == "target_tracking":
        return float(pol.target or math.nan)
    return math.nan


def scaling_rule(pol: m.Autoscaling, meas: Measure, cap: int) -> tuple[int, int | None, str]:
    """(members to add (<0: remove), the count the metric implies, the reason).

    Pure: the policy, what was measured and the current capacity decide it; cooldowns,
    evaluation streaks and limits at the edges are the :class:`Autoscaler`'s business.
    """
    v = meas.value
    if pol.policy == "target_tracking":
        assert pol.target is not None
        implied = max(1, math.ceil(meas.load / pol.target - 1e-9))
        why = f"{pol.metric} {v:.4g} per member (target {pol.target:g}) implies {implied}"
        ratio = v / pol.target
        if abs(ratio - 1.0) <= pol.tolerance:
            return 0, None, why
        desired = min(max(implied, pol.min_members), pol.max_members)
        want = desired - cap
        # act only in the direction the per-member value points (HPA): members still
        # draining or booting can make the pool total and the count disagree for a while
        if (ratio > 1.0 and want < 0) or (ratio < 1.0 and want > 0):
            return 0, implied, why
        if want > 0 and pol.scale_out_step is not None:
            want = min(want, pol.scale_out_step)
        if want < 0 and pol.scale_in_step is not None:
            want = max(want, -pol.scale_in_step)
        return want, implied, why
    assert pol.scale_out_threshold is not None and pol.scale_in_threshold is not None
    if v > pol.scale_out_threshold:
        step = pol.scale_out_step or 1
        why = f"{pol.metric} {v:.4g} per member above {pol.scale_out_threshold:g}"
        return min(step, pol.max_members - cap), cap + step, why
    if v < pol.scale_in_threshold:
        step = pol.scale_in_step or 1
        why = f"{pol.metric} {v:.4g} per member below {pol.scale_in_threshold:g}"
        return -min(step, cap - pol.min_members), cap - step, why
    return 0, None, f"{pol.metric} {v:.4g} per member within thresholds"
