"""Run results: summaries as pandas objects, and the contract's result folder.

:class:`RunResult` is what the Python API returns: every table of the result folder as a
DataFrame (or dict), computed once from the raw run. :meth:`RunResult.save` writes the
folder atomically: everything goes to a hidden temporary folder beside the target, which
is renamed into place only when complete, so a crash never leaves a half-written result.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import pandas as pd
import yaml

from lbsim.octavia.timeline import Timeline
from lbsim.results import expectations as ex
from lbsim.results.atomic import clean_stale, swap_into_place, temp_prefix, umask
from lbsim.results.lazy import (
    CSV_CHUNK,
    STATS_COLUMNS,
    TIMESERIES_COLUMNS,
    StatsTable,
    TimeseriesRows,
    UnbuiltTable,
    _LazyTable,
    _write_table,
    stats_frame,
    stats_table,
    timeseries_frame,
    timeseries_rows,
)
from lbsim.results.manifest import (
    ResultFolderError,
    read_duration,
    read_json_object,
    read_table,
    verify,
    write_manifest,
)
from lbsim.results.warnings import run_warnings
from lbsim.scenario import model as m
from lbsim.scenario.gcpause import gc_frozen
from lbsim.scenario.ids import object_id
from lbsim.sim.engine import RawRun
from lbsim.sim.metrics import LAT_MIN, NBINS, RATIO

__all__ = [  # the tables built lazily live in lbsim.results.lazy; these names stay here too
    "CSV_CHUNK",
    "STATS_COLUMNS",
    "TIMESERIES_COLUMNS",
    "RunResult",
    "StatsTable",
    "TimeseriesRows",
    "UnbuiltTable",
    "stats_frame",
    "stats_table",
    "summarise",
    "timeseries_frame",
    "timeseries_rows",
]

MEMBER_COLUMNS = ["name", "requests", "ok", "errors", "share", "mean", "p50", "p95", "p99", "utilisation"]
INCIDENT_COLUMNS = [
    "kind",
    "target",
    "fault_time",
    "detected_time",
    "api_visible_time",
    "recovered_time",
    "requests_failed",
    "requests_slowed",
    "fault_end_time",
]


def _r(x: float) -> float | None:
    """Round for output; NaN becomes null."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return round(float(x), 9)


