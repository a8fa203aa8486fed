"""A common record for "both sides computed, error reported" checks.

Every identity or approximation the toolkit claims (theory.md section 5) is computed by a
function returning :class:`Check`; ``switchssm verify`` prints them as a table.
"""

from __future__ import annotations

from typing import NamedTuple


class Check(NamedTuple):
    """One verified statement.

    Attributes:
        name: short identifier, e.g. ``"gated/minGRU-positive"``.
        statement: the claim in words.
        kind: ``"exact"`` (must hold to floating-point precision) or ``"approximate"``
            (a gap that is measured and reported).
        metric: what ``error`` measures, e.g. ``"max abs error"`` or ``"mean KL (nats)"``.
        error: the measured value.
        tolerance: the bound an exact identity must meet (``None`` for approximations).
    """

    name: str
    statement: str
    kind: str
    metric: str
    error: float
    tolerance: float | None = None

    @property
    def passed(self) -> bool:
        """Exact checks pass when ``error <= tolerance``; approximations always report."""
        if self.kind == "exact":
            return bool(self.error <= (self.tolerance if self.tolerance is not None else 1e-8))
        return bool(self.error == self.error)  # not NaN

    def as_dict(self) -> dict:
        d = self._asdict()
        d["passed"] = self.passed
        return d
