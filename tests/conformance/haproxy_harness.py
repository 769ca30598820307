"""Reusable helpers to run a real HAProxy on loopback for conformance tests.

The conformance suite compares lbsim against a real HAProxy. This module gives
every test the same small toolkit:

* :class:`BackendServer` / :class:`BackendPool`: tiny HTTP servers on 127.0.0.1,
  each answering with its own name, whose behaviour can be switched at run time
  (:class:`Mode`: healthy, refuse, hang, error status, slow). They count requests
  and concurrent connections, so a test can see where HAProxy sent traffic.
* :func:`octavia_backend_config`: an HAProxy configuration shaped like the one the
  Octavia amphora renders (``retries 3``, ``option redispatch``, ``option
  allbackups``, per-server ``weight``/``backup``/``disabled``/``check``), see
  ``octavia-semantics.md`` §3.
* :class:`HAProxy`: starts ``haproxy -f <cfg> -db`` with an admin stats socket in a
  private temporary directory, talks to it (:meth:`HAProxy.command`,
  :meth:`HAProxy.show_stat`, :meth:`HAProxy.set_server_state`, ...) and always stops
  the process.
* :func:`http_get`: one client request with ``Connection: close`` from a chosen
  source address in 127.0.0.0/8 (Linux routes the whole block to ``lo``).
* :func:`require_haproxy`: skip when the binary is missing, fail under ``CI=true``.

Everything binds to 127.0.0.0/8 only, every loop is bounded and every blocking call
has a timeout. Use the classes as context managers (or the fixtures in your test
module) so servers and HAProxy are stopped even when a test fails::

    with BackendPool(["m0", "m1"]) as pool, HAProxy(cfg_text) as hap:
        status, body = http_get(hap.port, src="127.1.2.3")
"""

from __future__ import annotations

import contextlib
import csv
import enum
import io
import json
import os
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

LOOPBACK = "127.0.0.1"
HEALTH_PATH = "/healthz"
"""Path used by the rendered ``option httpchk``; backends count it separately."""


# --------------------------------------------------------------------------------------
# Availability
# --------------------------------------------------------------------------------------


def haproxy_path() -> str | None:
    """Path of the ``haproxy`` binary, or None."""
    return shutil.which("haproxy") or next(
        (p for p in ("/usr/sbin/haproxy", "/usr/local/sbin/haproxy") if os.access(p, os.X_OK)),
        None,
    )


def require_haproxy() -> str:
    """Return the haproxy binary; skip the test if absent, or fail when ``CI=true``."""
    path = haproxy_path()
    if path is None:
        msg = "haproxy binary not found (apt-get install -y haproxy) - conformance test needs it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg + " and CI=true forbids skipping")
        pytest.skip(msg)
    return path


def haproxy_version(binary: str | None = None) -> str:
    """First line of ``haproxy -v``."""
    exe = binary or haproxy_path() or "haproxy"
    out = subprocess.run([exe, "-v"], capture_output=True, text=True, timeout=10, check=True)
    return out.stdout.splitlines()[0].strip()


