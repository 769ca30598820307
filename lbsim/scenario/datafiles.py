"""Reading the data files a scenario names: empirical samples and arrival traces.

The same readers serve validation (so that a bad line is a problem with the file's own
line number before anything runs) and the simulation (which turns the rows into arrays),
so the two can never disagree about what a file means.
"""

from __future__ import annotations

import ipaddress
import math
import os
import stat
from pathlib import Path

#: the largest data file read (bytes): a trace of some ten million requests
MAX_DATA_BYTES = 512 * 1024 * 1024


class DataFileError(ValueError):
    """A data file cannot be used; the message names the file and, where known, the line."""


def resolve(name: str, base_dir: Path | None) -> Path:
    """A data file path as written in a scenario, relative to the scenario's folder."""
    p = Path(name)
    if not p.is_absolute() and base_dir is not None:
        p = base_dir / p
    return p


def read_data_text(path: Path) -> str:
    """The text of a regular UTF-8 data file; pipes, devices and huge files are refused."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    if not stat.S_ISREG(st.st_mode):
        raise DataFileError(f"{path}: not a regular file")
    if st.st_size > MAX_DATA_BYTES:
        raise DataFileError(f"{path}: {st.st_size:,} bytes; at most {MAX_DATA_BYTES:,} are read")
    try:
        with open(path, "rb") as fh:
            data = fh.read(MAX_DATA_BYTES + 1)
        return data.decode("utf-8")
    except OSError as exc:
        raise DataFileError(f"{path}: cannot read file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise DataFileError(f"{path}: not a UTF-8 text file") from None


def read_samples(path: Path) -> list[float]:
    """The first column of a samples CSV as numbers (non-numeric rows, such as a header,
    are skipped). At least one sample is needed; negative and infinite values are refused,
    as they would be inline."""
    values: list[float] = []
    for n, line in enumerate(read_data_text(path).splitlines(), 1):
        cell = line.split(",")[0].strip()
        if not cell:
            continue
        try:
            v = float(cell)
        except ValueError:
            continue  # a header row
        if not math.isfinite(v) or v < 0:
            raise DataFileError(f"{path}:{n}: expected a finite value >= 0, got {cell!r}")
        values.append(v)
    if not values:
        raise DataFileError(f"{path}: no samples (expected one number per line)")
    return values


def parse_address(text: str) -> int:
    """An address in a trace: dotted IPv4/IPv6 text or a plain integer."""
    text = text.strip()
    try:
        return int(ipaddress.ip_address(text))
    except ValueError:
        value = int(text)
        if not 0 <= value < 2**128:
            raise ValueError(text) from None
        return value


def read_trace(path: Path) -> tuple[list[float], list[int], list[int]]:
    """The rows of a ``time,client[,port]`` trace CSV (header optional), in file order.

    Times must be finite and >= 0, clients IPv4/IPv6 text or integers, ports 0..65535;
    the first bad row is reported with its line number.
    """
    times: list[float] = []
    clients: list[int] = []
    ports: list[int] = []
    for n, line in enumerate(read_data_text(path).splitlines(), 1):
        cells = [c.strip() for c in line.split(",")]
        if not cells or not cells[0]:
            continue
        try:
            t = float(cells[0])
        except ValueError:
            if n == 1:
                continue  # header
            raise DataFileError(f"{path}:{n}: time must be a number, got {cells[0][:40]!r}") from None
        if not math.isfinite(t) or t < 0:
            raise DataFileError(f"{path}:{n}: time must be a finite number >= 0, got {cells[0][:40]!r}")
        try:
            c = parse_address(cells[1]) if len(cells) > 1 and cells[1] else 0
            p = int(cells[2]) if len(cells) > 2 and cells[2] else 0
        except ValueError:
            raise DataFileError(f"{path}:{n}: expected time,client[,port]") from None
        if not 0 <= p <= 65535:
            raise DataFileError(f"{path}:{n}: port must be 0..65535, got {p}")
        times.append(t)
        clients.append(c)
        ports.append(p)
    return times, clients, ports
