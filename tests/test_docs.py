"""The documentation builds without a warning: theory pages, and the API reference from the
docstrings (autodoc + napoleon), so a broken docstring fails the suite. Nothing in the
repository points outside it."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_docs_build_with_warnings_as_errors(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-q",
         str(ROOT / "docs"), str(tmp_path / "html")],
        capture_output=True, text=True, timeout=600, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (tmp_path / "html" / "theory.html").is_file()
    assert (tmp_path / "html" / "api" / "fit.html").is_file()


def test_no_reference_outside_the_repository():
    tracked = subprocess.run(
        ["git", "ls-files"], capture_output=True, text=True, cwd=ROOT, check=True
    ).stdout.split()
    bad = []
    for name in tracked:
        if not name.endswith((".py", ".md", ".toml", ".txt")) or name.startswith("tests/test_docs"):
            continue
        text = (ROOT / name).read_text(encoding="utf-8", errors="replace")
        for needle in ("shared/design", "pitfalls.md", "../seeds", "shared/seeds"):
            if needle in text:
                bad.append(f"{name}: {needle}")
    assert not bad, bad
