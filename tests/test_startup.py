"""Start-up stays light: ``lbsim --help`` loads neither pydantic nor pandas, matplotlib,
Dask or numba, and ``lbsim validate`` none but pydantic (it validates).

Each command runs in a fresh interpreter, which then lists the modules it loaded; a
heavy import at the top of any CLI module (or of anything it imports) fails here.
Measured on the project's 2-core machine: ``lbsim --help`` 0.17 s of CPU, 0.19 s wall
when the machine is quiet (the import of ``lbsim.cli.main`` went from 0.63 s to 0.10 s).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pandas", "matplotlib", "dask", "distributed", "numba", "pyarrow", "scipy", "fastapi", "uvicorn")


def loaded_modules(argv: list[str]) -> set[str]:
    """Top-level packages a fresh interpreter has loaded after ``lbsim ARGV``."""
    code = (
        "import json, sys\n"
        "from lbsim.cli.main import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        "sys.stdout.flush()\n"
        "print('\\nMODULES ' + json.dumps(sorted({m.split('.')[0] for m in sys.modules})))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True).stdout
    line = next(ln for ln in out.splitlines() if ln.startswith("MODULES "))
    return set(json.loads(line[len("MODULES ") :]))


@pytest.mark.parametrize("argv", [["--help"], ["run", "--help"], ["sweep", "--help"]])
def test_help_loads_nothing_heavy(argv: list[str]) -> None:
    """Help of the command and of its subcommands: no data or model libraries."""
    mods = loaded_modules(argv)
    assert "lbsim" in mods
    assert not mods & {*HEAVY, "pydantic", "simpy"}, sorted(mods & {*HEAVY, "pydantic", "simpy"})


def test_validate_loads_no_data_libraries() -> None:
    """Validation needs the scenario model (pydantic), not pandas, matplotlib, Dask or numba."""
    mods = loaded_modules(["validate", "scenarios/default.yaml"])
    assert "pydantic" in mods  # it did validate
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_import_lbsim_is_lazy() -> None:
    """``import lbsim`` (the public API, PEP 562) loads nothing heavy until used."""
    code = "import json, sys, lbsim; print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    mods = set(json.loads(out.strip().splitlines()[-1]))
    assert not mods & {*HEAVY, "pydantic", "numpy"}, sorted(mods & {*HEAVY, "pydantic", "numpy"})
