"""The notebooks: stored without outputs (quick), and each runs top to bottom (``notebooks``).

Run the executing tests with ``pytest -m notebooks``. They start a Jupyter kernel per
notebook (the ``python3`` kernel of this environment) with the notebook's folder as the
working directory, as ``jupyter nbconvert --execute`` or nbmake would.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).absolute().parents[1] / "notebooks").glob("*.ipynb"))
TOPICS = ("quickstart", "algorithm-comparison", "capacity-planning", "status-semantics")


def test_the_four_notebooks_exist() -> None:
    names = [p.stem for p in NOTEBOOKS]
    for topic in TOPICS:
        assert any(topic in n for n in names), f"no notebook about {topic}: {names}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_is_stored_without_outputs(path: Path) -> None:
    book = json.loads(path.read_text(encoding="utf-8"))
    for i, cell in enumerate(book["cells"]):
        if cell["cell_type"] == "code":
            assert cell.get("outputs") == [], f"cell {i} has stored outputs"
            assert cell.get("execution_count") is None, f"cell {i} has an execution count"
    # every scenario the notebook names exists
    root = path.parents[1]
    text = "".join("".join(c["source"]) for c in book["cells"])
    for rel in re.findall(r'SCENARIOS / "([^"]+)"(?: / "([^"]+)")?', text):
        target = root / "scenarios" / Path(*[r for r in rel if r])
        assert target.exists(), target


@pytest.mark.notebooks
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_top_to_bottom(path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    book = nbformat.read(path, as_version=4)
    root = str(path.parents[1])
    env_path = os.environ.get("PYTHONPATH", "")
    os.environ["PYTHONPATH"] = os.pathsep.join([root, env_path]) if env_path else root
    try:
        client = nbclient.NotebookClient(
            book, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
        )
        client.execute()
    finally:
        if env_path:
            os.environ["PYTHONPATH"] = env_path
        else:
            os.environ.pop("PYTHONPATH", None)
    errors = [o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    # the figures were drawn: at least one image per notebook
    images = [
        o for c in book.cells if c.cell_type == "code" for o in c.get("outputs", []) if "image/png" in o.get("data", {})
    ]
    assert images, "no figure was displayed"
