"""The live page in a real headless Chromium (Debian's, driven by Playwright for Python)
against a real ``lbsim serve`` subprocess on a free loopback port.

Long CI step only (marker ``browser``): ``.ci/run`` installs ``chromium`` with apt and the
``playwright`` library with pip; the browser is Debian's ``/usr/bin/chromium`` launched
through ``executable_path`` (never ``playwright install``). The screenshot of the fault
session is kept as ``results/ci-artifacts/live-page.png``.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.browser

CHROMIUM = os.environ.get("LBSIM_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "results" / "ci-artifacts"
Served = Any  # conftest's running ``lbsim serve`` (the ``serve`` fixture makes them)

POOL = """
      - name: web{S}
        protocol: HTTP
        lb_algorithm: ROUND_ROBIN
        healthmonitor: {{type: HTTP, delay: 5, timeout: 3, max_retries: 3, max_retries_down: 3, url_path: /healthz}}
        members:
          - {{name: web{S}-1, address: 10.0.{N}.11, protocol_port: 8080, concurrency: 8,
             service_time: {{dist: exponential, mean: 0.02}}}}
          - {{name: web{S}-2, address: 10.0.{N}.12, protocol_port: 8080, concurrency: 8,
             service_time: {{dist: exponential, mean: 0.02}}}}
          - {{name: web{S}-3, address: 10.0.{N}.13, protocol_port: 8080, concurrency: 8,
             service_time: {{dist: exponential, mean: 0.02}}}}
