"""The recorded walkthrough replayed with the real ``openstack`` CLI against ``lbsim serve``.

``commands.jsonl`` holds 121 CLI steps run against real Octavia 19 (and 34 raw HTTP
exchanges). Each step is run again, at the simulated time it was run at (the manual clock is
moved to the step's ``t_rel``; during ``--wait`` commands the clock runs), on a twin whose
controller timings are the recorded ones (``recording-cloud.yaml``). Then: the same exit code,
the same output once ids, timestamps and addresses are normalised (tables compared cell by
cell, JSON as data), the same error text (HTTP status and fault string). Where lbsim
differs on purpose, :data:`DIFFERENCES` names the field and says why.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import HERE, OscDriver, Served, run_cli
from tests.serve_recording import steps

pytestmark = pytest.mark.serve

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?")
#: addresses chosen by the cloud, not by the user: VIPs (198.51.100.x in the recording, lbsim
#: allocates from the top of the subnet), amphora management IPs (192.0.2.x / 192.168.x.x)
CLOUD_IP = re.compile(r"\b(198\.51\.100\.\d+|192\.0\.2\.\d+|192\.168\.\d+\.\d+|10\.0\.0\.2[0-5]\d)\b")

#: step number (1-based, as in transcript.txt) -> {field: why lbsim's value may differ}
_HEARTBEAT_PHASE = (
    "heartbeat phase: whether the first heartbeat after ACTIVE has been processed when the client "
    "looks depends on when the amphora's 10 s heartbeat cycle started; the recorded amphora began "
    "beating during its boot, the twin's beats are not aligned with it"
)
_WAIT_POLLING = (
    "--wait: while the client polls (in wall time) the twin's clock runs, so whether a heartbeat has "
    "been processed by the client's last look depends on how fast the client ran, not on lbsim's model"
)
DIFFERENCES: dict[int, dict[str, str]] = {
    12: {"operating_status": f"{_HEARTBEAT_PHASE}; {_WAIT_POLLING}"},
    52: {"operating_status": _WAIT_POLLING},
    54: {"operating_status": _WAIT_POLLING},
    13: {"operating_status": _HEARTBEAT_PHASE},
    14: {"operating_status": _HEARTBEAT_PHASE},
}


def normalise_text(text: str) -> str:
    """Ids, timestamps and cloud-chosen addresses replaced by placeholders."""
    text = UUID.sub("<uuid>", text)
    text = STAMP.sub("<time>", text)
    return CLOUD_IP.sub("<ip>", text)


def parse_output(stdout: str) -> Any:
    """A CLI output as data: JSON as is; a table as rows of cells; anything else as lines."""
    text = stdout.strip()
    if text.startswith(("{", "[")):
        try:
            return json.loads(text)
        except ValueError:
            pass
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if lines and all(ln.startswith(("+", "|")) for ln in lines):
        rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in lines if ln.startswith("|")]
        return {"table": rows}
    return {"lines": lines}


def _scrub(value: Any, fields: set[str]) -> Any:
    if isinstance(value, dict):
        if "table" in value and set(value) == {"table"}:
            rows = value["table"]
            if rows and rows[0][:2] == ["Field", "Value"]:
                return {"table": [r for r in rows if r[0] not in fields]}
            if rows:  # a list table: blank the columns named in fields
                idx = [i for i, h in enumerate(rows[0]) if h in fields]
                return {
                    "table": [[("*" if i in idx and r is not rows[0] else c) for i, c in enumerate(r)] for r in rows]
                }
            return value
        return {
            k: ("*" if k in fields else sorted(v) if k == "tags" and isinstance(v, list) else _scrub(v, fields))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_scrub(v, fields) for v in value]
    return value


def comparable(stdout: str, fields: set[str]) -> Any:
    """What must be equal between the recording and the replay. Tags compare as a set: the
    client builds the list from a Python set, so its order changes with the hash seed."""
    return _scrub(parse_output(normalise_text(stdout)), fields)


def _shift(offset: float, needed: float) -> float:
    """The twin ran ``needed`` seconds past the recorded timeline: move the rest of the timeline
    by whole heartbeat intervals (10 s), so that every later step meets the heartbeats in the
    same phase as before (what it shows does not depend on how long a --wait took)."""
    if needed <= offset:
        return offset
    return offset + 10.0 * math.ceil((needed - offset) / 10.0)


def _ids_by_name(s: Served) -> dict[str, str]:
    """Our ids of the named load balancers, listeners and pools (for commands that name ids)."""
    out: dict[str, str] = {}
    with s.client() as c:
        for plural in ("loadbalancers", "listeners", "pools"):
            for obj in c.get(f"/v2.0/lbaas/{plural}").json()[plural]:
                if obj.get("name"):
                    out[obj["name"]] = obj["id"]
    return out


def _recorded_ids() -> dict[str, str]:
    """Recorded id -> name, from the recorded response bodies."""
    out: dict[str, str] = {}
    for st in steps():
        for h in st["http"]:
            body = h.get("resp_body")
            if isinstance(body, dict):
                for v in body.values():
                    if isinstance(v, dict) and v.get("id") and v.get("name"):
                        out.setdefault(v["id"], v["name"])
    return out


def test_the_openstack_executable_itself_lists_an_empty_cloud(serve: Any, openstack_cli: str) -> None:
    s: Served = serve("--speed", "0")
    got = run_cli(openstack_cli, s.endpoint, "openstack loadbalancer list")
    assert (got.returncode, got.stdout.strip(), got.stderr.strip()) == (0, "", "")
    got = run_cli(openstack_cli, s.endpoint, "openstack loadbalancer provider list -f value")
    assert got.stdout.split("\n")[0] == "amphora The Octavia Amphora driver."


def test_recorded_walkthrough_with_the_real_openstack_cli(serve: Any, osc: OscDriver) -> None:
    s: Served = serve(str(HERE / "recording-cloud.yaml"), "--speed", "0")
    recorded_names = _recorded_ids()
    ours: dict[str, str] = {}
    problems: list[str] = []
    cli_steps = [st for st in steps() if st.get("kind") == "cli"]
    assert len(cli_steps) == 121
    offset = 0.0  # how far the twin ran ahead of the recording while commands waited
    for st in cli_steps:
        n = st["step"]
        s.advance_to(float(st["t_rel"]) + offset)
        ours.update(_ids_by_name(s))
        cmd = st["cmd"]
        for rid in UUID.findall(cmd):
            name = recorded_names.get(rid)
            if name and name in ours:
                cmd = cmd.replace(rid, ours[name])
        waits = " --wait" in f" {cmd} "
        if waits:
            s.speed(20.0)
        try:
            got = osc.run(s.endpoint, cmd)
        finally:
            if waits:
                s.speed(0.0)
                end = float(st["t_rel"]) + float(st["duration_s"])
                offset = _shift(offset, float(s.clock()["now"]) - end)
        fields = set(DIFFERENCES.get(n, {}))
        if got.returncode != st["rc"]:
            problems.append(
                f"[{n}] {st['cmd']}: rc {got.returncode} != recorded {st['rc']}\n  stderr: {got.stderr.strip()[-400:]}"
            )
            continue
        if st["rc"] == 0:
            want, have = comparable(st["stdout"], fields), comparable(got.stdout, fields)
            if want != have:
                problems.append(f"[{n}] {st['cmd']}: output differs\n  recorded: {want}\n  lbsim:    {have}")
        else:
            want_err = normalise_text(st["stderr"].strip().splitlines()[-1] if st["stderr"].strip() else "")
            have_err = normalise_text(got.stderr.strip().splitlines()[-1] if got.stderr.strip() else "")
            if want_err != have_err:
                problems.append(f"[{n}] {st['cmd']}: error differs\n  recorded: {want_err}\n  lbsim:    {have_err}")
    assert not problems, f"{len(problems)} of {len(cli_steps)} steps differ:\n" + "\n".join(problems)


#: raw step -> {field: why lbsim's value may differ}; fields are JSON keys anywhere in the body
RAW_DIFFERENCES: dict[int, dict[str, str]] = {
    140: {"operating_status": _HEARTBEAT_PHASE},
    141: {"operating_status": _HEARTBEAT_PHASE},
    151: {"operating_status": _HEARTBEAT_PHASE},
}
_BATCH = (
    "batch member update: the Twin takes one member operation per load-balancer lock, so lbsim "
    "applies the batch's creates and deletes one after another instead of in one worker flow; the "
    "members' statuses during the batch differ, the end state is the same"
)
#: raw steps whose bodies are compared as their end state only (after the batch has finished)
BATCH_STEPS = {147: _BATCH, 148: _BATCH}


def canonical_fault(message: str) -> Any:
    """A fault string with WSME's unordered parts made comparable: the names of several unknown
    attributes (WSME lists a set) and the argument a conversion error prints (its own key order)."""
    import ast

    if message.startswith("Unknown attributes for argument"):
        head, _, names = message.partition(": ")
        return (head, sorted(names.split(", ")))
    m = re.match(r"^(Invalid input for field/attribute \w+\. Value: ')(.*)('\. .*)$", message, re.S)
    if m and m.group(2).startswith("{"):
        try:
            return (m.group(1), ast.literal_eval(m.group(2)), m.group(3))
        except (ValueError, SyntaxError):
            pass
    return message


def _normalise_json(value: Any, endpoint: str, fields: set[str]) -> Any:
    if isinstance(value, dict) and isinstance(value.get("faultstring"), str):
        value = {**value, "faultstring": canonical_fault(value["faultstring"])}
    text = json.dumps(value).replace(endpoint, "<endpoint>").replace("http://127.0.0.1:9881", "<endpoint>")
    return _scrub(json.loads(normalise_text(text)), fields)


def test_recorded_raw_exchanges(serve: Any) -> None:
    s: Served = serve(str(HERE / "recording-cloud.yaml"), "--speed", "0")
    raw = [st for st in steps() if st.get("kind") != "cli"]
    assert len(raw) == 34
    t0 = float(raw[0]["t_rel"])
    recorded_names = _recorded_ids()
    problems: list[str] = []
    offset = 0.0
    with httpx.Client(base_url=s.endpoint, timeout=60) as c:
        for st in raw:
            n = st["step"]
            h = st["http"][0]
            if n in BATCH_STEPS:  # let the batch finish, then compare the end state
                for pool in [p for p in c.get("/v2.0/lbaas/pools").json()["pools"] if p["name"] == "rp1"]:
                    for _ in range(100):
                        if c.get(f"/v2.0/lbaas/pools/{pool['id']}").json()["pool"]["provisioning_status"] == "ACTIVE":
                            break
                        s.advance(1.0)
                h = next(r for r in raw if r["step"] == 148)["http"][0]
                offset = _shift(offset, float(s.clock()["now"]) - (float(st["t_rel"]) - t0))
            else:
                s.advance_to(float(st["t_rel"]) - t0 + offset)
            ours = _ids_by_name(s)
            path = h["path"] + (f"?{h['query']}" if h["query"] else "")
            headers = {"Accept": "application/json"}
            content = None
            if h["req_body"] is not None:
                headers["Content-Type"] = "application/json"
                content = h["req_body"] if isinstance(h["req_body"], str) else json.dumps(h["req_body"])
            for rid in set(UUID.findall(path + (content or ""))):
                name = recorded_names.get(rid)
                if name and name in ours:
                    path = path.replace(rid, ours[name])
                    content = content.replace(rid, ours[name]) if content else content
            r = c.request(h["method"], path, content=content, headers=headers)
            assert r.headers["x-openstack-request-id"].startswith("req-")
            if r.status_code != h["status"]:
                problems.append(
                    f"[{n}] {h['method']} {path}: HTTP {r.status_code} != recorded {h['status']}: {r.text[:300]}"
                )
                continue
            fields = set(RAW_DIFFERENCES.get(n, {}))
            want = h["resp_body"]
            have: Any = r.json() if r.content else ""
            if want in ("", None):
                if r.content:
                    problems.append(f"[{n}] {h['method']} {path}: a body where the recording has none")
                continue
            if _normalise_json(want, s.endpoint, fields) != _normalise_json(have, s.endpoint, fields):
                problems.append(f"[{n}] {h['method']} {path}: body differs\n  recorded: {want}\n  lbsim:    {have}")
    assert not problems, f"{len(problems)} of {len(raw)} raw exchanges differ:\n" + "\n".join(problems)
