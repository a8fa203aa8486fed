"""Report folders written as one unit, and the small writers the pipelines share."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np

from switchssm import _arviz
from switchssm._markdown import markdown_table

MANIFEST = "manifest.json"


class ReportFolder:
    """Write a report folder as one unit: staged next to it, then swapped into place.

    Used as a context manager: files are written into :attr:`path` (a staging folder); on
    success the staging folder replaces ``out`` (a previous report there is replaced whole,
    so the folder never mixes files of two runs, even if a run is killed half way), and a
    ``manifest.json`` lists the files. While a run writes, a lock file ``.<name>.lock`` next
    to ``out`` makes a second run on the same folder fail at once.

    An existing ``out`` that is not a switchssm report folder (no manifest) is refused, so a
    user's own folder is never replaced.

    Args:
        out: the report folder.
        command: what wrote it (recorded in the manifest).
    """

    def __init__(self, out, command: str):
        self.out = Path(out)
        self.command = command
        self.files: list[str] = []
        self.path: Path | None = None
        self._lock: Path | None = None

    def check(self) -> None:
        """Fail early (``ValueError``) if ``out`` cannot be written."""
        out = self.out
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out '{out}' is an existing file, not a folder")
        if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise ValueError(
                f"--out '{out}' is a non-empty folder that switchssm did not write (no "
                f"{MANIFEST}); choose a new folder name"
            )
        parent = out.absolute().parent
        if not parent.is_dir():
            raise ValueError(f"--out '{out}': its parent folder '{parent}' does not exist")
        if not os.access(parent, os.W_OK):
            raise ValueError(f"--out '{out}': no permission to write in '{parent}'")
        try:  # some folders pass os.access but take no new entries (/proc, read-only mounts)
            os.rmdir(tempfile.mkdtemp(prefix=f".{out.name}.check.", dir=parent))
        except OSError as exc:
            raise ValueError(
                f"--out '{out}': cannot write in '{parent}' ({exc.strerror})"
            ) from None

    def __enter__(self) -> ReportFolder:
        self.check()
        parent = self.out.absolute().parent
        lock = parent / f".{self.out.name}.lock"
        try:
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if not _stale(lock):
                raise ValueError(
                    f"--out '{self.out}' is being written by another switchssm run (lock "
                    f"'{lock}'); wait for it or choose another folder"
                ) from None
            lock.unlink(missing_ok=True)
            fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except OSError as exc:
            raise ValueError(f"--out '{self.out}': cannot write there ({exc.strerror})") from None
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        self._lock = lock
        self.path = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.", dir=parent))
        os.chmod(self.path, 0o755)
        return self

    def file(self, name: str) -> Path:
        """The staging path of ``name`` (recorded in the manifest)."""
        if name not in self.files:
            self.files.append(name)
        return self.path / name

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                shutil.rmtree(self.path, ignore_errors=True)
                return
            manifest = {"command": self.command, "files": sorted(self.files)}
            (self.path / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
            old = None
            if self.out.exists():
                old = Path(tempfile.mkdtemp(prefix=f".{self.out.name}.old.", dir=self.path.parent))
                os.replace(self.out, old / "report")
            os.replace(self.path, self.out)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        finally:
            if self._lock is not None:
                self._lock.unlink(missing_ok=True)


def _stale(lock: Path) -> bool:
    """A lock whose process is gone (a run that was killed)."""
    try:
        pid = int(lock.read_text().strip() or "0")
    except (OSError, ValueError):
        return True
    if pid <= 0:
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def write_json(path: Path, obj) -> None:
    """Pretty JSON with a final newline (NumPy scalars as floats)."""
    path.write_text(json.dumps(obj, indent=2, default=float) + "\n")


def params_dict(params) -> dict:
    """A :class:`~switchssm.models.SwitchingParams` as plain JSON values."""
    em = params.emission
    d = {
        "initial_probs": np.asarray(params.initial_probs).tolist(),
        "switch_prob": float(params.switch_prob),
        "gated": bool(params.gated),
    }
    if em.kind == "categorical":
        d["emission_probs"] = np.asarray(em.probs).tolist()
    else:
        d["emission_means"] = np.asarray(em.means).tolist()
        d["emission_cov"] = np.asarray(em.cov).tolist()
    if params.cue is not None:
        d["cue_means"] = np.asarray(params.cue.means).tolist()
        d["cue_scale"] = np.asarray(params.cue.scale).tolist()
    return d


def summary_markdown(summary) -> str:
    """An ArviZ summary (pandas DataFrame) as a Markdown table."""
    return markdown_table(summary, digits=4)


def write_posterior(folder: ReportFolder, fit) -> list[str]:
    """Write a :class:`~switchssm.fit.BayesFit`'s draws (``posterior.nc``) and its ArviZ
    summary (CSV and Markdown); returns the file names."""
    log = logging.getLogger("arviz")
    level = log.level
    log.setLevel(logging.ERROR)  # ArviZ logs shape warnings on single-chain draws
    try:
        _arviz.save_inference_data(fit.idata, folder.file("posterior.nc"))
    finally:
        log.setLevel(level)
    fit.summary.to_csv(folder.file("posterior_summary.csv"))
    folder.file("posterior_summary.md").write_text(summary_markdown(fit.summary) + "\n")
    return ["posterior.nc", "posterior_summary.csv", "posterior_summary.md"]
