"""Execute the jupytext notebooks in ``notebooks/`` and check that the expected ones exist.

Every ``notebooks/NN_*.py`` (jupytext ``py:percent``) is converted with jupytext and
executed top to bottom with nbclient in a fresh kernel; the identities a notebook states
are ``assert`` statements inside it, so a notebook that raises fails its test. The kernel
runs this interpreter (``sys.executable``) through a kernelspec written for the test
session, so the notebooks see the same environment as the tests whatever kernelspecs the
machine has installed. Each notebook runs in a temporary working directory (nothing is
written into the repository) with ``MPLBACKEND=Agg``.

The list of notebooks that must exist is the table in ``notebooks/README.md``: a row whose
first cell is a notebook name (``NN_name``, optionally in backticks) adds it.
"""

import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK_DIR = ROOT / "notebooks"
README = NOTEBOOK_DIR / "README.md"
NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9][0-9]_*.py"))
CELL_TIMEOUT_S = 300  # per cell; the notebooks aim for well under a minute in total
KERNEL_NAME = "python3"

_ROW_NAME = re.compile(r"^`?(\d\d_[A-Za-z0-9_]+?)(?:\.py)?`?$")


def expected_notebooks(readme: Path = README) -> list[str]:
    """Notebook names listed in the first column of the README's table rows."""
    names = []
    for line in readme.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line.startswith("|"):
            continue
        first = line.strip("|").split("|")[0].strip()
        match = _ROW_NAME.match(first)
        if match:
            names.append(match.group(1))
    return names


# The derivations the project promises (issue 5); later notebooks add to this set.
REQUIRED = (
    "01_loglinear_naive_bayes",
    "02_mingru_switching_ssm",
    "03_gaussian_latents_changepoints",
    "04_fitting_and_comparing",
    "05_scans",
    "07_recurrent_layers_as_ssms",
)


def test_required_notebooks_are_listed_and_executed():
    listed = set(expected_notebooks())
    executed = {p.stem for p in NOTEBOOKS}
    missing = [n for n in REQUIRED if n not in listed or n not in executed]
    assert not missing, f"required notebooks missing from the executed set: {missing}"


def test_readme_table_parses():
    # A test that reads an empty list would pass whatever is missing: guard against it.
    names = expected_notebooks()
    assert names, f"no notebook rows found in the table of {README}"
    assert len(names) == len(set(names)), f"duplicate rows in {README}: {names}"


def test_expected_notebooks_exist():
    present = {p.stem for p in NOTEBOOKS}
    missing = [name for name in expected_notebooks() if name not in present]
    assert not missing, (
        f"notebooks listed in {README.relative_to(ROOT)} but missing from "
        f"{NOTEBOOK_DIR.relative_to(ROOT)}/: {missing}"
    )


def test_every_notebook_is_listed():
    listed = set(expected_notebooks())
    unlisted = [p.stem for p in NOTEBOOKS if p.stem not in listed]
    assert not unlisted, (
        f"notebooks not listed in the table of {README.relative_to(ROOT)}: {unlisted}"
    )


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_round_trips(path):
    """text -> notebook -> text leaves every cell (type and source) unchanged."""
    nb = jupytext.read(path)
    assert nb.metadata["jupytext"]["text_representation"]["format_name"] == "percent"
    assert nb.metadata["kernelspec"]["name"] == KERNEL_NAME
    again = jupytext.reads(jupytext.writes(nb, fmt="py:percent"), fmt="py:percent")
    cells = [(c.cell_type, c.source) for c in nb.cells]
    assert cells == [(c.cell_type, c.source) for c in again.cells]
    assert any(c.cell_type == "markdown" for c in nb.cells), "a notebook states its derivation"
    assert any("assert" in c.source for c in nb.cells if c.cell_type == "code"), (
        "a notebook checks its identities with assert"
    )


@pytest.fixture(scope="session")
def jupyter_path(tmp_path_factory):
    """A Jupyter data dir whose ``kernels/python3`` launches this interpreter.

    ``JUPYTER_PATH`` is searched before the user's and the system's directories, so this
    kernelspec wins over any other ``python3`` the machine has.
    """
    from ipykernel.kernelspec import write_kernel_spec

    root = tmp_path_factory.mktemp("jupyter")
    write_kernel_spec(path=root / "kernels" / KERNEL_NAME)
    return root


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes(path, tmp_path, jupyter_path, monkeypatch):
    from jupyter_client.kernelspec import KernelSpecManager
    from nbclient import NotebookClient

    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_path))
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.chdir(tmp_path)
    assert KernelSpecManager().get_kernel_spec(KERNEL_NAME).argv[0] == sys.executable
    nb = jupytext.read(path)
    client = NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_S,
        kernel_name=KERNEL_NAME,
        resources={"metadata": {"path": str(tmp_path)}},
    )
    t0 = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the traceback, if a cell fails
    elapsed = time.perf_counter() - t0
    nbformat.validate(nb)
    print(f"{path.name}: executed in {elapsed:.1f} s")