def free_port(host: str = LOOPBACK) -> int:
    """An unused TCP port on ``host`` (bind to port 0, read it back, release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def ip_to_int(addr: str) -> int:
    """Dotted IPv4 → unsigned 32-bit integer (network order), as HAProxy hashes it."""
    return int.from_bytes(socket.inet_aton(addr), "big")


def int_to_ip(value: int) -> str:
    """Unsigned 32-bit integer → dotted IPv4."""
    return socket.inet_ntoa(int(value).to_bytes(4, "big"))


# --------------------------------------------------------------------------------------
# Backend servers
# --------------------------------------------------------------------------------------


class Mode(enum.Enum):
    """Run-time behaviour of a :class:`BackendServer`."""

    HEALTHY = "healthy"  # 200, body = server name
    REFUSE = "refuse"  # listening socket closed: connections are refused (RST)
    HANG = "hang"  # accepts, reads the request, answers only when released by the test
    ERROR = "error"  # answers with ``error_status`` (default 500)
    SLOW = "slow"  # answers 200 after ``delay`` seconds


class BackendServer:
    """One tiny HTTP/1.1 server on 127.0.0.1 that answers with its name.

    Each accepted connection is served by its own thread: the request head is
    read, then the current :class:`Mode` decides the answer. Responses carry
    ``Connection: close`` and the connection is closed afterwards. Health-check
    requests (path :data:`HEALTH_PATH`) follow the same mode but are counted in
    ``checks`` instead of ``requests`` (a SLOW server answers checks at once, so
    that slowness does not make HAProxy mark it DOWN; a HANG server never answers
    them, like a hung member: L7 timeout). HANG requests are held until
    :meth:`release_held` lets the oldest ones answer 200, the peer closes, or
    :meth:`stop`; ``held()`` counts them. ``active``/``max_active`` count requests
    in progress, ``arrivals`` logs their arrival times.
    """

    def __init__(self, name: str, host: str = LOOPBACK, port: int = 0) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.delay = 0.0
        self.error_status = 500
        self._mode = Mode.HEALTHY
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._sock: socket.socket | None = None
        self._accept_thread: threading.Thread | None = None
        self._conn_threads: list[threading.Thread] = []
        self._open_conns: set[socket.socket] = set()
        self._held: list[threading.Event] = []  # HANG requests, oldest first
        self.requests = 0  # non-health-check requests received
        self.checks = 0  # health-check requests received
        self.active = 0  # requests currently being handled
        self.max_active = 0
        self.arrivals: list[float] = []  # monotonic arrival time of each request

    # -- lifecycle -------------------------------------------------------------

    def start(self) -> BackendServer:
        """Bind (port 0 → ephemeral, remembered for later re-binds) and serve."""
        self._stop.clear()
        self._listen()
        return self

    def _listen(self) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.port))
        s.listen(128)
        s.settimeout(0.1)
        self.port = int(s.getsockname()[1])
        self._sock = s
        t = threading.Thread(target=self._accept_loop, args=(s,), daemon=True)
        t.name = f"backend-{self.name}-accept"
        self._accept_thread = t
        t.start()

    def _close_listener(self) -> None:
        s, t = self._sock, self._accept_thread
        self._sock = None
        self._accept_thread = None
        if s is not None:
            # shutdown first: it stops the kernel accepting at once and wakes the blocked
            # accept(); a bare close() leaves the socket listening until accept() times out
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)
            s.close()
        if t is not None:
            t.join(timeout=2)

    def stop(self) -> None:
        """Close the listener and every open connection; join threads (bounded)."""
        self._stop.set()
        self._close_listener()
        with self._lock:
            conns = list(self._open_conns)
        for c in conns:
            with contextlib.suppress(OSError):
                c.shutdown(socket.SHUT_RDWR)
            with contextlib.suppress(OSError):
                c.close()
        for t in list(self._conn_threads):
            t.join(timeout=2)
        self._conn_threads.clear()

    def __enter__(self) -> BackendServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- behaviour ---------------------------------------------------------------

    @property
    def mode(self) -> Mode:
        """Current behaviour."""
        return self._mode

    def set_mode(self, mode: Mode, *, delay: float | None = None, status: int | None = None) -> None:
        """Switch behaviour now. REFUSE closes the listening socket; leaving REFUSE
        re-binds the same port. ``delay`` (SLOW) and ``status`` (ERROR) are optional."""
        if delay is not None:
            self.delay = float(delay)
        if status is not None:
            self.error_status = int(status)
        old, self._mode = self._mode, mode
        if mode is Mode.REFUSE and old is not Mode.REFUSE:
            self._close_listener()
        elif old is Mode.REFUSE and mode is not Mode.REFUSE and not self._stop.is_set():
            self._listen()

    def held(self) -> int:
        """Number of requests currently held by HANG mode."""
        with self._lock:
            return len(self._held)

    def release_held(self, n: int = 1) -> int:
        """Let the ``n`` oldest held (HANG) requests answer 200; returns how many."""
        with self._lock:
            evs = self._held[:n]
            del self._held[:n]
        for ev in evs:
            ev.set()
        return len(evs)

    def reset_counters(self) -> None:
        """Zero the request/check counters and the arrival log."""
        with self._lock:
            self.requests = self.checks = self.max_active = 0
            self.arrivals.clear()

    # -- serving -------------------------------------------------------------------

    def _accept_loop(self, s: socket.socket) -> None:
        while not self._stop.is_set() and self._sock is s:
            try:
                conn, _ = s.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            t = threading.Thread(target=self._handle, args=(conn,), daemon=True)
            with self._lock:
                self._open_conns.add(conn)
                self._conn_threads = [x for x in self._conn_threads if x.is_alive()]
                self._conn_threads.append(t)
            t.start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            head = _read_head(conn)
            if head is None:
                return
            path = head.split(b" ", 2)[1].decode("latin-1") if head.count(b" ") >= 2 else "/"
            is_check = path.startswith(HEALTH_PATH)
            with self._lock:
                if is_check:
                    self.checks += 1
                else:
                    self.requests += 1
                    self.active += 1
                    self.max_active = max(self.max_active, self.active)
                    self.arrivals.append(time.monotonic())
            try:
                self._answer(conn, is_check)
            finally:
                if not is_check:
                    with self._lock:
                        self.active -= 1
        except OSError:
            pass
        finally:
            with self._lock:
                self._open_conns.discard(conn)
            with contextlib.suppress(OSError):
                conn.close()

    def _hold(self, conn: socket.socket) -> bool:
        """Hold a request until the test releases it (release_held): True. False when the
        peer (HAProxy) closes first or stop() is called: then nothing is answered."""
        ev = threading.Event()
        with self._lock:
            self._held.append(ev)
        try:
            while not self._stop.is_set() and not ev.wait(0.02):
                try:
                    r, _, _ = select.select([conn], [], [], 0)
                    if r and not conn.recv(4096, socket.MSG_PEEK):
                        return False
                except (OSError, ValueError):  # closed by stop()
                    return False
            return not self._stop.is_set()
        finally:
            with self._lock, contextlib.suppress(ValueError):
                self._held.remove(ev)

    def _answer(self, conn: socket.socket, is_check: bool) -> None:
        mode = self._mode
        if mode is Mode.HANG and not is_check:
            if not self._hold(conn):
                return
        elif mode is Mode.HANG:
            return  # a hung server does not answer health checks either
        if mode is Mode.SLOW and not is_check and self._stop.wait(self.delay):
            return
        status = self.error_status if mode is Mode.ERROR else 200
        body = self.name.encode()
        reason = "OK" if status == 200 else "Error"
        conn.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )


def _read_head(conn: socket.socket, limit: int = 65536) -> bytes | None:
    """Read until the end of the HTTP request head; None on EOF/timeout."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        if len(buf) > limit:
            return None
        try:
            chunk = conn.recv(4096)
        except (TimeoutError, OSError):
            return None
        if not chunk:
            return None
        buf += chunk
    return buf


