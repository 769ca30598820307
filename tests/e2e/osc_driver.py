"""Run many ``openstack`` command lines in one interpreter of the CLI's own venv.

Started as ``<venv>/bin/python osc_driver.py``; reads one JSON request a line on stdin
(``{"argv": [...], "env": {...}}``) and answers one JSON line on stdout (``rc``, ``stdout``,
``stderr``). Each command runs the real client's entry point,
``openstackclient.shell.main(argv)``, with a fresh shell, so the code path is the one the
``openstack`` executable takes; only the interpreter start-up (about a second per command)
is saved, and ``--wait``'s 3-second poll sleep is shortened (the twin's clock runs faster
than the wall clock while a command waits).
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import time

_real_sleep = time.sleep


def _short_sleep(seconds: float) -> None:
    _real_sleep(min(seconds, 0.25))


def run(argv: list[str], env: dict[str, str]) -> dict[str, object]:
    """One command: its exit code and what it printed."""
    from openstackclient import shell

    for k in [k for k in os.environ if k.startswith("OS_")]:
        del os.environ[k]
    os.environ.update(env)
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            rc = shell.main(argv)
        except SystemExit as exc:  # argparse errors exit 2
            rc = exc.code if isinstance(exc.code, int) else 1
    for h in list(root.handlers):
        root.removeHandler(h)
    return {"rc": int(rc or 0), "stdout": out.getvalue(), "stderr": err.getvalue()}


def main() -> None:
    time.sleep = _short_sleep
    sys.argv[0] = "openstack"  # argparse names the program after it
    real_stdout = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        result = run(req["argv"], req.get("env", {}))
        real_stdout.write(json.dumps(result) + "\n")
        real_stdout.flush()


if __name__ == "__main__":
    main()