"""


def lb_yaml(suffix: str, n: int) -> str:
    return (
        f"  - name: lb{suffix}\n    topology: SINGLE\n    listeners:\n"
        f"      - {{name: http{suffix}, protocol: HTTP, protocol_port: 80, default_pool: web{suffix}}}\n"
        f"    pools:{POOL.format(S=suffix, N=n)}"
    )


def scenario(tmp_path: Path, lbs: list[str], rate: float) -> Path:
    """A scenario with the given load balancers (suffixes), each a pool of 3 members behind
    an HTTP monitor, and Poisson traffic on each listener."""
    text = "version: 1\nname: live-page\nseed: 11\nduration: 36000\nloadbalancers:\n"
    text += "".join(lb_yaml(s, i + 1) for i, s in enumerate(lbs))
    text += "traffic:\n" + "".join(
        f"  - {{listener: http{s}, arrival: {{process: poisson, rate: {rate}}}}}\n" for s in lbs
    )
    path = tmp_path / "live.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Debian's Chromium under Playwright; a clear failure (not a skip) if either is missing."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the browser tests need Playwright for Python: pip install playwright (.ci/run does)")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def open_page(chromium: Any) -> Iterator[Callable[[Served, str], Any]]:
    """Open the live page of a server; fails the test on any script error of the page."""
    pages: list[tuple[Any, list[str]]] = []

    def make(served: Served, query: str = "") -> Any:
        page = chromium.new_page(viewport={"width": 1400, "height": 1000})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: errors.append(f"outside request {r.url}") if "127.0.0.1" not in r.url else None)
        page.goto(f"{served.endpoint}/lbsim/ui{query}")
        pages.append((page, errors))
        return page

    yield make
    for page, errors in pages:
        page.close()
        assert errors == [], errors


def badge(page: Any, row: str, column: str) -> Any:
    """The status badge of a row (``data-kind``/name) in one column (prov, api, haproxy)."""
    kind, name = row.split(":", 1)
    return page.locator(f'tr[data-kind="{kind}"][data-name="{name}"] [data-testid="{column}"]')


def wait_until(check: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_a_member_fault_injected_from_the_page(serve: Callable[..., Served], open_page: Any, tmp_path: Path) -> None:
    served = serve(str(scenario(tmp_path, ["1"], rate=40)), "--speed", "10")
    page = open_page(served, "?interval=0.1")
    page.wait_for_selector('tr[data-kind="member"][data-name="web1-3"]', timeout=30_000)
    wait_until(lambda: badge(page, "member:web1-1", "haproxy").inner_text() == "UP", 30, "web1-1 UP")
    assert badge(page, "member:web1-1", "api").inner_text() == "ONLINE"
    assert badge(page, "member:web1-1", "haproxy").get_attribute("data-colour") == "green"
    assert badge(page, "pool:web1", "api").inner_text() == "ONLINE"
    # the page's control goes to the endpoint lbsim ctl uses
    row = page.locator('tr[data-kind="member"][data-name="web1-1"]')
    row.locator('[data-testid="behaviour"]').select_option("refuse")
    with page.expect_response(lambda r: "/lbsim/v1/members/" in r.url) as resp_info:
        row.locator('[data-testid="apply-behaviour"]').click()
    resp = resp_info.value
    assert resp.request.method == "PUT" and resp.status == 200, resp.text()
    assert resp.json()["behaviour"] == "refuse"
    # HAProxy's column turns red first, the API's column says ERROR later
    seen: dict[str, float] = {}

    def observe() -> bool:
        # one evaluate reads one consistent state of the page (its script runs between calls)
        now, hp_colour, api = page.evaluate(
            """() => { const r = document.querySelector('tr[data-kind="member"][data-name="web1-1"]');
            return [Number(document.body.dataset.simNow), r.querySelector('[data-testid="haproxy"]').dataset.colour,
                    r.querySelector('[data-testid="api"]').textContent]; }"""
        )
        if hp_colour == "red":
            seen.setdefault("haproxy_red", now)
        if api == "ERROR":
            seen.setdefault("api_error", now)
        return "api_error" in seen

    wait_until(observe, 60, "web1-1 ERROR in the API column")
    assert "haproxy_red" in seen and seen["haproxy_red"] <= seen["api_error"], seen
    assert badge(page, "member:web1-1", "haproxy").inner_text() == "DOWN"
    assert badge(page, "member:web1-1", "api").get_attribute("data-colour") == "red"
    wait_until(lambda: badge(page, "pool:web1", "api").inner_text() == "DEGRADED", 30, "pool DEGRADED")
    assert badge(page, "pool:web1", "api").get_attribute("data-colour") == "amber"
    assert badge(page, "member:web1-2", "haproxy").inner_text() == "UP"
    # the page says how long after HAProxy the API followed, and the timeline has both changes in order
    gap = page.locator('tr[data-name="web1-1"] [data-testid="gap"]').inner_text()
    assert gap.startswith("API followed after ") or gap == "agree", gap
    timeline = page.locator('[data-testid="timeline"]').inner_text()
    assert "member web1-1 HAProxy UP 1/3 → DOWN" in timeline and "member web1-1 operating ONLINE → ERROR" in timeline
    assert "member=web1-1 behaviour=refuse" in timeline
    changes = page.evaluate("window.lbsimLive.state.transitions")
    down_at = next(c["t"] for c in changes if c["name"] == "web1-1" and c["new"] == "DOWN")
    error_at = next(c["t"] for c in changes if c["name"] == "web1-1" and c["new"] == "ERROR")
    assert down_at <= error_at
    # what the API itself says agrees with the page
    status = httpx.get(f"{served.endpoint}/lbsim/v1/status", timeout=30).json()
    [lb] = status["loadbalancers"]
    members = {m["name"]: m for m in lb["loadbalancer"]["listeners"][0]["pools"][0]["members"]}
    assert members["web1-1"]["operating_status"] == "ERROR"
    time.sleep(1.0)  # a few more seconds of traffic on the charts
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "live-page.png"), full_page=True)
    assert (ARTIFACTS / "live-page.png").stat().st_size > 20_000


def test_an_empty_cloud_then_a_load_balancer_made_through_the_api(
    serve: Callable[..., Served], open_page: Any, tmp_path: Path
) -> None:
    served = serve("--speed", "20")
    page = open_page(served, "?interval=0.2")
    page.wait_for_selector("#conn[data-state='live']", timeout=30_000)
    assert page.locator("#empty").is_visible()
    assert page.locator('[data-testid="lb"]').count() == 0
    # statuses are coloured the way Octavia's read, and the colours are what the CSS paints
    colours = page.evaluate(
        """() => Object.fromEntries(["ONLINE", "ACTIVE", "DEGRADED", "ERROR", "OFFLINE", "NO_MONITOR", "PENDING_CREATE",
        "PENDING_UPDATE", "DRAINING", "UP", "DOWN", "MAINT", "no check", "UP 2/3", "DOWN 1/2"]
        .map((s) => [s, window.lbsimLive.colour(s)]))"""
    )
    assert colours == {
        "ONLINE": "green", "ACTIVE": "green", "DEGRADED": "amber", "ERROR": "red", "OFFLINE": "grey",
        "NO_MONITOR": "grey", "PENDING_CREATE": "blue", "PENDING_UPDATE": "blue", "DRAINING": "purple",
        "UP": "green", "DOWN": "red", "MAINT": "grey", "no check": "grey", "UP 2/3": "light-green",
        "DOWN 1/2": "light-red",
    }  # fmt: skip
    painted = page.evaluate(
        """() => Object.fromEntries([...document.querySelectorAll('.legend .st')]
        .map((b) => [b.textContent, getComputedStyle(b).backgroundColor]))"""
    )
    assert painted == {
        "ONLINE": "rgb(46, 158, 68)", "DEGRADED": "rgb(224, 138, 0)", "ERROR": "rgb(214, 39, 40)",
        "OFFLINE": "rgb(138, 143, 152)", "PENDING_*": "rgb(47, 111, 214)", "DRAINING": "rgb(138, 79, 192)",
    }  # fmt: skip
    t0 = float(page.evaluate("document.body.dataset.simNow"))
    wait_until(lambda: float(page.evaluate("document.body.dataset.simNow")) > t0 + 5, 20, "the clock to move")
    subnet = httpx.get(f"{served.endpoint}/v2.0/subnets", params={"name": "private-subnet"}, timeout=30).json()
    body = {"loadbalancer": {"name": "made-live", "vip_subnet_id": subnet["subnets"][0]["id"]}}
    r = httpx.post(f"{served.endpoint}/v2/lbaas/loadbalancers", json=body, timeout=30)
    assert r.status_code == 201, r.text
    page.wait_for_selector('[data-testid="lb"] .lb-name:text("made-live")', timeout=30_000)
    assert not page.locator("#empty").is_visible()
    prov = page.locator('[data-testid="lb"] [data-testid="lb-prov"]')
    assert prov.inner_text() in ("PENDING_CREATE", "ACTIVE")
    wait_until(lambda: prov.inner_text() == "ACTIVE", 60, "the new load balancer ACTIVE")
    assert "api=create loadbalancer=made-live" in page.locator('[data-testid="timeline"]').inner_text()
    # the clock's controls: speed, pause, resume
    page.fill("#speed", "40")
    with page.expect_response(lambda r: r.url.endswith("/lbsim/v1/clock/speed")) as resp_info:
        page.click('[data-testid="set-speed"]')
    assert resp_info.value.request.method == "PUT" and resp_info.value.json()["speed"] == 40
    wait_until(lambda: page.inner_text("#clock-speed") == "×40", 10, "speed ×40 on the page")
    with page.expect_response(lambda r: r.url.endswith("/lbsim/v1/clock/pause")):
        page.click('[data-testid="pause"]')
    wait_until(lambda: page.locator("#clock-paused").is_visible(), 10, "the paused badge")
    frozen = page.inner_text("#clock-now")
    time.sleep(1.0)
    assert page.inner_text("#clock-now") == frozen and httpx.get(f"{served.endpoint}/lbsim/v1/clock").json()["paused"]
    with page.expect_response(lambda r: r.url.endswith("/lbsim/v1/clock/resume")):
        page.click('[data-testid="pause"]')  # now labelled "resume"
    wait_until(lambda: page.inner_text("#clock-now") != frozen, 10, "the clock to run again")
    # save the session from the page: a result folder with a scenario that replays it
    folder = tmp_path / "session"
    page.fill("#save-to", str(folder))
    page.click('[data-testid="save"]')
    wait_until(lambda: "session saved to" in page.inner_text("#notice"), 30, "the save notice")
    assert (folder / "scenario.yaml").is_file() and "made-live" not in page.inner_text("#notice")


def test_two_load_balancers_and_bounded_buffers(serve: Callable[..., Served], open_page: Any, tmp_path: Path) -> None:
    served = serve(str(scenario(tmp_path, ["a", "b"], rate=5)), "--speed", "200")
    page = open_page(served, "?interval=0.2")
    page.wait_for_selector('tr[data-kind="member"][data-name="webb-3"]', timeout=30_000)
    assert page.locator('[data-testid="lb"]').count() == 2
    assert page.locator('[data-testid="chart-rate"]').count() == 2
    assert page.locator('[data-testid="chart-latency"]').count() == 2
    # fail lb b's amphora from the page: the health manager notices and a new amphora replaces it
    second = page.locator("[data-lb] >> nth=1")
    amp = second.locator('[data-testid="amphora"]')
    failed = amp.get_attribute("data-amp")
    with page.expect_response(lambda r: "/lbsim/v1/amphorae/" in r.url) as resp_info:
        amp.locator('[data-testid="fail-amphora"]').click()
    assert resp_info.value.status == 200 and resp_info.value.request.method == "POST"
    wait_until(lambda: amp.get_attribute("data-amp") != failed, 60, "lb b's amphora to be replaced")
    assert second.locator('[data-testid="lb-prov"]').inner_text() == "ACTIVE"
    timeline = page.locator('[data-testid="timeline"]').inner_text()
    assert "behaviour=fail" in timeline and "HAProxy STANDALONE → FAILED" in timeline, timeline
    assert f"STANDALONE {failed[:8]}" in timeline  # the failed amphora keeps its name once gone
    # stop lb a's traffic from the page
    row = page.locator('tr[data-kind="listener"][data-name="httpa"]')
    row.locator('[data-testid="rate"]').fill("0")
    with page.expect_response(lambda r: "/lbsim/v1/listeners/" in r.url) as resp_info:
        row.locator('[data-testid="set-rate"]').click()
    assert resp_info.value.request.method == "PUT" and resp_info.value.json()["rate"] == 0
    # run past the traffic window: the page's buffers stay within the server's limits
    window = float(page.evaluate("window.lbsimLive.state.window"))
    start = float(page.evaluate("document.body.dataset.simNow"))
    wait_until(lambda: float(page.evaluate("document.body.dataset.simNow")) > start + 1.5 * window, 60, "1.5 windows")
    sizes = page.evaluate(
        """() => { const s = window.lbsimLive.state;
        return { traffic: [...s.traffic.values()].map((v) => Math.max(...Object.values(v).map((c) => c.length))),
                 transitions: s.transitions.length, events: s.events.length, limits: s.limits,
                 rows: document.querySelectorAll('#timeline li').length,
                 charts: s.charts.size }; }"""
    )
    assert len(sizes["traffic"]) == 2 and all(0 < n <= window + 1 for n in sizes["traffic"]), sizes
    assert sizes["transitions"] <= sizes["limits"]["transitions"] and sizes["events"] <= sizes["limits"]["events"]
    assert sizes["rows"] <= sizes["limits"]["transitions"] + sizes["limits"]["events"]
    assert sizes["charts"] == 2
    rates = page.evaluate("[...window.lbsimLive.state.traffic.values()].map((s) => s.rate.slice(-20))")
    assert sorted(sum(r) for r in rates)[0] == 0 and sorted(sum(r) for r in rates)[1] > 0  # a stopped, b flowing
    # both load balancers are still shown with every member
    assert page.locator('tr[data-kind="member"]').count() == 6


@pytest.mark.serve
def test_ctrl_c_stops_the_server_while_a_page_is_streaming(serve: Callable[..., Served]) -> None:
    """uvicorn waits for open responses before it exits: the event stream must end by itself."""
    import threading

    served = serve("--speed", "5")
    got: list[str] = []

    def listen() -> None:
        with httpx.stream("GET", f"{served.endpoint}/lbsim/ui/events?interval=0.1", timeout=60) as r:
            for line in r.iter_lines():
                got.append(line)

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    wait_until(lambda: sum(line.startswith("event: ") for line in got) >= 3, 30, "three messages")
    started = time.monotonic()
    code, err = served.stop()
    assert code == 0, err
    assert time.monotonic() - started < 15
    reader.join(timeout=15)
    assert not reader.is_alive()  # the stream ended cleanly with the server
    assert "Traceback" not in err
