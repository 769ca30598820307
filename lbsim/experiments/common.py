"""Names every part of the sweep machinery shares: metric names, store layout, types."""

from __future__ import annotations

from collections.abc import Callable

PathT = tuple[str | int, ...]
ProgressCallback = Callable[[int, int], None]
"""``progress(done, total)``: runs finished (stored ones included) out of all runs."""

#: metrics every run row carries, with their meaning (units in brackets)
BASE_METRICS: dict[str, str] = {
    "requests": "requests that arrived after warm-up and completed [count]",
    "ok": "successful requests [count]",
    "errors": "failed requests, every kind [count]",
    "error_rate": "errors / requests",
    "availability": "ok / requests",
    "throughput": "successful requests per second after warm-up [1/s]",
    "latency_mean": "mean latency of successful requests [s]",
    "latency_p50": "median latency [s]",
    "latency_p95": "95th percentile latency [s]",
    "latency_p99": "99th percentile latency [s]",
    "load_imbalance": "most-loaded member's requests / mean per member (1 = even)",
    "expectations_held": "1 when every expectation of the scenario held, else 0",
}
#: metrics whose per-point summary is a pass count rather than a mean
_PASS_PREFIXES = ("expect_", "expectations_held")
STORE_DIR = "store"
LOG_NAME = "executed.log"


def die_with_parent(parent_pid: int) -> None:
    """Worker initializer: end this process when the process that started it ends.

    A sweep killed with SIGKILL or SIGTERM gets no chance to shut its pool down; without
    this its workers would finish their runs and keep writing to the store for a minute.
    On Linux ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` makes the kernel kill the worker with
    its parent; if the parent is already gone by the time this runs, the worker exits.
    """
    import ctypes
    import ctypes.util
    import os
    import signal
    import sys

    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            pr_set_pdeathsig = 1
            libc.prctl(pr_set_pdeathsig, int(signal.SIGKILL), 0, 0, 0)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent_pid:
        os._exit(1)
