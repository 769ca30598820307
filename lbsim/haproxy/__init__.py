"""What runs on the amphora, as pure logic: HAProxy's balancing algorithms, its health-check
counter and timing, and the haproxy.cfg Octavia renders.

No SimPy here: :mod:`lbsim.sim` drives these in simulated time. Imports :mod:`lbsim.scenario` only.
"""
