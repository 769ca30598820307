"""What Octavia's controller does: the provisioning state machine and locks, heartbeat to
operating status, the health manager, the status timeline.

Pure logic over scenario objects (no SimPy except the health manager's stale-scan loop);
imports :mod:`lbsim.scenario` only.
"""
