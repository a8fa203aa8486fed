"""Report folders are written as one unit: complete, never mixed, never over a user's folder."""

import json
import os

import pytest

from switchssm.pipelines import ReportFolder


def _write(out, files, fail=False):
    with ReportFolder(out, "test") as folder:
        for name, text in files.items():
            folder.file(name).write_text(text)
        if fail:
            raise RuntimeError("killed half way")


def test_folder_is_swapped_in_whole(tmp_path):
    out = tmp_path / "report"
    _write(out, {"fit.npz": "1", "fit.json": "1"})
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest == {"command": "test", "files": ["fit.json", "fit.npz"]}
    # a second run replaces the whole folder: no file of the first run survives
    _write(out, {"fit.json": "2"})
    assert sorted(p.name for p in out.iterdir()) == ["fit.json", "manifest.json"]
    assert (out / "fit.json").read_text() == "2"
    assert oct(out.stat().st_mode & 0o777) == "0o755"
    # a run that fails half way leaves the previous report untouched, and no debris
    with pytest.raises(RuntimeError):
        _write(out, {"fit.json": "3"}, fail=True)
    assert (out / "fit.json").read_text() == "2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]


def test_refuses_user_folders_files_and_concurrent_runs(tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="did not write"):
        _write(mine, {"a": "1"})
    assert (mine / "notes.txt").read_text() == "keep me"
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ValueError, match="existing file"):
        _write(afile, {"a": "1"})
    with pytest.raises(ValueError, match="parent folder"):
        _write(tmp_path / "no" / "such" / "dir", {"a": "1"})
    # a live lock (this process) refuses a second writer; a dead one is taken over
    out = tmp_path / "report"
    lock = tmp_path / ".report.lock"
    lock.write_text(str(os.getpid()))
    with pytest.raises(ValueError, match="another switchssm run"):
        _write(out, {"a": "1"})
    lock.write_text("999999999")  # no such process
    _write(out, {"a": "1"})
    assert (out / "a").is_file() and not lock.exists()
