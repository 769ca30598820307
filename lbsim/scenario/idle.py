"""Idle clients (lbsim): connections that send their request only after a while.

HAProxy's ``timeout client`` is Octavia's listener ``timeout_client_data`` (default
50,000 ms). Octavia renders no ``timeout http-request``, so while HAProxy waits for a
request the client timeout is an inactivity timeout: a client that opens a connection
and stays silent longer than ``timeout_client_data`` is cut, with 408 Request Timeout
in HTTP mode. While it waits, the connection holds one of the frontend's ``maxconn``
slots, so idle clients can fill a listener (a slowloris). A client that trickles its
request in small pieces, each within the timeout, is never cut by it (HAProxy
documentation of ``timeout http-request``); lbsim models the silent wait only.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from lbsim.scenario.base import Distribution, _Strict


class IdleClients(_Strict):
    """A share of a traffic source's connections that stay silent for ``idle`` seconds
    before sending their request."""

    fraction: Annotated[float, Field(gt=0, le=1)]
    idle: Distribution
