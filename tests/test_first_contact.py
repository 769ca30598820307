"""Issue 14, crashes: input that used to raise a traceback now gets a clean exit 2.

Each test is one reproducer of the issue: it feeds the CLI the hostile or odd input and
asserts exit 2, a ``file:line: field.path: ...`` message that names the problem, and no
traceback; the runtime fixes (IPv6 clients, gamma extremes) are also run.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from lbsim.api import run_scenario
from lbsim.cli.main import main
from lbsim.scenario.loader import MAX_FILE_BYTES, ScenarioError, load_scenario, parse_scenario


def _cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def alarm() -> Iterator[None]:
    """Fail instead of hanging: SIGALRM after 20 s."""

    def boom(*_: Any) -> None:
        raise TimeoutError("the command hung")

    old = signal.signal(signal.SIGALRM, boom)
    signal.alarm(20)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ------------------------------------------------------------------ markup and emoji


def test_markup_in_a_key_is_printed_verbatim(
    scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario_dict["x[/x]"] = 1
    scenario_dict["[bold]y[/bold]"] = 2
    f = tmp_path / "s.yaml"
    f.write_text(to_yaml(scenario_dict))
    code, _, err = _cli(capsys, "validate", str(f))
    assert code == 2
    assert "unknown field 'x[/x]'" in err
    assert "unknown field '[bold]y[/bold]'" in err  # not rendered as bold text


def test_markup_in_a_value_is_printed_verbatim(
    scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario_dict["loadbalancer"]["listeners"][0]["default_pool"] = "[/red]"
    f = tmp_path / "s.yaml"
    f.write_text(to_yaml(scenario_dict))
    code, _, err = _cli(capsys, "validate", str(f))
    assert code == 2 and "[/red]" in err


@pytest.mark.parametrize("line", [100, 1234])
def test_line_numbers_are_not_emoji(line: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "version: 1\nname: t\n" + "# pad\n" * (line - 3) + "bogus: 1\n"
    f = tmp_path / f"line{line}.yaml"
    f.write_text(text)
    code, _, err = _cli(capsys, "validate", str(f))
    assert code == 2
    assert f"line{line}.yaml:{line}: bogus: unknown field" in err
    assert "\U0001f4af" not in err  # 💯


# ------------------------------------------------------------------ YAML limits


def test_long_integer_is_a_problem_with_its_line(
    scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = to_yaml(scenario_dict).replace("seed: 7", "seed: " + "9" * 5000)
    f = tmp_path / "s.yaml"
    f.write_text(text)
    code, _, err = _cli(capsys, "validate", str(f))
    line = text.splitlines().index("seed: " + "9" * 5000) + 1
    assert code == 2 and f"s.yaml:{line}:" in err and "5000 digits" in err


def test_a_long_name_of_digits_and_letters_is_not_taken_for_a_number(
    scenario_dict: dict[str, Any],
) -> None:
    scenario_dict["name"] = "a" * 200
    sc = parse_scenario(yaml.safe_dump(scenario_dict))
    assert sc.name == "a" * 200


@pytest.mark.parametrize("depth", [65, 490, 5000])
def test_deep_nesting_is_refused(
    depth: int, scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    text = to_yaml(scenario_dict) + "x: " + "[" * depth + "]" * depth + "\n"
    f = tmp_path / "s.yaml"
    f.write_text(text)
    code, _, err = _cli(capsys, "validate", str(f))
    assert code == 2 and "nesting deeper than 64 levels" in err


def test_deep_block_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = "".join(" " * i + f"k{i}:\n" for i in range(600))
    f = tmp_path / "s.yaml"
    f.write_text(text)
    code, _, err = _cli(capsys, "validate", str(f))
    assert code == 2 and "nesting deeper" in err


def test_dev_zero_is_refused_without_reading(capsys: pytest.CaptureFixture[str], alarm: None) -> None:
    code, _, err = _cli(capsys, "validate", "/dev/zero")
    assert code == 2 and "/dev/zero: <top>: not a regular file" in err


def test_named_pipe_is_refused_without_blocking(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], alarm: None
) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    code, _, err = _cli(capsys, "validate", str(fifo))
    assert code == 2 and "named pipe" in err
    code, _, err = _cli(capsys, "run", str(fifo), "--out", str(tmp_path / "r"), "--quiet")
    assert code == 2 and not (tmp_path / "r").exists()


def test_huge_and_binary_files_are_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with open(big, "wb") as fh:
        fh.truncate(MAX_FILE_BYTES + 1)  # sparse: costs no disk
    with pytest.raises(ScenarioError, match="at most"):
        load_scenario(big)
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"version: 1\n\x00\x01\x02")
    with pytest.raises(ScenarioError, match="binary"):
        load_scenario(binary)
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    with pytest.raises(ScenarioError, match="UTF-8"):
        load_scenario(latin)


# ------------------------------------------------------------------ passes validate, crashed run


def test_source_ip_port_in_the_initial_tree_is_a_validation_error(
    scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario_dict["loadbalancer"]["pools"][0]["lb_algorithm"] = "SOURCE_IP_PORT"
    f = tmp_path / "s.yaml"
    text = to_yaml(scenario_dict)
    f.write_text(text)
    line = text.splitlines().index("    lb_algorithm: SOURCE_IP_PORT") + 1
    for argv in (("validate", str(f)), ("run", str(f), "--out", str(tmp_path / "r")), ("haproxy-config", str(f))):
        code, out, err = _cli(capsys, *argv)
        assert code == 2, argv
        assert f"s.yaml:{line}: loadbalancer.pools[0].lb_algorithm:" in err and "501" in err
        assert "balance roundrobin" not in out  # haproxy-config no longer prints a fallback


def test_source_ip_port_at_provision_is_a_warning_and_runs(
    scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scenario_dict["loadbalancer"]["pools"][0]["lb_algorithm"] = "SOURCE_IP_PORT"
    scenario_dict["start"] = "provision"
    scenario_dict["expect"] = []
    f = tmp_path / "s.yaml"
    f.write_text(to_yaml(scenario_dict))
    code, _, err = _cli(capsys, "run", str(f), "--out", str(tmp_path / "r"), "--quiet")
    assert code in (0, 1)
    assert "warning" in err and "501" in err


@pytest.mark.parametrize("cv", [1e-200, 1e-9, 1e3])
def test_gamma_extreme_cv_runs(cv: float, scenario_dict: dict[str, Any]) -> None:
    scenario_dict["loadbalancer"]["pools"][0]["members"][0]["service_time"] = {
        "dist": "gamma",
        "mean": 0.01,
        "cv": cv,
    }
    result = run_scenario(parse_scenario(yaml.safe_dump(scenario_dict)))
    assert result.summary["requests"] > 0


def test_gamma_huge_cv_is_refused(scenario_dict: dict[str, Any]) -> None:
    scenario_dict["loadbalancer"]["pools"][0]["members"][0]["service_time"] = {
        "dist": "gamma",
        "mean": 0.01,
        "cv": 1e200,
    }
    with pytest.raises(ScenarioError, match=r"members\[0\]\.service_time\.cv: expected a gamma cv of at most"):
        parse_scenario(yaml.safe_dump(scenario_dict))


@pytest.mark.parametrize("cidr", ["2001:db8::/100", "2001:db8::/120", "2001:db8::/126", "2001:db8::/64"])
def test_ipv6_client_cidrs_of_any_width_run(cidr: str, scenario_dict: dict[str, Any]) -> None:
    scenario_dict["traffic"][0]["clients"] = {"cidr": cidr, "count": 50}
    scenario_dict["loadbalancer"]["pools"][0]["lb_algorithm"] = "SOURCE_IP"
    result = run_scenario(parse_scenario(yaml.safe_dump(scenario_dict)), log_requests=True)
    assert result.requests is not None
    clients = set(result.requests["client"])
    import ipaddress

    net = ipaddress.ip_network(cidr)
    assert clients and all(ipaddress.ip_address(c) in net for c in clients)


def test_empirical_file_without_samples(
    scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "empty.csv").write_text("value\n")
    scenario_dict["loadbalancer"]["pools"][0]["members"][0]["service_time"] = {"dist": "empirical", "file": "empty.csv"}
    f = tmp_path / "s.yaml"
    f.write_text(to_yaml(scenario_dict))
    code, _, err = _cli(capsys, "run", str(f), "--out", str(tmp_path / "r"))
    assert code == 2
    assert "members[0].service_time.file:" in err and "no samples" in err
    (tmp_path / "empty.csv").write_text("0.01\n-3\n")
    code, _, err = _cli(capsys, "validate", str(f))
    assert code == 2 and "empty.csv:2: expected a finite value >= 0" in err


def test_trace_with_a_bad_line_is_exit_2(
    scenario_dict: dict[str, Any], to_yaml: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "tr.csv").write_text("time,client\n0.5,10.0.0.1\nabc,10.0.0.2\n")
    scenario_dict["traffic"][0]["arrival"] = {"process": "trace", "file": "tr.csv"}
    f = tmp_path / "s.yaml"
    f.write_text(to_yaml(scenario_dict))
    code, _, err = _cli(capsys, "run", str(f), "--out", str(tmp_path / "r"))
    assert code == 2 and "traffic[0].arrival.file:" in err and "tr.csv:3: time must be a number" in err
    assert not (tmp_path / "r").exists()
    (tmp_path / "tr.csv").write_text("time,client,port\n0.5,10.0.0.1,70000\n")
    code, _, err = _cli(capsys, "validate", str(f))
    assert code == 2 and "tr.csv:2: port must be 0..65535" in err


def test_an_unwritable_output_path_is_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    f = tmp_path / "s.yaml"
    f.write_text((Path(__file__).resolve().parents[1] / "scenarios/default.yaml").read_text())
    code, _, err = _cli(capsys, "haproxy-config", str(f), "--output", str(blocker / "x.cfg"))
    assert code == 2 and "x.cfg" in err


def test_source_ip_port_in_any_tree_of_loadbalancers(scenario_dict: dict[str, Any]) -> None:
    lb = scenario_dict.pop("loadbalancer")
    text = yaml.safe_dump(lb)
    for old, new in (("lb1", "lb2"), ("name: http", "name: http2"), ("web", "www"), ("10.0.0.1", "10.0.1.1")):
        text = text.replace(old, new)
    second = yaml.safe_load(text)
    second["pools"][0]["lb_algorithm"] = "SOURCE_IP_PORT"
    second["listeners"][0]["protocol_port"] = 81
    scenario_dict.update(loadbalancers=[lb, second], events=[], expect=[])
    with pytest.raises(ScenarioError) as info:
        parse_scenario(yaml.safe_dump(scenario_dict))
    assert [p.path for p in info.value.problems] == ["loadbalancers[1].pools[0].lb_algorithm"]
