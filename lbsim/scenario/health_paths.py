"""What a member's application answers per HTTP path and method, as health checks see it (lbsim).

Octavia's HTTP/HTTPS monitors send ``http_method url_path`` (defaults ``GET /``) and pass
when the status is in ``expected_codes`` (default ``200``). Real applications answer
paths differently: a ``/healthz`` that only reports the process is up can be fine while
``/`` fails, and a monitor pointed at a path the application does not serve gets 404.

A member's ``health_paths`` maps ``"/path"`` or ``"METHOD /path"`` to what the member
answers there: a behaviour (``healthy`` answers 200, ``error`` answers the member's
``status``, ``refuse``, ``hang``, ``slow``) or an HTTP status code. With the map, a path
(and method) not in it answers 404. Without it, every path answers as the traffic port
does (the member's ``behaviour``: shared fate). The map only shapes what the application
answers: a member whose process refuses or hangs (its ``behaviour``, or a fault on its
monitor endpoint) does so on every path. User requests are not affected by the map.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator

from lbsim.scenario.base import HTTP_METHODS

_KEY = re.compile(r"^(?:(?P<method>[A-Z]+) )?(?P<path>/\S*)$")

PathAnswer = int | Literal["healthy", "refuse", "hang", "error", "slow"]


def check_health_paths(paths: dict[str, PathAnswer] | None) -> dict[str, PathAnswer] | None:
    """Validate a member's ``health_paths``: keys ``/path`` or ``METHOD /path`` (one of
    Octavia's HTTP methods), values a behaviour or a status code 100-599."""
    if paths is None:
        return None
    for key, answer in paths.items():
        m = _KEY.match(key)
        if m is None:
            raise ValueError(f"health_paths key {key!r}: expected '/path' or 'METHOD /path' such as 'GET /healthz'")
        if m.group("method") is not None and m.group("method") not in HTTP_METHODS:
            raise ValueError(f"health_paths key {key!r}: the method must be one of {', '.join(HTTP_METHODS)}")
        if isinstance(answer, bool) or (isinstance(answer, int) and not 100 <= answer <= 599):
            raise ValueError(f"health_paths[{key!r}]: expected a behaviour or an HTTP status 100-599, got {answer!r}")
    return paths


#: the ``health_paths`` field type of a member
HealthPaths = Annotated[dict[str, PathAnswer], AfterValidator(check_health_paths)]


def path_table(paths: dict[str, PathAnswer] | None, status: int) -> dict[str, tuple[str, int]] | None:
    """The data plane's view: ``"METHOD /path"`` or ``"/path"`` to (behaviour, status)."""
    if not paths:
        return None
    table: dict[str, tuple[str, int]] = {}
    for key, answer in paths.items():
        if isinstance(answer, int):
            table[key] = ("error", answer)  # an 'error' behaviour answers its status as it is
        else:
            table[key] = (answer, status)
    return table


def answer_for(table: dict[str, tuple[str, int]], method: str, path: str) -> tuple[str, int]:
    """What the member answers a check ``method path``: the method-specific entry, then the
    path's, else 404 (the application has no such route)."""
    hit = table.get(f"{method} {path}")
    if hit is None:
        hit = table.get(path)
    return hit if hit is not None else ("error", 404)
