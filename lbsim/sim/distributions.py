"""Random quantities: named, reproducible streams and fast samplers for distributions.

Every random quantity in a run draws from its own stream, derived from the scenario seed
and a stable name ("service:web-1", "arrivals:0", ...). Adding a stream never changes the
numbers another stream produces, so two scenarios that differ only in, say, the balancing
algorithm see the same arrivals and service demands (common random numbers).

Samplers draw numbers in blocks with numpy and hand them out one at a time, which keeps
per-request cost to a list index instead of a numpy call.
"""

from __future__ import annotations

import math
import zlib
from pathlib import Path

import numpy as np

from lbsim.scenario import model as m
from lbsim.scenario.datafiles import read_samples, resolve
from lbsim.scenario.sanity import GAMMA_MAX_CV

BLOCK = 4096
#: validation refuses a larger gamma cv (scenario.sanity): its shape (1/cv²) puts all mass at 0
GAMMA_MIN_SHAPE = 1.0 / (GAMMA_MAX_CV * GAMMA_MAX_CV)


def stream(seed: int, name: str) -> np.random.Generator:
    """An independent generator for ``name`` under ``seed`` (stable across versions)."""
    key = zlib.crc32(name.encode("utf-8"))
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(seed, spawn_key=(key,))))


class Sampler:
    """Draws from one distribution, block by block; ``sampler()`` returns the next value.

    ``block`` trades numpy call overhead against memory: thousands of members each
    holding a large block would spend more on memory traffic than they save.
    """

    __slots__ = ("_block", "_buf", "_draw", "_i", "mean")

    def __init__(self, draw: object, mean: float, block: int = BLOCK) -> None:
        self._draw = draw  # callable(n) -> np.ndarray
        self._buf: list[float] = []
        self._i = 0
        self._block = block
        self.mean = mean

    def __call__(self) -> float:
        i = self._i
        buf = self._buf
        if i >= len(buf):
            buf = self._buf = self._draw(self._block).tolist()  # type: ignore[operator]
            i = 0
        self._i = i + 1
        return buf[i]


def make_sampler(dist: m.Distribution, rng: np.random.Generator, base_dir: Path | None = None) -> Sampler:
    """A sampler for a scenario distribution, drawing from ``rng``."""
    if isinstance(dist, m.Constant):
        value = float(dist.value)
        return Sampler(lambda n: np.full(n, value), value)
    if isinstance(dist, m.Exponential):
        mean = float(dist.mean)
        return Sampler(lambda n: rng.exponential(mean, n), mean)
    if isinstance(dist, m.LogNormal):
        # choose mu so that the distribution's mean is the requested one
        sigma = float(dist.sigma)
        mu = math.log(dist.mean) - sigma * sigma / 2.0
        return Sampler(lambda n: rng.lognormal(mu, sigma, n), float(dist.mean))
    if isinstance(dist, m.Gamma):
        mean = float(dist.mean)
        var_ratio = float(dist.cv) * float(dist.cv)  # may underflow to 0 or overflow to inf
        if var_ratio <= 0.0 or not math.isfinite(1.0 / var_ratio) or 1.0 / var_ratio > 1e12:
            return Sampler(lambda n: np.full(n, mean), mean)  # no spread left: a constant
        shape = 1.0 / var_ratio
        if shape < GAMMA_MIN_SHAPE:
            raise ValueError(f"gamma cv {dist.cv:g} is too large (the largest usable cv is {GAMMA_MAX_CV:g})")
        scale = mean / shape
        return Sampler(lambda n: rng.gamma(shape, scale, n), mean)
    if isinstance(dist, m.Uniform):
        lo, hi = float(dist.low), float(dist.high)
        return Sampler(lambda n: rng.uniform(lo, hi, n), (lo + hi) / 2.0)
    if isinstance(dist, m.Empirical):
        samples = np.asarray(
            dist.samples if dist.samples is not None else _read_samples(dist.file, base_dir),
            dtype=float,
        )
        return Sampler(lambda n: rng.choice(samples, n), float(samples.mean()))
    raise TypeError(f"unknown distribution {dist!r}")


def _read_samples(file: str | None, base_dir: Path | None) -> list[float]:
    assert file is not None
    return read_samples(resolve(file, base_dir))
