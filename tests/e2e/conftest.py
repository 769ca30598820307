"""Real servers for the ``serve`` tests: ``lbsim serve`` started as a subprocess on a free
loopback port, and the real ``openstack`` command line client from its own venv."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent


def free_port() -> int:
    """A port nobody listens on right now (loopback)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    """A running ``lbsim serve``."""

    proc: subprocess.Popen[str]
    endpoint: str
    stdout_lines: list[str] = field(default_factory=list)

    def client(self) -> httpx.Client:
        """An HTTP client on the endpoint."""
        return httpx.Client(base_url=self.endpoint, timeout=60)

    def clock(self) -> dict[str, Any]:
        """The twin's clock."""
        return dict(httpx.get(self.endpoint + "/lbsim/v1/clock", timeout=60).json())

    def advance(self, seconds: float) -> None:
        """Move the (manual) clock forward."""
        if seconds > 0:
            r = httpx.post(self.endpoint + "/lbsim/v1/clock/advance", json={"seconds": seconds}, timeout=120)
            r.raise_for_status()

    def advance_to(self, t: float) -> None:
        """Move the clock to simulated time ``t`` (no-op when past it)."""
        self.advance(t - float(self.clock()["now"]))

    def speed(self, value: float) -> None:
        """Set the clock's speed."""
        httpx.put(self.endpoint + "/lbsim/v1/clock/speed", json={"speed": value}, timeout=60).raise_for_status()

    def stop(self) -> tuple[int, str]:
        """Ctrl-C, as a user would; returns the exit code and stderr."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        try:
            _, err = self.proc.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            _, err = self.proc.communicate()
        return int(self.proc.returncode), err


def start_serve(*args: str, port: int | None = None) -> Served:
    """Start ``lbsim serve ARGS`` on a free loopback port and wait until it answers."""
    port = port or free_port()
    cmd = [sys.executable, "-m", "lbsim.cli.main", "serve", *args, "--port", str(port)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # printed once the socket is bound
    if not first:
        _, err = proc.communicate(timeout=30)
        raise AssertionError(f"lbsim serve did not start: {err}")
    endpoint = f"http://127.0.0.1:{port}"
    assert first.strip() == f"export OS_AUTH_TYPE=none OS_ENDPOINT={endpoint}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if httpx.get(endpoint + "/", timeout=5).status_code == 200:
                return Served(proc, endpoint, [first])
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise AssertionError("lbsim serve did not answer within 30 s")


@pytest.fixture
def serve() -> Iterator[Callable[..., Served]]:
    """A factory of ``lbsim serve`` processes, all stopped at the end of the test."""
    started: list[Served] = []

    def make(*args: str) -> Served:
        s = start_serve(*args)
        started.append(s)
        return s

    yield make
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def openstack_cli() -> str:
    """The real ``openstack`` executable: ``$LBSIM_OPENSTACK_CLI`` (set by ``.ci/run``), else
    the venv ``.ci/openstack-venv.sh`` builds (idempotent)."""
    path = os.environ.get("LBSIM_OPENSTACK_CLI")
    if not path:
        out = subprocess.run(["bash", str(ROOT / ".ci" / "openstack-venv.sh")], capture_output=True, text=True)
        if out.returncode != 0:
            pytest.fail(f".ci/openstack-venv.sh failed: {out.stderr[-2000:]}")
        path = out.stdout.strip().splitlines()[-1]
    if not (shutil.which(path) or Path(path).is_file()):
        pytest.fail(f"no openstack CLI at {path}")
    return path


def run_cli(cli: str, endpoint: str, command: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run one recorded ``openstack ...`` command line (its shell quoting) against ``endpoint``."""
    import shlex

    argv = shlex.split(command)
    assert argv[0] == "openstack"
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update({"OS_AUTH_TYPE": "none", "OS_ENDPOINT": endpoint, "COLUMNS": "250"})
    return subprocess.run([cli, *argv[1:]], capture_output=True, text=True, env=env, timeout=timeout)


class OscDriver:
    """The real openstack client, many commands in one interpreter (``osc_driver.py``)."""

    def __init__(self, cli: str) -> None:
        python = Path(cli).with_name("python")
        self.proc = subprocess.Popen(
            [str(python), str(HERE / "osc_driver.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )

    def run(self, endpoint: str, command: str) -> subprocess.CompletedProcess[str]:
        """One ``openstack ...`` command line (shell quoting) against ``endpoint``."""
        import json
        import shlex

        argv = shlex.split(command)
        assert argv[0] == "openstack"
        env = {"OS_AUTH_TYPE": "none", "OS_ENDPOINT": endpoint, "COLUMNS": "250"}
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"argv": argv[1:], "env": env}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise AssertionError("the openstack client driver died")
        res = json.loads(line)
        return subprocess.CompletedProcess(argv, res["rc"], res["stdout"], res["stderr"])

    def close(self) -> None:
        """Stop the driver."""
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


@pytest.fixture
def osc(openstack_cli: str) -> Iterator[OscDriver]:
    """The real openstack client in one long-lived interpreter."""
    driver = OscDriver(openstack_cli)
    yield driver
    driver.close()