@dataclass
class RunResult:
    """The results of one run, as Python objects."""

    summary: dict[str, Any]
    members: pd.DataFrame
    transitions: pd.DataFrame
    expectations: pd.DataFrame
    status: dict[str, Any]
    incidents: pd.DataFrame
    #: one row per simulated second; a run's result builds it on first access (save streams it)
    if TYPE_CHECKING:  # what readers get; at run time a descriptor that builds it lazily
        timeseries: pd.DataFrame
    else:
        timeseries: _LazyTable = _LazyTable()
    api_calls: pd.DataFrame
    scenario_yaml: str = ""
    requests: pd.DataFrame | None = None
    #: one row per heartbeat and listener; built on first access like ``timeseries``
    if TYPE_CHECKING:
        stats: pd.DataFrame | None = None
    else:
        stats: _LazyTable = _LazyTable(None)
    #: latency histogram of successful requests: non-empty bins (lower, upper, count)
    latency: pd.DataFrame | None = None

    @property
    def latency_histogram(self) -> np.ndarray:
        """Counts per latency bin of :mod:`lbsim.sim.metrics` (for CDF plots)."""
        hist = np.zeros(NBINS, dtype=np.int64)
        if self.latency is not None and len(self.latency):
            hist[self.latency["bin"].to_numpy(dtype=np.int64)] = self.latency["count"].to_numpy(dtype=np.int64)
        return hist

    #: autoscaling (only for scenarios with an ``autoscaling`` pool): decisions and pool sizes
    scaling: pd.DataFrame | None = None
    pool_size: pd.DataFrame | None = None
    #: per L7 policy: requests matched, redirected, rejected, sent to a pool (l7.csv)
    l7: pd.DataFrame | None = None
    #: the scenario run, written out as ``scenario.yaml`` at save time when no
    #: ``scenario_yaml`` text was given (dumping 10,000 members takes seconds)
    scenario_model: Any = None

    @property
    def passed(self) -> bool:
        """True when every expectation held."""
        return bool((self.expectations["result"] == "pass").all()) if len(self.expectations) else True

    @property
    def timeline(self) -> Timeline:
        """The status timeline, for point-in-time queries."""
        return Timeline.from_frame(self.transitions)

    def save(self, out: Path) -> Path:
        """Write the result folder atomically; returns its path.

        Everything is written to a hidden temporary folder beside ``out`` and recorded
        in ``manifest.json``; only then does it take ``out``'s place: an existing folder
        is swapped out in one step (``renameat2(RENAME_EXCHANGE)`` on Linux, else two
        renames) and removed afterwards, so a kill at any moment leaves either the old
        complete folder or the new one at ``out``. Temporary folders of earlier saves
        whose process is gone are cleaned up. Folders get the usual permissions
        (0777 less the umask), not mkdtemp's 0700.
        """
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        clean_stale(out)
        tmp = Path(tempfile.mkdtemp(prefix=f"{temp_prefix(out)}{os.getpid()}-", dir=out.parent))
        try:
            os.chmod(tmp, 0o777 & ~umask())
            self._write_files(tmp)
            write_manifest(tmp)
            swap_into_place(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return out

    def _write_files(self, tmp: Path) -> None:
        _write_json(tmp / "summary.json", self.summary)
        self.members.to_csv(tmp / "members.csv", index=False, lineterminator="\n")
        self.transitions.to_csv(tmp / "transitions.csv", index=False, lineterminator="\n")
        self.expectations.to_csv(tmp / "expectations.csv", index=_named_index(self.expectations), lineterminator="\n")
        _write_json(tmp / "status.json", self.status)
        self.incidents.to_csv(tmp / "incidents.csv", index=False, lineterminator="\n")
        ts = _lazy("timeseries").raw(self)
        _write_table(self.timeseries if ts is None else ts, tmp / "timeseries.csv")
        self.api_calls.to_csv(tmp / "api.csv", index=False, lineterminator="\n")
        stats = _lazy("stats").raw(self)
        if stats is not None:
            _write_table(stats, tmp / "stats.csv")
        if self.latency is not None:
            self.latency.to_csv(tmp / "latency.csv", index=False, lineterminator="\n")
        if self.scaling is not None:
            self.scaling.to_csv(tmp / "scaling.csv", index=False, lineterminator="\n")
        if self.pool_size is not None:
            self.pool_size.to_csv(tmp / "pool_size.csv", index=False, lineterminator="\n")
        if self.l7 is not None:
            self.l7.to_csv(tmp / "l7.csv", index=False, lineterminator="\n")
        text = self.scenario_yaml
        if not text and self.scenario_model is not None:
            text = yaml.safe_dump(self.scenario_model.model_dump(mode="json", exclude_none=True), sort_keys=False)
        (tmp / "scenario.yaml").write_text(text, encoding="utf-8")
        if self.requests is not None:
            self.requests.to_parquet(tmp / "requests.parquet", index=False)

    @classmethod
    def load(cls, folder: Path) -> RunResult:
        """Read a result folder written by :meth:`save`; a folder whose files do not match
        its manifest raises :class:`ResultFolderError` naming the file."""
        folder = Path(folder)
        verify(folder)
        req = folder / "requests.parquet"
        return cls(
            summary=json.loads((folder / "summary.json").read_text()),
            members=pd.read_csv(folder / "members.csv"),
            transitions=pd.read_csv(folder / "transitions.csv", keep_default_na=False),
            expectations=_expectations_csv(folder / "expectations.csv"),
            status=json.loads((folder / "status.json").read_text()),
            incidents=pd.read_csv(folder / "incidents.csv"),
            timeseries=pd.read_csv(folder / "timeseries.csv"),
            api_calls=pd.read_csv(folder / "api.csv", keep_default_na=False),
            scenario_yaml=(folder / "scenario.yaml").read_text() if (folder / "scenario.yaml").exists() else "",
            requests=pd.read_parquet(req) if req.exists() else None,
            stats=pd.read_csv(folder / "stats.csv") if (folder / "stats.csv").exists() else None,
            scaling=_optional_csv(folder / "scaling.csv", keep_default_na=False, na_values=[""]),
            pool_size=_optional_csv(folder / "pool_size.csv"),
            l7=_optional_csv(folder / "l7.csv", keep_default_na=False),
        )


def _lazy(name: str) -> _LazyTable:
    """The descriptor behind a lazily built field of :class:`RunResult`."""
    return cast(_LazyTable, RunResult.__dict__[name])


def _named_index(df: pd.DataFrame) -> bool:
    """Whether a table's index is a column of its CSV (expectations: ``index``)."""
    return df.index.name is not None


def _expectations_csv(path: Path) -> pd.DataFrame:
    """``expectations.csv`` as :func:`lbsim.results.expectations.frame` builds it."""
    df = pd.read_csv(path, keep_default_na=False)
    return df.set_index("index") if "index" in df.columns else df


def _optional_csv(path: Path, **kw: Any) -> pd.DataFrame | None:
    """An optional table of the result folder (None when the run did not write it)."""
    return pd.read_csv(path, **kw) if path.exists() else None


def _write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n", encoding="utf-8")


def status_tree(
    run_scenario: str, lb_name: str, timeline: Timeline, at: float, cp_objects: dict[str, Any]
) -> dict[str, Any]:
    """``openstack loadbalancer status show`` at time ``at`` (octavia-semantics.md §6.1).

    ``cp_objects`` describes the tree: listeners (with default pool), pools (with
    monitor and members), as found in the control plane or the scenario.
    """

    def st(kind: str, name: str) -> tuple[str, str]:
        return (
            timeline.value_at(kind, name, "operating_status", at),
            timeline.value_at(kind, name, "provisioning_status", at),
        )

    def alive(kind: str, name: str) -> bool:
        prov = timeline.value_at(kind, name, "provisioning_status", at)
        return prov not in ("", "DELETED")

    listeners = []
    for li in cp_objects["listeners"]:
        if not alive("listener", li["name"]):
            continue
        op, prov = st("listener", li["name"])
        pools = []
        pool_name = li.get("default_pool")
        pool = cp_objects["pools"].get(pool_name) if pool_name else None
        if pool is not None and alive("pool", pool_name):
            pop, pprov = st("pool", pool_name)
            entry: dict[str, Any] = {
                "id": object_id(run_scenario, "pool", pool_name),
                "name": pool_name,
                "provisioning_status": pprov,
                "operating_status": pop,
            }
            hm = pool.get("healthmonitor")
            if hm is not None and alive("healthmonitor", hm["name"]):
                hop, hprov = st("healthmonitor", hm["name"])
                entry["health_monitor"] = {
                    "id": object_id(run_scenario, "healthmonitor", hm["name"]),
                    "name": hm["name"],
                    "type": hm["type"],
                    "provisioning_status": hprov,
                    "operating_status": hop,
                }
            members = []
            for mem in pool["members"]:
                if not alive("member", mem["name"]):
                    continue
                mop, mprov = st("member", mem["name"])
                members.append(
                    {
                        "id": object_id(run_scenario, "member", mem["name"]),
                        "name": mem["name"],
                        "operating_status": mop,
                        "provisioning_status": mprov,
                        "address": mem["address"],
                        "protocol_port": mem["protocol_port"],
                    }
                )
            entry["members"] = members
            pools.append(entry)
        listeners.append(
            {
                "id": object_id(run_scenario, "listener", li["name"]),
                "name": li["name"],
                "operating_status": op,
                "provisioning_status": prov,
                "pools": pools,
            }
        )
    op, prov = st("loadbalancer", lb_name)
    return {
        "statuses": {
            "loadbalancer": {
                "id": object_id(run_scenario, "loadbalancer", lb_name),
                "name": lb_name,
                "operating_status": op,
                "provisioning_status": prov,
                "listeners": listeners,
            }
        }
    }


def _tree_catalogue(
    scenario: m.Scenario, tree: m.LoadBalancer | None = None
) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """Listeners and pools (with monitor and members) of the scenario's initial tree
    (or of ``tree``, one of its ``loadbalancers``)."""
    lb = scenario.loadbalancer if tree is None else tree
    listeners = {li.name: {"name": li.name, "default_pool": li.default_pool} for li in lb.listeners}
    pools: dict[str, dict[str, Any]] = {}
    for p in lb.pools:
        hm = p.healthmonitor
        pools[p.name] = {
            "healthmonitor": {"name": hm.name or f"{p.name}-hm", "type": hm.type} if hm else None,
            "members": [
                {"name": mem.name, "address": mem.address, "protocol_port": mem.protocol_port} for mem in p.members
            ],
        }
    return listeners, pools


def object_catalogue(raw: RawRun, lb: str | None = None) -> dict[str, Any]:
    """Every object the run ever had (scenario tree plus API creations), for status trees;
    with ``lb``, those of that load balancer only (scenarios with ``loadbalancers:``)."""
    sc = raw.scenario
    if lb is None:
        listeners, pools = _tree_catalogue(sc)
    else:
        tree = next((t for t in sc.all_loadbalancers if t.name == lb), m.LoadBalancer(name=lb))
        listeners, pools = _tree_catalogue(sc, tree)
    # objects created or changed through the API: take their final attributes
    seen_members = {mem["name"] for p in pools.values() for mem in p["members"]}
    for obj in raw.cp.objects():
        a = obj.attrs
        if lb is not None and _lb_of(raw, obj.type, a) != lb:
            continue
        if obj.type == "listener":
            listeners.setdefault(obj.name, {"name": obj.name})["default_pool"] = a.get("default_pool")
        elif obj.type == "pool":
            pools.setdefault(obj.name, {"healthmonitor": None, "members": []})
        elif obj.type == "healthmonitor":
            pools.setdefault(str(a.get("pool")), {"healthmonitor": None, "members": []})["healthmonitor"] = {
                "name": obj.name,
                "type": a.get("type"),
            }
        elif obj.type == "member":
            members = pools.setdefault(str(a.get("pool")), {"healthmonitor": None, "members": []})["members"]
            if obj.name not in seen_members:
                seen_members.add(obj.name)
                members.append(
                    {
                        "name": obj.name,
                        "address": a.get("address"),
                        "protocol_port": a.get("protocol_port"),
                    }
                )
    return {"listeners": list(listeners.values()), "pools": pools}


def _lb_of(raw: RawRun, kind: str, attrs: dict[str, Any]) -> str | None:
    if kind in ("listener", "pool"):
        return str(attrs.get("loadbalancer"))
    pool = raw.cp.get("pool", str(attrs.get("pool")))
    return None if pool is None else str(pool.attrs.get("loadbalancer"))


def run_status(raw: RawRun) -> dict[str, Any]:
    """``status.json``: the load balancer's status tree at the end. With ``loadbalancers:``
    (several, or created during the run) the first one's tree is under ``statuses`` and
    every one's, in creation order, under ``loadbalancers`` (lbsim extension)."""
    sc = raw.scenario
    if sc.loadbalancers is None:
        return status_tree(sc.name, sc.loadbalancer.name, raw.timeline, raw.duration, object_catalogue(raw))
    return _several(sc.name, raw.timeline, raw.duration, lambda lb: object_catalogue(raw, lb))


def summarise(raw: RawRun, scenario_yaml: str = "") -> RunResult:
    """Turn a raw run into the contract's tables.

    The run's objects are kept out of the cyclic collector meanwhile
    (:func:`~lbsim.scenario.gcpause.gc_frozen`): at 10,000 members its re-traversals of
    them were half of summarising; what summarising makes is collected as usual.
    """
    with gc_frozen():
        return _summarise(raw, scenario_yaml)


def _summarise(raw: RawRun, scenario_yaml: str) -> RunResult:
    dp = raw.dp
    sc = raw.scenario
    measured = max(raw.duration - sc.warmup, 1e-12)
    lat = dp.latency.summary()
    summary: dict[str, Any] = {
        "scenario": sc.name,
        "requests": int(dp.requests),
        "ok": int(dp.ok),
        "errors": {k: int(v) for k, v in sorted(dp.errors.items())},
        "latency": {k: _r(v) for k, v in lat.as_dict().items()},
        "throughput": _r(dp.ok / measured),
        "availability": _r(dp.ok / dp.requests) if dp.requests else None,
        "duration": raw.duration,
        "warmup": sc.warmup,
        "seed": raw.seed,
        "lbsim_version": raw.lbsim_version,
        "warnings": run_warnings(raw),
    }
    # members: one row per member name (a member may have had several servers over failovers)
    by_name: dict[str, list[int]] = {}
    for gidx, name in enumerate(raw.member_names):
        by_name.setdefault(name, []).append(gidx)
    rows = []
    total = max(dp.requests, 1)
    # one vectorised pass for the (usual) members with a single server
    singles = [idxs[0] for idxs in by_name.values() if len(idxs) == 1]
    single_summary = dict(zip(singles, dp.latency.row_summaries(singles), strict=True))
    for name, idxs in by_name.items():
        n = sum(dp.member_requests(i) for i in idxs)
        ok = sum(dp.member_ok(i) for i in idxs)
        errs = sum(sum(dp.member_errors[i].values()) for i in idxs)
        ls = single_summary[idxs[0]] if len(idxs) == 1 else dp.latency.summary(idxs)
        busy = sum(dp.servers[i].busy_time for i in idxs)
        slots = dp.servers[idxs[0]].concurrency
        util = busy / (slots * raw.duration) if raw.duration > 0 else float("nan")
        rows.append([name, n, ok, errs, _r(n / total), _r(ls.mean), _r(ls.p50), _r(ls.p95), _r(ls.p99), _r(util)])
    members = pd.DataFrame(rows, columns=MEMBER_COLUMNS)
    transitions = raw.timeline.frame()
    exp = ex.frame(ex.check_all(sc, raw.timeline))
    status = run_status(raw)
    incidents = incident_frame(raw)
    # built when first read, saved in chunks (RunResult.timeseries takes either)
    timeseries = cast(pd.DataFrame, timeseries_rows(raw))
    api = pd.DataFrame(
        [(c.time, c.op, c.object_type, c.name, c.code, c.message) for c in raw.api_calls],
        columns=["time", "op", "object_type", "name", "code", "message"],
    )
    requests = None
    if dp.log_requests:
        requests = pd.DataFrame(
            {
                "time": [r[0] for r in dp.log],
                "client": [_ip(r[1]) for r in dp.log],
                "member": [raw.member_names[r[2]] if r[2] >= 0 else "" for r in dp.log],
                "latency": [r[3] for r in dp.log],
                "outcome": [r[4] for r in dp.log],
            }
        )
    from lbsim.results import scaling as autoscaling
    from lbsim.results.l7 import l7_frame

    scaling = pool_size = None
    scalers = autoscaling.scalers_of(raw)
    if scalers:
        scaling = autoscaling.scaling_frame(scalers)
        pool_size = autoscaling.pool_size_frame(scalers, raw.duration)
        summary["autoscaling"] = autoscaling.autoscaling_summary(raw)
        verdict = autoscaling.slo_verdict(raw)
        if verdict is not None:
            summary["slo"] = verdict
    return RunResult(
        summary,
        members,
        transitions,
        exp,
        status,
        incidents,
        timeseries,
        api,
        scenario_yaml,
        requests,
        stats=cast(pd.DataFrame, stats_table(raw.stats_rows)),
        latency=latency_frame(dp.latency.histogram()),
        scaling=scaling,
        pool_size=pool_size,
        l7=l7_frame(raw),
    )


def latency_frame(hist: np.ndarray) -> pd.DataFrame:
    """The non-empty bins of a latency histogram, with their edges in seconds."""
    idx = np.flatnonzero(hist)
    lower = np.where(idx == 0, 0.0, LAT_MIN * RATIO ** (idx - 1.0))
    upper = LAT_MIN * RATIO ** idx.astype(float)
    return pd.DataFrame({"bin": idx, "lower": lower, "upper": upper, "count": hist[idx]})


def _ip(value: Any) -> str:
    import ipaddress

    try:
        return str(ipaddress.ip_address(int(value)))
    except (ValueError, TypeError):
        return str(value)


def _first(changes: Any, lo: float, hi: float, pred: Any) -> float | None:
    for c in changes:
        if lo <= c.time <= hi and pred(c.new):
            return float(c.time)
    return None


def _back_from_error(tl: Timeline, name: str, api: float, end: float, horizon: float) -> float | None:
    """When a member's API status last left ERROR for good, after the fault ended."""
    if tl.value_at("member", name, "operating_status", end) != "ERROR":
        lefts = [
            c.time for c in tl.changes("member", name, "operating_status") if api <= c.time <= end and c.old == "ERROR"
        ]
        return max(lefts) if lefts else None
    return _first(tl.changes("member", name, "operating_status"), end, horizon, lambda v: v != "ERROR")


def _detection_budget(raw: RawRun, members: tuple[str, ...]) -> float:
    """How long after a fault ends HAProxy may still be noticing it (fall checks)."""
    budget = 0.0
    for p in raw.scenario.loadbalancer.pools:
        hm = p.healthmonitor
        if hm is not None and any(mem.name in members for mem in p.members):
            budget = max(budget, hm.max_retries_down * (hm.delay + max(hm.timeout, 1)))
    return budget


def incident_frame(raw: RawRun) -> pd.DataFrame:
    """One row per injected fault: when it happened, HAProxy noticed, the API showed it, it ended.

    * member faults and partitions: *detected* is the first ``DOWN`` of an affected
      member in HAProxy, *API-visible* the first member ``ERROR`` after it, *recovered*
      the first operating status after the fault ended that is no longer ERROR (or the
      end of the fault, when it was never noticed);
    * amphora failures: *detected* is when the data plane reacted (the standby took the
      VIP, ACTIVE_STANDBY) or else when the health manager started the failover;
      *API-visible* the load balancer going PENDING_UPDATE; *recovered* its return to
      ACTIVE after the replacement amphora was built.
    ``requests_failed`` / ``requests_slowed`` count requests to the fault's members that
    failed, or were retried or served slowly, because of it: every request that arrived
    while it lasted, including those that failed only after it ended (a ``hang``'s
    requests time out ``timeout_member_data`` later), up to the next fault on the same
    members.
    """
    rows = []
    tl = raw.timeline
    hb = raw.scenario.octavia.heartbeat_interval
    lb = raw.scenario.loadbalancer.name
    for f in raw.faults:
        end = f.end if f.end is not None else raw.duration
        detected = api = recovered = None
        if f.members:
            limit = end + _detection_budget(raw, f.members) + hb
            downs = [
                t
                for name in f.members
                if (
                    t := _first(
                        tl.changes("member", name, "data_plane_state"), f.time, limit, lambda v: v.startswith("DOWN")
                    )
                )
                is not None
            ]
            detected = min(downs) if downs else None
            if detected is not None:
                errs = [
                    t
                    for name in f.members
                    if (
                        t := _first(
                            tl.changes("member", name, "operating_status"), detected, limit + hb, lambda v: v == "ERROR"
                        )
                    )
                    is not None
                ]
                api = min(errs) if errs else None
            if api is not None:
                backs = [_back_from_error(tl, name, api, end, raw.duration) for name in f.members]
                known = [t for t in backs if t is not None]
                recovered = max(known) if len(known) == len(backs) else None
            elif f.end is not None:
                recovered = f.end
        else:  # amphora
            api = _first(
                tl.changes("loadbalancer", lb, "provisioning_status"),
                f.time,
                raw.duration,
                lambda v: v == "PENDING_UPDATE",
            )
            takeover = [
                t
                for amp in {r.name for r in tl.rows if r.object_type == "amphora"}
                if (
                    t := _first(
                        tl.changes("amphora", amp, "data_plane_state"),
                        f.time + 1e-9,
                        raw.duration,
                        lambda v: v == "MASTER",
                    )
                )
                is not None
            ]
            detected = min(takeover) if takeover else api
            if api is not None:
                recovered = _first(
                    tl.changes("loadbalancer", lb, "provisioning_status"),
                    api + 1e-9,
                    raw.duration,
                    lambda v: v == "ACTIVE",
                )
        rows.append([f.kind, f.target, f.time, detected, api, recovered, f.failed, f.slowed, f.end])
    return pd.DataFrame(rows, columns=INCIDENT_COLUMNS)


TRANSITION_COLUMNS = ["time", "object_type", "name", "field", "old", "new"]


# --------------------------------------------------------------------------------------
# Status trees from a result folder (``lbsim status``)
# --------------------------------------------------------------------------------------


def _api_body(ev: m.ApiEvent) -> dict[str, Any]:
    """The request body the engine sends for an API event (parents first, then ``set``)."""
    kind, _name = ev.target
    body: dict[str, Any] = {}
    if ev.api == "create":
        for parent in ("pool", "listener", "loadbalancer"):
            value = getattr(ev, parent)
            if value is not None and parent != kind:
                body[parent] = value
    body.update(ev.set)
    return body


def catalogue_from_events(
    scenario: m.Scenario, api_calls: pd.DataFrame | None = None, at: float | None = None
) -> dict[str, Any]:
    """:func:`object_catalogue` rebuilt without a control plane, for a result folder.

    Starts from the scenario's tree and applies, in time order, every API event of the
    scenario that Octavia accepted (a 2xx row in ``api.csv``, matched by time, operation,
    object type and name) up to time ``at`` (all of them when None): creations add
    listeners, pools, health monitors and members; listener updates may change the
    default pool (Octavia writes it in the API request, so it holds from the call on).
    Objects that were refused, deleted or not yet created need no special care here:
    :func:`status_tree` leaves out anything whose provisioning status is empty or
    DELETED at the time asked. Without ``api_calls`` every API event counts as accepted.
    """
    listeners, pools = _tree_catalogue(scenario)
    events = [e for e in sorted(scenario.events, key=lambda e: e.at) if isinstance(e, m.ApiEvent)]
    accepted: list[m.ApiEvent]
    if api_calls is None:
        accepted = list(events)
    else:
        accepted = []
        pending = list(events)
        for row in api_calls.to_dict("records"):
            for i, ev in enumerate(pending):
                same = (
                    abs(float(ev.at) - float(row["time"])) <= 1e-9
                    and ev.api == str(row["op"])
                    and ev.target == (str(row["object_type"]), str(row["name"]))
                )
                if same:
                    del pending[i]
                    if 200 <= int(row["code"]) < 300:
                        accepted.append(ev)
                    break

    def pool_entry(name: str) -> dict[str, Any]:
        return pools.setdefault(name, {"healthmonitor": None, "members": []})

    for ev in accepted:
        if at is not None and ev.at > at:
            break
        kind, name = ev.target
        body = _api_body(ev)
        if ev.api == "create":
            if kind == "listener":
                listeners[name] = {"name": name, "default_pool": body.get("default_pool")}
            elif kind == "pool":
                pool_entry(name)
                owner = body.get("listener")
                if owner is not None and owner in listeners:
                    listeners[owner]["default_pool"] = name
            elif kind == "healthmonitor":
                pool_entry(str(body.get("pool")))["healthmonitor"] = {
                    "name": name,
                    "type": body.get("type"),
                }
            elif kind == "member":
                members = pool_entry(str(body.get("pool")))["members"]
                if not any(mm["name"] == name for mm in members):
                    members.append(
                        {
                            "name": name,
                            "address": body.get("address"),
                            "protocol_port": body.get("protocol_port"),
                        }
                    )
        elif ev.api == "update" and kind == "listener" and "default_pool" in body:
            listeners.setdefault(name, {"name": name})["default_pool"] = body["default_pool"]
    return {"listeners": list(listeners.values()), "pools": pools}


def status_tree_from_folder(folder: Path, at: float | None = None) -> dict[str, Any]:
    """``openstack loadbalancer status show`` at time ``at`` rebuilt from a result folder.

    Reads ``transitions.csv`` (the statuses), ``scenario.yaml`` and ``api.csv`` (the
    objects) and ``summary.json`` (the run's length). ``at`` defaults to the end of the
    run, where the tree equals ``status.json``. Raises :class:`ResultFolderError` with a
    readable message for a missing folder or file, or a time outside ``[0, duration]``.
    """
    import yaml

    folder = Path(folder)
    needed = ["transitions.csv", "scenario.yaml", "summary.json", "api.csv", "scaling.csv"]
    verify(folder, needed)
    for name in needed[:3]:
        if not (folder / name).is_file():
            raise ResultFolderError(f"{folder}: not a complete result folder ({name} is missing)")
    try:
        text = (folder / "scenario.yaml").read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ResultFolderError(f"{folder}: scenario.yaml is not UTF-8 text") from None
    if not text.strip():
        raise ResultFolderError(
            f"{folder}: scenario.yaml is empty (the run was saved without its scenario), "
            "so the object tree cannot be rebuilt"
        )
    try:
        scenario = m.Scenario.model_validate(yaml.safe_load(text))
    except Exception as exc:  # a hand-edited or foreign file: say so instead of a traceback
        raise ResultFolderError(f"{folder}: scenario.yaml is not a valid scenario: {exc}") from None
    duration = read_duration(folder, read_json_object(folder, "summary.json"))
    if at is None:
        at = duration
    elif not (0.0 <= at <= duration) or math.isnan(at):
        raise ResultFolderError(f"--at {at:g} is outside the run: pick a time between 0 and {duration:g} s")
    transitions = read_table(
        folder, "transitions.csv", TRANSITION_COLUMNS, numeric=["time"], keep_default_na=False, dtype=str
    )
    transitions["time"] = transitions["time"].astype(float)
    api = None
    if (folder / "api.csv").is_file():
        api = read_table(
            folder,
            "api.csv",
            ["time", "op", "object_type", "name", "code"],
            numeric=["time", "code"],
            keep_default_na=False,
        )
    catalogue = catalogue_from_events(scenario, api, at)
    if (folder / "scaling.csv").is_file():
        scaling = read_table(folder, "scaling.csv", ["time", "action"], numeric=["time"], keep_default_na=False)
        _add_scaler_members(catalogue, scaling, at)
    timeline = Timeline.from_frame(transitions)
    if scenario.loadbalancers is not None:
        return _several(scenario.name, timeline, at, lambda lb: _lb_catalogue(scenario, catalogue, lb))
    return status_tree(scenario.name, scenario.loadbalancer.name, timeline, at, catalogue)


def _several(run: str, timeline: Timeline, at: float, catalogue: Any) -> dict[str, Any]:
    """The status of a run with several load balancers: every one that exists at ``at``
    (in creation order) under ``loadbalancers``, the first under ``statuses``."""
    names = [
        name
        for kind, name in timeline.objects()
        if kind == "loadbalancer" and timeline.value_at(kind, name, "provisioning_status", at) != ""
    ]
    trees = [status_tree(run, name, timeline, at, catalogue(name))["statuses"] for name in names]
    return {"statuses": trees[0] if trees else {}, "loadbalancers": trees}


def _lb_catalogue(scenario: m.Scenario, catalogue: dict[str, Any], lb: str) -> dict[str, Any]:
    """The part of a catalogue that belongs to load balancer ``lb`` (by the scenario's
    trees and the parents its create events name)."""
    of_listener: dict[str, str | None] = {}
    of_pool: dict[str, str | None] = {}
    for tree in scenario.all_loadbalancers:
        of_listener.update(dict.fromkeys((li.name for li in tree.listeners), tree.name))
        of_pool.update(dict.fromkeys((p.name for p in tree.pools), tree.name))
    for ev in sorted(scenario.events, key=lambda e: e.at):
        if isinstance(ev, m.ApiEvent) and ev.api == "create":
            kind, name = ev.target
            if kind == "listener":
                of_listener[name] = ev.loadbalancer
            elif kind == "pool":
                of_pool[name] = ev.loadbalancer or of_listener.get(str(ev.listener))
    return {
        "listeners": [li for li in catalogue["listeners"] if of_listener.get(li["name"]) == lb],
        "pools": {name: p for name, p in catalogue["pools"].items() if of_pool.get(name) == lb},
    }


def _add_scaler_members(catalogue: dict[str, Any], scaling: pd.DataFrame, at: float) -> None:
    """Members an autoscaler created (accepted ``create`` rows of ``scaling.csv``) up to ``at``."""
    if not {"action", "member", "code", "pool", "address", "protocol_port"} <= set(scaling.columns):
        return
    for row in scaling.to_dict("records"):
        if row["action"] != "create" or str(row["code"]) not in ("201", "201.0") or float(row["time"]) > at:
            continue
        entry = catalogue["pools"].setdefault(str(row["pool"]), {"healthmonitor": None, "members": []})
        if all(mem["name"] != row["member"] for mem in entry["members"]):
            entry["members"].append(
                {"name": str(row["member"]), "address": str(row["address"]), "protocol_port": int(row["protocol_port"])}
            )
