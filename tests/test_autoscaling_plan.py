"""`lbsim plan --vary autoscaling.max_members`: the smallest scaler bound that meets the SLOs."""

from __future__ import annotations

import math

from lbsim import parse_scenario
from lbsim.experiments.engines import Engine
from lbsim.experiments.plan import plan

# 70 requests/s; each member serves concurrency / mean = 2 / 0.1 = 20 per second, so at
# least 4 members are needed for a stable queue. The scaler tracks utilisation 0.6, i.e.
# it wants ceil(70 / (20 * 0.6)) = 6 members, but can never exceed max_members.
SCENARIO = """
version: 1
name: bound
seed: 5
duration: 900
warmup: 300
loadbalancer:
  name: lb1
  listeners: [{name: http, protocol: HTTP, protocol_port: 80, default_pool: web}]
  pools:
    - name: web
      protocol: HTTP
      lb_algorithm: LEAST_CONNECTIONS
      members:
        - {name: web-1, address: 10.0.0.11, protocol_port: 8080, concurrency: 2, service_time: {dist: exponential, mean: 0.1}}
      autoscaling:
        policy: target_tracking
        metric: utilisation
        target: 0.6
        window: 30
        evaluation_interval: 15
        scale_out_cooldown: 30
        scale_in_cooldown: 600
        min_members: 1
        max_members: 20
        member_template:
          address_range: 10.0.1.0/24
          protocol_port: 8080
          concurrency: 2
          service_time: {dist: exponential, mean: 0.1}
          boot_time: {dist: constant, value: 20}
traffic:
  - {listener: http, arrival: {process: poisson, rate: 70}}
"""


def test_plan_finds_the_smallest_max_members_that_meets_the_slo() -> None:
    sc = parse_scenario(SCENARIO, "bound.yaml")
    with Engine(jobs=1) as eng:
        res = plan(sc, ["p95<1.0", "errors<0.001"], vary="autoscaling.max_members", replications=2, engine=eng)
    assert res.answer is not None
    stable_from = math.ceil(70 / 20 + 1e-9)  # 4: fewer members cannot keep up at all
    assert stable_from <= res.answer <= 6
    evals = res.evaluations.set_index("max_members")
    # the count just below the answer was tried and failed
    assert res.answer - 1 in evals.index
    assert not bool(evals.loc[res.answer - 1, "all_met"])
    assert bool(evals.loc[res.answer, "all_met"])
