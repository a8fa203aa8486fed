"""The benchmark scripts keep running: each ``--quick`` grid runs in a subprocess.

Each script checks its answers against its peers (dynamax, hmmlearn, NumPyro, float64
references) before timing and exits non-zero if a check fails, so this also re-checks those
agreements on the quick grids. Timings are written but not asserted (performance lives in
``benchmarks/``, not in tests).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def _passed(name: str, result: dict) -> bool:
    if name == "fit":
        return result["failed_checks"] == []
    return result["all_checks_pass"] is True


@pytest.mark.parametrize("name", ["fit", "exact", "mingru", "layers", "bilinear", "cells"])
def test_quick_benchmark_runs_and_its_checks_pass(name, tmp_path):
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"bench_{name}.py"), "--quick", "--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    result = json.loads((tmp_path / f"{name}_quick.json").read_text())
    assert _passed(name, result), result
    assert (tmp_path / f"{name}_quick.md").read_text().strip()
