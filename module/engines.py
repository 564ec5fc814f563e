"""Engines fill a :class:`~mixedbridge.fit.Fit` from a :class:`~mixedbridge.problem.Problem`."""
from __future__ import annotations

from typing import Protocol

from .errors import EngineError
from .fit import Fit, Inference
from .problem import Problem


class Engine(Protocol):
    """What every engine offers: a name and ``fit``."""

    name: str

    def fit(self, problem: Problem) -> Fit: ...


class NativeEngine:
    """The Python estimators: ``lm`` by QR, ``lmm`` by lme4's profiled criterion."""

    name = "native"

    def fit(self, problem: Problem) -> Fit:
        if problem.analysis == "lm":
            from .lm import fit_lm
            return fit_lm(problem)
        from .lmm import fit_lmm
        fit = fit_lmm(problem.fixed.X, problem.fixed.names, problem.y, problem.reterms,
                      reml=problem.reml, weights=problem.frame.weights, offset=problem.frame.offset)
        fit.dropped = list(problem.fixed.dropped)
        return fit


_ENGINES: dict[str, Engine] = {}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``native`` or ``lme4``), created once and reused."""
    if name not in _ENGINES:
        if name == "native":
            _ENGINES[name] = NativeEngine()
        elif name == "lme4":
            _ENGINES[name] = _lme4_engine()
        else:
            raise EngineError(f"unknown engine {name!r}; expected 'native', 'lme4' or 'both'")
    return _ENGINES[name]


def _lme4_engine() -> Engine:
    try:
        from .bridge.engine import Lme4Engine
    except ImportError as exc:
        raise EngineError(f"the lme4 engine cannot be loaded: {exc}") from None
    # fits in the process-wide R worker, which also answers inference and emmeans requests on
    # the models it keeps
    return Lme4Engine(keep_models=True)


def infer(name: str, problem: Problem, fit: Fit, settings, terms: list[str] | None = None) -> Inference:
    """The inference step of engine ``name`` (tests and intervals, see
    :mod:`mixedbridge.inference.options`): Python for ``native``; lmerTest, pbkrtest and lme4
    for ``lme4``."""
    if name == "native":
        from .inference.run import infer_native
        return infer_native(problem, fit, settings, terms)
    from .bridge.inference_r import RInference
    return RInference(get_engine(name)).infer(problem, fit, settings, terms)


def compare_models(name: str, entries: list[tuple[str, str, Problem, Fit]]) -> list[dict]:
    """Likelihood-ratio comparison of models fitted by engine ``name`` to the same rows
    (lme4's ``anova(m1, m2, ...)``; REML fits refitted by ML)."""
    if name == "native":
        from .inference.lrt import compare, ml_fit_native
        ml = [(n, f, ml_fit_native(pr) if (fit.analysis == "lmm" and fit.reml) else fit)
              for n, f, pr, fit in entries]
        return compare(ml)
    from .bridge.inference_r import RInference
    return RInference(get_engine(name)).compare([(n, f, fit) for n, f, _, fit in entries])
