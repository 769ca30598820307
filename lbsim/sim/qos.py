"""VIP QoS (``vip_qos_policy_id``): Neutron's bandwidth limit on the VIP port, in the data plane.

Octavia applies the QoS policy named by ``vip_qos_policy_id`` to the VIP port (and the
amphorae's VRRP ports); Neutron enforces its ``bandwidth_limit`` rule (``max_kbps``,
``max_burst_kbps``) on what leaves through that port. lbsim models it as a token bucket on
the response bytes of every listener of the load balancer: the bucket fills at
``max_kbps`` (kilobits per second) up to ``max_burst_kbps`` kilobits (Neutron's default
burst, when the rule gives none, is 80 % of the rate, as the OVS driver uses); a response
that finds too few tokens waits, first come first served, until enough have accumulated.

When the offered response bytes exceed the limit, the wait grows without bound; a response
that would wait longer than the listener's ``timeout_client_data`` (HAProxy cuts a client
that does not drain its data within ``timeout client``) is dropped and counted with
outcome ``qos``. Throughput through the VIP is therefore capped at the limit, latency
grows with the backlog, and the excess is lost: the effects an operator sees.
"""

from __future__ import annotations

from typing import Any

#: the burst Neutron's OVS driver uses when a bandwidth-limit rule has none: 80 % of max_kbps
DEFAULT_BURST_SHARE = 0.8


class VipShaper:
    """A token bucket on the VIP's response bytes (``rate`` and ``burst`` in bytes)."""

    __slots__ = ("burst", "dropped", "last", "rate", "shaped", "timeouts", "tokens")

    def __init__(self, max_kbps: int, max_burst_kbps: int | None, timeouts: dict[str, float] | None = None):
        self.rate = max_kbps * 1000.0 / 8.0
        burst_kbits = max_burst_kbps if max_burst_kbps else DEFAULT_BURST_SHARE * max_kbps
        self.burst = max(burst_kbits * 1000.0 / 8.0, 1.0)
        self.tokens = self.burst
        self.last = 0.0
        #: responses that had to wait, and responses dropped
        self.shaped = 0
        self.dropped = 0
        #: each listener's timeout_client_data in seconds (the scenario's; default 50 s)
        self.timeouts = timeouts or {}

    def timeout_client(self, fe: Any) -> float:
        """How long HAProxy lets a client take to drain a response on this frontend: the
        router's (which follows API updates) when it has one, else the scenario's."""
        if fe.router is not None:
            return float(fe.router.timeout_client)
        return self.timeouts.get(fe.name, 50.0)

    def wait(self, nbytes: int, now: float) -> float:
        """Seconds the response of ``nbytes`` waits for tokens (0: it leaves at once).

        Tokens may go negative: that is the backlog of responses already waiting, which a
        later response queues behind (first come, first served)."""
        tokens = self.tokens + (now - self.last) * self.rate
        if tokens > self.burst:
            tokens = self.burst
        self.last = now
        tokens -= nbytes
        self.tokens = tokens
        if tokens >= 0.0:
            return 0.0
        self.shaped += 1
        return -tokens / self.rate

    def give_back(self, nbytes: int) -> None:
        """A dropped response never used its tokens."""
        self.tokens += nbytes
        self.dropped += 1


def vip_shaper(scenario: Any, lb: Any) -> VipShaper | None:
    """The shaper for ``lb``'s VIP, or None without a QoS policy (or one without a limit)."""
    name = getattr(lb, "vip_qos_policy_id", None)
    if name is None:
        return None
    policy = next((q for q in scenario.network.qos_policies if q.name == name), None)
    if policy is None or not policy.max_kbps:
        return None  # Neutron: a policy without a bandwidth-limit rule (or 0) limits nothing
    timeouts = {
        li.name: (li.timeout_client_data if li.timeout_client_data is not None else 50000) / 1000.0
        for li in lb.listeners
    }
    return VipShaper(policy.max_kbps, policy.max_burst_kbps, timeouts)
