"""Engines: what fits a prepared :class:`~mixedbridge.problem.Problem` and answers the requests made
on its fit (tests and intervals, model comparison, estimated marginal means).

Every consumer (the analysis runner, plots, the JASP layer) talks to an engine through
:class:`Engine` and finds it in one registry (:func:`get_engine`); only the engine that made a
fit reads the fit's backend. A new engine is a class with these four methods, registered in
:data:`_FACTORIES`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from .errors import EngineError
from .fit import Fit, Inference, NativeBackend
from .problem import Problem
from .table import Table

if TYPE_CHECKING:
    from .inference.options import Settings

#: (name, formula, prepared problem, fit) of one model of a likelihood-ratio comparison.
CompareEntry = tuple[str, str, Problem, Fit]


class Engine(Protocol):
    """What every engine offers.

    ``fit`` fills a :class:`Fit`; ``infer`` computes the tests and intervals of
    :mod:`mixedbridge.inference.options` on that fit; ``compare`` is lme4's ``anova(m1, m2, ...)``
    of models fitted to the same rows; ``emmeans`` gives the tables of one ``emmeans`` request
    (``schemas/emmeans.schema.json``) with notes.
    """

    name: str

    def fit(self, problem: Problem) -> Fit: ...

    def infer(self, problem: Problem, fit: Fit, settings: Settings,
              terms: list[str] | None = None) -> Inference: ...

    def compare(self, entries: list[CompareEntry]) -> list[dict]: ...

    def emmeans(self, problem: Problem, fit: Fit, request: dict,
                path: str = "/emmeans") -> tuple[list[Table], list[str]]: ...

    def hold(self, fit: Fit) -> bool: ...

    def release(self, fit: Fit) -> None: ...


class NativeEngine:
    """The Python estimators: ``lm`` by QR, ``lmm`` by lme4's profiled criterion, ``glmm`` as
    glmer (PIRLS, Laplace or adaptive Gauss-Hermite quadrature); inference and
    emmeans by :mod:`mixedbridge.inference` and :mod:`mixedbridge.emmeans`."""

    name = "native"

    def fit(self, problem: Problem) -> Fit:
        if problem.analysis == "lm":
            from .ols import fit_lm
            return fit_lm(problem)
        if problem.analysis == "glmm":
            return _fit_glmm(problem)
        from .lmm import fit_lmm
        return fit_lmm(problem.fixed.X, problem.fixed.names, problem.y, problem.reterms,
                       reml=problem.reml, weights=problem.frame.weights, offset=problem.frame.offset,
                       dropped=problem.fixed.dropped, exact=problem.exact_optimum(False))

    def infer(self, problem: Problem, fit: Fit, settings: Settings,
              terms: list[str] | None = None) -> Inference:
        from .inference.run import infer_native
        return infer_native(problem, fit, settings, terms)

    def compare(self, entries: list[CompareEntry]) -> list[dict]:
        from .inference.lrt import compare, ml_fit_native
        ml = [(n, f, ml_fit_native(pr) if (fit.analysis == "lmm" and fit.reml) else fit)
              for n, f, pr, fit in entries]
        return compare(ml)

    def emmeans(self, problem: Problem, fit: Fit, request: dict,
                path: str = "/emmeans") -> tuple[list[Table], list[str]]:
        from .emmeans import emmeans_tables
        return emmeans_tables(problem, fit, request, path=path)

    def hold(self, fit: Fit) -> bool:
        """Always: the fit lives in this process; a linear mixed model is put back at θ̂ (a
        request may have left it elsewhere; a GLMM's inference works on refits and never moves it)."""
        backend = fit.backend
        if fit.analysis == "lmm" and isinstance(backend, NativeBackend) and backend.model is not None \
                and fit.theta is not None:
            backend.model.set_theta(fit.theta)
        return True

    def release(self, fit: Fit) -> None:
        """Nothing to do: the fit goes with its last reference."""


def _fit_glmm(problem: Problem) -> Fit:
    """A glmm by the native estimator (:mod:`mixedbridge.glmm`): y on the family's scale, the
    binomial trials (times any prior weights) as weights."""
    from .glmm import fit_glmm

    if problem.family == "negative.binomial":  # θ estimated, as glmer.nb
        from .glmm.negbin import fit_glmer_nb
        return fit_glmer_nb(problem.fixed.X, problem.fixed.names, problem.y, problem.reterms, link=problem.link,
                            weights=problem.frame.weights, offset=problem.frame.offset, nagq=problem.nagq,
                            dropped=problem.fixed.dropped)
    return fit_glmm(problem.fixed.X, problem.fixed.names, problem.y, problem.reterms, family=str(problem.family),
                    link=problem.link, weights=problem.frame.weights, offset=problem.frame.offset,
                    nagq=problem.nagq, dropped=problem.fixed.dropped)


def native_model(fit: Fit, what: str = "this computation"):
    """The native model object of a native engine's fit (its backend); EngineError otherwise."""
    backend = fit.backend
    if not isinstance(backend, NativeBackend) or backend.model is None:
        raise EngineError(f"{what} needs a mixed model fitted by the native engine "
                          f"(this fit was made by the {fit.engine!r} engine)")
    return backend.model


def _lme4_engine() -> Engine:
    try:
        from .bridge.engine import Lme4Engine
    except ImportError as exc:
        raise EngineError(f"the lme4 engine cannot be loaded: {exc}") from None
    # fits in the process-wide R worker, which keeps the models for the requests made on them
    return Lme4Engine(keep_models=True)


#: Engine name → how to make it (once; the instance is reused).
_FACTORIES: dict[str, Callable[[], Engine]] = {"native": NativeEngine, "lme4": _lme4_engine}
#: The spec's ``engine`` values → the engines that run, the first one's tables leading.
_SPEC_ENGINES: dict[str, list[str]] = {"native": ["native"], "lme4": ["lme4"], "both": ["native", "lme4"]}
_ENGINES: dict[str, Engine] = {}


def get_engine(name: str) -> Engine:
    """The engine called ``name`` (``native`` or ``lme4``), created once and reused."""
    if name not in _ENGINES:
        if name not in _FACTORIES:
            raise EngineError(f"unknown engine {name!r}; expected one of "
                              + ", ".join(repr(n) for n in _SPEC_ENGINES))
        _ENGINES[name] = _FACTORIES[name]()
    return _ENGINES[name]


def spec_engines() -> list[str]:
    """The values a spec's ``engine`` may take."""
    return list(_SPEC_ENGINES)


def engines_for(spec_engine: str) -> list[Engine]:
    """The engines a spec's ``engine`` value runs (``both``: native first, then lme4)."""
    if spec_engine not in _SPEC_ENGINES:
        raise EngineError(f"unknown engine {spec_engine!r}; expected one of "
                          + ", ".join(repr(n) for n in _SPEC_ENGINES), "/engine")
    return [get_engine(n) for n in _SPEC_ENGINES[spec_engine]]


def engine_of(fit: Fit) -> Engine:
    """The engine that made ``fit`` (for requests on it: tests, emmeans)."""
    return get_engine(fit.engine)
