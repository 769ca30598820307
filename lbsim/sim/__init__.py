"""Time: the kernel, the engine that wires a run, traffic, distributions, the HAProxy data plane,
amphorae and failover, autoscaling.

Imports :mod:`lbsim.scenario`, :mod:`lbsim.octavia` and :mod:`lbsim.haproxy`; nothing above.
"""