class BackendPool:
    """Several :class:`BackendServer`, started and stopped together.

    ``pool[i]`` / ``pool.by_name[name]`` give the servers; names index counters.
    """

    def __init__(self, names: Sequence[str]) -> None:
        self.servers = [BackendServer(n) for n in names]
        self.by_name = {s.name: s for s in self.servers}

    def __getitem__(self, i: int) -> BackendServer:
        return self.servers[i]

    def __len__(self) -> int:
        return len(self.servers)

    def __iter__(self) -> Iterator[BackendServer]:
        return iter(self.servers)

    def start(self) -> BackendPool:
        """Start every server (stopping the started ones if one fails)."""
        try:
            for s in self.servers:
                s.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every server."""
        for s in self.servers:
            s.stop()

    def reset_counters(self) -> None:
        """Zero every server's counters."""
        for s in self.servers:
            s.reset_counters()

    def requests(self) -> dict[str, int]:
        """Non-check requests received, by server name."""
        return {s.name: s.requests for s in self.servers}

    def __enter__(self) -> BackendPool:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ServerSpec:
    """One ``server`` line (Octavia member_macro, simplified)."""

    name: str
    port: int
    weight: int = 1
    backup: bool = False
    disabled: bool = False  # admin_state_up False → MAINT
    check: bool = False  # health monitor present → ``check inter … fall … rise …``
    host: str = LOOPBACK


