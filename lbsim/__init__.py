"""lbsim: a discrete-event digital twin of OpenStack Octavia."""

__version__ = "0.1.0"

