"""Real sequence data sets shipped with switchssm, and their loaders.

Two small, public data sets live next to this module (provenance and licences in
``switchssm/data/README.md``):

- ``nile.csv``: annual flow of the river Nile at Aswan, 1871-1970 (a Gaussian-latent
  changepoint example: the level drops around 1898).
- ``arabidopsis_chloroplast.txt``: the complete chloroplast genome of *Arabidopsis thaliana*
  (RefSeq NC_000932.1, 154,478 bp) in FASTA format, a categorical sequence over
  ``A, C, G, T`` whose base composition switches between the genome's four regions (large
  single copy, inverted repeat B, small single copy, inverted repeat A).

Loaders return NamedTuples of NumPy arrays; they read the package files with
:mod:`importlib.resources`, so they work from an installed wheel.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from typing import NamedTuple

import numpy as np

__all__ = [
    "CHLOROPLAST_ALPHABET",
    "CHLOROPLAST_REGION_LENGTHS",
    "CHLOROPLAST_REGION_NAMES",
    "ChloroplastData",
    "NileData",
    "Standardized",
    "load_chloroplast",
    "load_nile",
    "load_nile_standardized",
    "standardize",
]

_PACKAGE = "switchssm.data"


def _read_text(name: str) -> str:
    return resources.files(_PACKAGE).joinpath(name).read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------
# Nile
# --------------------------------------------------------------------------------------


class NileData(NamedTuple):
    """Annual Nile flow at Aswan.

    Attributes:
        years: ``(100,)`` int64, 1871..1970.
        flow: ``(100,)`` float64, annual flow volume in units of ``10^8 m^3``.
    """

    years: np.ndarray
    flow: np.ndarray


class Standardized(NamedTuple):
    """A z-scored array and the affine map that produced it: ``values = (x - mean) / scale``.

    Attributes:
        values: the standardized array.
        mean: the mean that was subtracted (per column for a 2-D input).
        scale: the standard deviation that was divided out (per column for a 2-D input).
    """

    values: np.ndarray
    mean: np.ndarray
    scale: np.ndarray

    def invert(self, z) -> np.ndarray:
        """Map standardized values back to the original units: ``x = z * scale + mean``."""
        return np.asarray(z, dtype=np.float64) * self.scale + self.mean


def standardize(x, *, ddof: int = 0) -> Standardized:
    """Z-score an array along its first (time) axis.

    ``values[t] = (x[t] - mean) / scale`` with ``mean = (1/T) sum_t x[t]`` and
    ``scale = sqrt(sum_t (x[t] - mean)^2 / (T - ddof))``, per column for a ``(T, D)`` input.

    Args:
        x: ``(T,)`` or ``(T, D)`` finite real array with ``T >= 2``.
        ddof: delta degrees of freedom of the standard deviation (0: population, 1: sample).

    Returns:
        :class:`Standardized` ``(values, mean, scale)``; ``values`` has the shape of ``x``.

    Raises:
        ValueError: for an empty, non-finite, non-1-D/2-D or constant input.

    Example:
        >>> z = standardize(np.array([1.0, 2.0, 3.0]))
        >>> z.values.round(4).tolist(), float(z.mean)
        ([-1.2247, 0.0, 1.2247], 2.0)
    """
    a = np.asarray(x, dtype=np.float64)
    if a.ndim not in (1, 2):
        raise ValueError(f"`x` must have shape (T,) or (T, D), got {a.shape}")
    if a.shape[0] < 2 or a.size == 0:
        raise ValueError(f"`x` needs at least two time steps to standardize, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("`x` contains NaN or infinite values")
    mean = a.mean(axis=0)
    scale = a.std(axis=0, ddof=ddof)
    if np.any(scale <= 0):
        raise ValueError("`x` is constant (zero standard deviation): cannot standardize")
    return Standardized((a - mean) / scale, mean, scale)


def load_nile() -> NileData:
    """Load the annual flow of the river Nile at Aswan, 1871-1970 (100 years).

    The series used by Cobb (1978) for the changepoint problem and by Durbin & Koopman
    (2001) for the local level model; the same values as R's ``datasets::Nile``. The mean
    level drops around 1898 (sample means
    ``1097.75`` over 1871-1898 and ``849.97`` over 1899-1970), which makes it a natural
    test case for the Gaussian-latent switching model
    ``s_t = s_{t-1}`` or fresh with probability ``rho``, ``y_t ~ N(s_t, R)``.

    Returns:
        :class:`NileData` with ``years`` ``(100,)`` int64 and ``flow`` ``(100,)`` float64
        in ``10^8 m^3``.

    Example:
        >>> nile = load_nile()
        >>> nile.flow.shape, int(nile.years[0]), float(nile.flow[0])
        ((100,), 1871, 1120.0)
    """
    rows = list(csv.reader(io.StringIO(_read_text("nile.csv"))))
    if rows[0] != ["year", "flow"]:  # pragma: no cover - guards the shipped file
        raise ValueError(f"switchssm/data/nile.csv: unexpected header {rows[0]}")
    body = np.array([[float(c) for c in r] for r in rows[1:] if r], dtype=np.float64)
    return NileData(years=body[:, 0].astype(np.int64), flow=body[:, 1])


def load_nile_standardized(*, ddof: int = 0) -> tuple[NileData, Standardized]:
    """Load the Nile flow z-scored, ready for unit-scale priors.

    ``z_t = (flow_t - mean) / std`` over the 100 years (see :func:`standardize`).

    Args:
        ddof: delta degrees of freedom of the standard deviation.

    Returns:
        ``(nile, z)``: the raw :class:`NileData` and a :class:`Standardized` whose ``values``
        is ``(100,)``; ``z.invert`` maps filtered/smoothed levels back to ``10^8 m^3``.
        Use ``z.values[:, None]`` as the ``(T, 1)`` observations of a Gaussian-latent model.

    Example:
        >>> nile, z = load_nile_standardized()
        >>> abs(float(z.values.mean())) < 1e-12, round(float(z.values.std()), 6)
        (True, 1.0)
    """
    nile = load_nile()
    return nile, standardize(nile.flow, ddof=ddof)


# --------------------------------------------------------------------------------------
# Arabidopsis thaliana chloroplast genome
# --------------------------------------------------------------------------------------

#: Symbol ``i`` of :func:`load_chloroplast` is ``CHLOROPLAST_ALPHABET[i]``.
CHLOROPLAST_ALPHABET: tuple[str, ...] = ("A", "C", "G", "T")
#: The four regions of the circular genome in RefSeq order, starting at base 1.
CHLOROPLAST_REGION_NAMES: tuple[str, ...] = ("LSC", "IRb", "SSC", "IRa")
#: Region lengths published by Sato et al. (1999): large single copy 84,170 bp, a pair of
#: inverted repeats of 26,264 bp, small single copy 17,780 bp.
CHLOROPLAST_REGION_LENGTHS: tuple[int, ...] = (84170, 26264, 17780, 26264)


class ChloroplastData(NamedTuple):
    """The *Arabidopsis thaliana* chloroplast genome as integer symbols.

    Attributes:
        symbols: ``(T,)`` int32 with ``T = 154478``; ``symbols[t] = i`` means base
            ``alphabet[i]`` at position ``t + 1`` of RefSeq NC_000932.1.
        alphabet: ``("A", "C", "G", "T")``.
        regions: ``(T,)`` int32 region label of each base, an index into ``region_names``.
        region_names: ``("LSC", "IRb", "SSC", "IRa")``.
        region_bounds: ``(5,)`` int64 0-based boundaries: region ``r`` is
            ``symbols[region_bounds[r]:region_bounds[r + 1]]``.
        accession: ``"NC_000932.1"``.
    """

    symbols: np.ndarray
    alphabet: tuple[str, ...]
    regions: np.ndarray
    region_names: tuple[str, ...]
    region_bounds: np.ndarray
    accession: str


def _parse_fasta(text: str, name: str) -> tuple[str, str]:
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    if not lines or not lines[0].startswith(">"):  # pragma: no cover - guards shipped file
        raise ValueError(f"{name}: not a FASTA file")
    if any(ln.startswith(">") for ln in lines[1:]):  # pragma: no cover
        raise ValueError(f"{name}: expected exactly one FASTA record")
    return lines[0][1:], "".join(lines[1:]).upper()


def load_chloroplast() -> ChloroplastData:
    """Load the complete chloroplast genome of *Arabidopsis thaliana* (154,478 bp).

    A categorical sequence over ``V = 4`` symbols (``A, C, G, T`` -> ``0..3``) whose base
    composition switches between regions, the setting of Churchill's (1989) hidden Markov
    segmentation of DNA: the GC fraction is about 34% in the large single-copy region
    (LSC), 42% in the two inverted repeats (IRb, IRa) and 29% in the small single-copy
    region (SSC). The region boundaries (``region_bounds``) follow the lengths published by
    Sato et al. (1999); IRa is the exact reverse complement of IRb.

    Returns:
        :class:`ChloroplastData` (``symbols`` ``(154478,)`` int32 in ``0..3``, ``alphabet``,
        per-base ``regions`` labels and ``region_bounds``).

    Example:
        >>> cp = load_chloroplast()
        >>> cp.symbols.shape, cp.alphabet, cp.region_names
        ((154478,), ('A', 'C', 'G', 'T'), ('LSC', 'IRb', 'SSC', 'IRa'))
    """
    name = "switchssm/data/arabidopsis_chloroplast.txt"
    header, seq = _parse_fasta(_read_text("arabidopsis_chloroplast.txt"), name)
    lut = np.full(256, -1, dtype=np.int32)
    for i, base in enumerate(CHLOROPLAST_ALPHABET):
        lut[ord(base)] = i
    symbols = lut[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
    if np.any(symbols < 0):  # pragma: no cover - guards the shipped file
        raise ValueError(f"{name}: found characters outside {CHLOROPLAST_ALPHABET}")
    bounds = np.concatenate([[0], np.cumsum(CHLOROPLAST_REGION_LENGTHS)]).astype(np.int64)
    if bounds[-1] != symbols.shape[0]:  # pragma: no cover - guards the shipped file
        raise ValueError(f"{name}: expected {bounds[-1]} bases, found {symbols.shape[0]}")
    regions = np.repeat(
        np.arange(len(CHLOROPLAST_REGION_NAMES), dtype=np.int32), CHLOROPLAST_REGION_LENGTHS
    )
    return ChloroplastData(
        symbols=symbols,
        alphabet=CHLOROPLAST_ALPHABET,
        regions=regions,
        region_names=CHLOROPLAST_REGION_NAMES,
        region_bounds=bounds,
        accession=header.split()[0],
    )
