"""The engine of a model prepared over Dask: the native estimator on the reduced blocks.

Its fits are native fits (``engine = "native"``, a :class:`~mixedbridge.fit.NativeBackend` holding
the block model), so tests and intervals run through the native inference. What needs the rows
is refused here, before it starts, with the reason in words.
"""
from __future__ import annotations

from ..engines import CompareEntry, get_engine
from ..errors import SpecError
from ..fit import Fit, Inference
from ..inference.options import Settings
from ..problem import Problem
from ..table import Table
from .blockmodel import fit_blocks
from .prepare import Prepared

NOT_OVER_DASK = "is not available over Dask yet"


def refuse_settings(s: Settings) -> None:
    """Refuse the tests and intervals whose computation needs the rows (or refits). Kenward-Roger
    (of a REML fit, the only kind it takes) needs only the cross-products."""
    if s.anova_method in ("lrt", "bootstrap"):
        raise SpecError(f"anova method {s.anova_method!r} refits the model on the rows and "
                        + NOT_OVER_DASK, "/options/anova/method")
    if s.confint_method not in (None, "wald"):
        raise SpecError(f"{s.confint_method} intervals refit the model on the rows and " + NOT_OVER_DASK
                        + "; use Wald intervals", "/options/confint/method")


class BlockEngine:
    """Fits the prepared block model once; tests through the native engine."""

    name = "native"

    def __init__(self, prepared: Prepared) -> None:
        self.prepared = prepared

    def fit(self, problem: Problem) -> Fit:
        return fit_blocks(self.prepared.model, self.prepared.dropped, problem.exact_optimum(True))

    def infer(self, problem: Problem, fit: Fit, settings: Settings, terms: list[str] | None = None) -> Inference:
        refuse_settings(settings)
        self._check_contrasts(settings)
        return get_engine("native").infer(problem, fit, settings, terms)

    def _check_contrasts(self, s: Settings) -> None:
        """The anova contrasts the prepared design can give exactly (see :mod:`.prepare`)."""
        if s.anova_method is None or self.prepared.gram_exact:
            return
        if s.anova_type in ("I", "II"):
            raise SpecError(f"type {s.anova_type} tests of a model with several fixed terms need XᵀX of "
                            "every row in their contrasts and " + NOT_OVER_DASK + "; use type III",
                            "/options/anova/type")
        if not self.prepared.sample_full_rank:
            raise SpecError("the type III contrasts are built on a sample of rows (the first rows of each "
                            "cell of the fixed-effects factors), whose design is rank deficient here; set "
                            "options.anova to false, or fit in memory", "/options/anova")

    def compare(self, entries: list[CompareEntry]) -> list[dict]:
        raise SpecError("model comparisons " + NOT_OVER_DASK, "/compare")

    def emmeans(self, problem: Problem, fit: Fit, request: dict,
                path: str = "/emmeans") -> tuple[list[Table], list[str]]:
        raise SpecError("estimated marginal means " + NOT_OVER_DASK + " (their reference grid reads the rows)",
                        path)

    def hold(self, fit: Fit) -> bool:
        """Always: a fit over Dask lives in this process, on its reduced blocks."""
        return True

    def release(self, fit: Fit) -> None:
        """Nothing to do: the fit goes with its last reference."""
