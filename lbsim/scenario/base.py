"""The scenario's vocabulary: Octavia's enumerations and limits, the constrained field types,
the strict base model, and the distributions every timed field uses (contract "Distributions").
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
)

# --------------------------------------------------------------------------------------
# Octavia constants (octavia-semantics.md §4)
# --------------------------------------------------------------------------------------

LISTENER_PROTOCOLS = ("TCP", "HTTP", "HTTPS", "TERMINATED_HTTPS", "UDP", "SCTP", "PROMETHEUS")
POOL_PROTOCOLS = ("TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2", "UDP", "SCTP")
LB_ALGORITHMS = ("ROUND_ROBIN", "LEAST_CONNECTIONS", "SOURCE_IP", "SOURCE_IP_PORT")
HM_TYPES = ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO", "UDP-CONNECT", "SCTP")
HTTP_METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "TRACE", "OPTIONS", "CONNECT", "PATCH")
PERSISTENCE_TYPES = ("SOURCE_IP", "HTTP_COOKIE", "APP_COOKIE")
MAX_TIMEOUT_MS = 2_073_600_000  # 24 days, Octavia's listener timeout upper bound

#: listener protocol -> pool protocols Octavia accepts (VALID_LISTENER_POOL_PROTOCOL_MAP)
LISTENER_POOL_PROTOCOLS: dict[str, tuple[str, ...]] = {
    "TCP": ("HTTP", "HTTPS", "PROXY", "PROXYV2", "TCP"),
    "HTTP": ("HTTP", "PROXY", "PROXYV2"),
    "HTTPS": ("HTTPS", "PROXY", "PROXYV2", "TCP"),
    "TERMINATED_HTTPS": ("HTTP", "PROXY", "PROXYV2"),
    "UDP": ("UDP",),
    "SCTP": ("SCTP",),
    "PROMETHEUS": (),
}
#: pool protocol -> health monitor types Octavia accepts
POOL_HM_TYPES: dict[str, tuple[str, ...]] = {
    "UDP": ("UDP-CONNECT", "SCTP", "TCP", "HTTP"),
    "SCTP": ("UDP-CONNECT", "SCTP", "TCP", "HTTP"),
    **{p: ("HTTP", "HTTPS", "PING", "TCP", "TLS-HELLO") for p in ("TCP", "HTTP", "HTTPS", "PROXY", "PROXYV2")},
}
#: listener protocol -> L4 protocol, for the per-LB port uniqueness rule
L4_PROTOCOL = {
    "TCP": "TCP",
    "HTTP": "TCP",
    "HTTPS": "TCP",
    "TERMINATED_HTTPS": "TCP",
    "PROMETHEUS": "TCP",
    "UDP": "UDP",
    "SCTP": "SCTP",
}
_EXPECTED_CODES = re.compile(r"^(\d{3}(\s*,\s*\d{3})*)$|^(\d{3}-\d{3})$")

Name = Annotated[str, Field(min_length=1, max_length=255, pattern=r"^[A-Za-z0-9_.@\-]+$")]
Port = Annotated[int, Field(ge=1, le=65535)]
TimeoutMs = Annotated[int, Field(ge=0, le=MAX_TIMEOUT_MS)]
NonNegTime = Annotated[float, Field(ge=0)]
PosFloat = Annotated[float, Field(gt=0)]


class _Strict(BaseModel):
    """Base for all scenario models: unknown keys are errors.

    Infinite and NaN numbers are refused too: YAML spells them ``.inf`` / ``.nan``, and
    a ``duration: .inf`` or ``rate: .inf`` would otherwise pass every range check and
    make a run that never ends.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


# --------------------------------------------------------------------------------------
# Distributions (contract: "Distributions")
# --------------------------------------------------------------------------------------


class Constant(_Strict):
    """Always the same value."""

    dist: Literal["constant"]
    value: NonNegTime


class Exponential(_Strict):
    """Exponential with the given mean (memoryless service or inter-event times)."""

    dist: Literal["exponential"]
    mean: PosFloat


class LogNormal(_Strict):
    """Log-normal with the given mean and log-space standard deviation ``sigma``."""

    dist: Literal["lognormal"]
    mean: PosFloat
    sigma: Annotated[float, Field(ge=0)]


class Gamma(_Strict):
    """Gamma with the given mean and coefficient of variation ``cv`` (std/mean)."""

    dist: Literal["gamma"]
    mean: PosFloat
    cv: PosFloat


class Uniform(_Strict):
    """Uniform on [low, high]."""

    dist: Literal["uniform"]
    low: NonNegTime
    high: NonNegTime

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if self.high < self.low:
            raise ValueError(f"high ({self.high}) must be >= low ({self.low})")
        return self


class Empirical(_Strict):
    """Resampling of observed values, given inline or as a one-column CSV file."""

    dist: Literal["empirical"]
    samples: list[NonNegTime] | None = Field(default=None, min_length=1)
    file: str | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Empirical:
        if (self.samples is None) == (self.file is None):
            raise ValueError("give exactly one of 'samples' or 'file'")
        return self


Distribution = Annotated[
    Constant | Exponential | LogNormal | Gamma | Uniform | Empirical,
    Field(discriminator="dist"),
]


def _const(value: float) -> Constant:
    return Constant(dist="constant", value=value)


def _exp(mean: float) -> Exponential:
    return Exponential(dist="exponential", mean=mean)