@dataclass(frozen=True)
class HealthCheck:
    """An Octavia HTTP health monitor (``delay``/``timeout`` in seconds)."""

    delay: float = 1.0
    timeout: float = 1.0
    rise: int = 2  # max_retries
    fall: int = 3  # max_retries_down
    path: str = HEALTH_PATH


def octavia_backend_config(
    *,
    frontend_port: int,
    stats_socket: Path | str,
    servers: Sequence[ServerSpec],
    balance: str = "roundrobin",
    backend_name: str = "pool",
    health: HealthCheck | None = None,
    timeout_connect_ms: int = 5000,
    timeout_server_ms: int = 50000,
    timeout_client_ms: int = 50000,
    connection_limit: int = 50000,
    global_maxconn: int = 4096,
    extra_backend_lines: Sequence[str] = (),
) -> str:
    """HAProxy configuration with one HTTP listener and one Octavia-style pool.

    Mirrors the amphora template (octavia-semantics.md §3.1-§3.4): ``retries 3``,
    ``option redispatch``, ``option http-keep-alive`` in defaults; ``balance``,
    ``fullconn``, ``option allbackups``, ``timeout connect/server`` in the backend;
    per-server ``weight``, ``backup``, ``disabled`` and ``check inter fall rise``.
    Logging and the peers section are left out (no effect on balancing).
    ``global maxconn`` defaults to 4096 instead of Octavia's 50000 because HAProxy
    refuses to start when it cannot raise the FD limit to about twice that value
    (containers often cap it at 20000); balancing does not depend on it.
    """
    lines = [
        "global",
        f"    maxconn {global_maxconn}",
        f"    stats socket {stats_socket} mode 600 level admin",
        "    stats timeout 30s",
        "",
        "defaults",
        "    no log",
        "    retries 3",
        "    option redispatch",
        "    option http-keep-alive",
        "",
        "frontend listener",
        f"    maxconn {connection_limit}",
        f"    bind {LOOPBACK}:{frontend_port}",
        "    mode http",
        f"    default_backend {backend_name}",
        f"    timeout client {timeout_client_ms}",
        "",
        f"backend {backend_name}",
        "    mode http",
        f"    balance {balance}",
    ]
    if health is not None:
        lines += [
            f"    timeout check {int(health.timeout * 1000)}ms",
            f"    option httpchk GET {health.path}",
            "    http-check expect rstatus 200",
        ]
    lines += [
        f"    fullconn {connection_limit}",
        "    option allbackups",
        f"    timeout connect {timeout_connect_ms}",
        f"    timeout server {timeout_server_ms}",
        *(f"    {x}" for x in extra_backend_lines),
    ]
    for s in servers:
        line = f"    server {s.name} {s.host}:{s.port} weight {s.weight}"
        if s.check and health is not None:
            line += f" check inter {int(health.delay * 1000)}ms fall {health.fall} rise {health.rise}"
        if s.backup:
            line += " backup"
        if s.disabled:
            line += " disabled"
        lines.append(line)
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------
# HAProxy process
# --------------------------------------------------------------------------------------


class HAProxyError(RuntimeError):
    """HAProxy refused the configuration or did not come up."""


class HAProxy:
    """A foreground ``haproxy -f cfg -db`` in its own temporary directory.

    Build it with a config *template*: ``{port}`` and ``{stats_socket}`` are filled
    in (or pass a callable ``(port, stats_socket) -> str``). The config is checked
    with ``haproxy -c`` first, so a bad config fails fast with HAProxy's message.
    """

    def __init__(
        self,
        config: str | None = None,
        *,
        render: Callable[[int, Path], str] | None = None,
        port: int | None = None,
        binary: str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        self.binary = binary or haproxy_path() or "haproxy"
        self.port = port or free_port()
        self._tmp = Path(tempfile.mkdtemp(prefix="lbsim-haproxy-"))
        self.stats_socket = self._tmp / "stats.sock"
        self.cfg_path = self._tmp / "haproxy.cfg"
        if render is not None:
            text = render(self.port, self.stats_socket)
        elif config is not None:
            text = config.format(port=self.port, stats_socket=self.stats_socket)
        else:
            raise ValueError("give a config template or a render callable")
        self.cfg_path.write_text(text)
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = self._tmp / "haproxy.out"

    # -- lifecycle ----------------------------------------------------------------

    def start(self) -> HAProxy:
        """Check the config, start HAProxy, wait for the socket and the listener."""
        chk = subprocess.run(
            [self.binary, "-c", "-f", str(self.cfg_path)],
            capture_output=True,
            text=True,
            timeout=20,
        )
        if chk.returncode != 0:
            self._cleanup_dir()
            raise HAProxyError(f"haproxy -c failed:\n{chk.stdout}\n{chk.stderr}")
        with self._log.open("wb") as out:
            self.proc = subprocess.Popen(
                [self.binary, "-f", str(self.cfg_path), "-db"],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                log = self.log()
                self.stop()
                raise HAProxyError(f"haproxy exited with {self.proc.returncode}:\n{log}")
            if self.stats_socket.exists() and _port_open(LOOPBACK, self.port):
                return self
            time.sleep(0.02)
        self.stop()
        raise HAProxyError(f"haproxy did not come up within {self.start_timeout}s")

    def stop(self) -> None:
        """Terminate (then kill) the process, remove the temporary directory."""
        p = self.proc
        if p is not None and p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    p.kill()
                p.wait(timeout=5)
        self._cleanup_dir()

    def _cleanup_dir(self) -> None:
        shutil.rmtree(self._tmp, ignore_errors=True)

    def log(self) -> str:
        """HAProxy's stdout/stderr so far."""
        try:
            return self._log.read_text(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> HAProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- runtime API -----------------------------------------------------------------

    def command(self, cmd: str, timeout: float = 5.0) -> str:
        """Send one command on the admin stats socket and return the reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(str(self.stats_socket))
            s.sendall(cmd.strip().encode() + b"\n")
            chunks: list[bytes] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                data = s.recv(65536)
                if not data:
                    break
                chunks.append(data)
        return b"".join(chunks).decode(errors="replace")

    def show_stat(self) -> list[dict[str, str]]:
        """``show stat`` as a list of rows (dicts keyed by the CSV header)."""
        text = self.command("show stat")
        if not text.startswith("# "):
            raise HAProxyError(f"unexpected show stat reply: {text[:200]!r}")
        reader = csv.DictReader(io.StringIO(text[2:]))
        return [dict(r) for r in reader if r.get("pxname")]

    def server_stats(self, backend: str = "pool") -> dict[str, dict[str, str]]:
        """``show stat`` rows of the servers of ``backend``, keyed by server name."""
        return {
            r["svname"]: r
            for r in self.show_stat()
            if r["pxname"] == backend and r["svname"] not in ("FRONTEND", "BACKEND")
        }

    def server_status(self, server: str, backend: str = "pool") -> str:
        """The ``status`` column of one server (``UP``, ``DOWN``, ``MAINT``, ...)."""
        return self.server_stats(backend)[server]["status"]

    def set_server_state(self, server: str, state: str, backend: str = "pool") -> None:
        """``set server <backend>/<server> state ready|drain|maint``."""
        reply = self.command(f"set server {backend}/{server} state {state}")
        if reply.strip():
            raise HAProxyError(f"set server state refused: {reply.strip()}")

    def set_server_weight(self, server: str, weight: int, backend: str = "pool") -> None:
        """``set server <backend>/<server> weight <w>``."""
        reply = self.command(f"set server {backend}/{server} weight {weight}")
        if reply.strip():
            raise HAProxyError(f"set server weight refused: {reply.strip()}")

    def wait_status(
        self,
        server: str,
        prefix: str,
        backend: str = "pool",
        timeout: float = 10.0,
        interval: float = 0.05,
    ) -> str:
        """Poll ``show stat`` until the server's status starts with ``prefix``."""
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            status = self.server_status(server, backend)
            if status.startswith(prefix):
                return status
            time.sleep(interval)
        raise HAProxyError(f"{backend}/{server} still {status!r} after {timeout}s, wanted {prefix}")


def _port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


# --------------------------------------------------------------------------------------
# Client
# --------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One client response (``status`` 0 when the connection failed)."""

    status: int
    body: str
    elapsed: float


def http_get(
    port: int,
    path: str = "/",
    *,
    src: str | None = None,
    host: str = LOOPBACK,
    timeout: float = 10.0,
) -> Reply:
    """GET ``path`` with ``Connection: close`` from source address ``src``.

    ``src`` may be any address in 127.0.0.0/8 (e.g. ``127.1.2.3``); the client socket
    is bound to it with an ephemeral port. Returns status 0 on connection errors.
    """
    t0 = time.monotonic()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        if src is not None:
            if not src.startswith("127."):
                raise ValueError("client source must stay on loopback (127.0.0.0/8)")
            s.bind((src, 0))
        try:
            s.connect((host, port))
            s.sendall(f"GET {path} HTTP/1.1\r\nHost: lbsim\r\nConnection: close\r\n\r\n".encode())
            data = b""
            deadline = t0 + timeout
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError:
            return Reply(0, "", time.monotonic() - t0)
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return Reply(status, body.decode(errors="replace"), time.monotonic() - t0)


def send_request(
    port: int,
    path: str = "/",
    *,
    src: str | None = None,
    host: str = LOOPBACK,
    timeout: float = 10.0,
) -> socket.socket:
    """Send a GET and return the open socket without reading the reply.

    Use it to hold connections open (e.g. against HANG backends) and end them with
    :func:`abort_connection`, or read the answer later with :func:`read_reply`.
    """
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.settimeout(timeout)
        if src is not None:
            if not src.startswith("127."):
                raise ValueError("client source must stay on loopback (127.0.0.0/8)")
            s.bind((src, 0))
        s.connect((host, port))
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: lbsim\r\nConnection: close\r\n\r\n".encode())
    except BaseException:
        s.close()
        raise
    return s


def read_reply(s: socket.socket, timeout: float = 10.0) -> Reply:
    """Read a full reply from a socket made by :func:`send_request`, then close it."""
    t0 = time.monotonic()
    data = b""
    try:
        s.settimeout(timeout)
        while time.monotonic() - t0 < timeout:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    try:
        status = int(head.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    return Reply(status, body.decode(errors="replace"), time.monotonic() - t0)


def abort_connection(s: socket.socket) -> None:
    """Close with a TCP RST (SO_LINGER 0) so HAProxy aborts the stream at once and
    releases its server connection (a plain FIN may be treated as a half-close)."""
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()


def transient_status(state: str) -> bool:
    """Whether a ``show stat`` status caught a server between its health counter crossing
    a threshold and HAProxy 2.6's deferred state change: ``UP 0/1`` or ``UP -1/3`` (the
    counter says DOWN, the server still runs), ``DOWN 3/2`` (the counter is full, the
    server is not running yet). They last a few milliseconds; the twin changes state with
    the counter, so it has no such states, and comparisons skip them."""
    parts = state.split()
    if len(parts) != 2 or "/" not in parts[1] or parts[0] not in ("UP", "DOWN"):
        return False
    k, _, n = parts[1].partition("/")
    try:
        k_i, n_i = int(k), int(n)
    except ValueError:
        return False
    return k_i <= 0 if parts[0] == "UP" else k_i >= n_i


def wait_until(pred: Callable[[], bool], timeout: float = 5.0, interval: float = 0.005) -> bool:
    """Poll ``pred`` until it is true or ``timeout`` elapses; returns the last value."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


# --------------------------------------------------------------------------------------
# Fidelity figures
# --------------------------------------------------------------------------------------

FIDELITY_ENV = "LBSIM_FIDELITY_OUT"
"""Environment variable naming the JSON-lines file that :func:`record_fidelity` appends to."""


def record_fidelity(**row: object) -> None:
    """Append one measured comparison to ``$LBSIM_FIDELITY_OUT`` (JSON lines), if set.

    Conventional keys (``tools/fidelity_table.py`` renders them as the README table):
    ``suite``, ``case``, ``title``, ``metric``, ``twin``, ``haproxy`` (the two figures,
    as text), ``worst`` (largest difference), ``tolerance`` (as text), ``ok`` (bool).
    Without the variable this does nothing, so tests can always call it.
    """
    path = os.environ.get(FIDELITY_ENV)
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row, default=str, ensure_ascii=False) + "\n")
