"""The native generalized linear mixed model: a sibling of :mod:`mixedbridge.lmm`, sharing its
random-effects terms (θ) and variance components.

``fit_glmm(X, names, y, reterms, *, family, link, weights, offset, nagq, dropped) -> Fit``
fits as lme4's ``glmer`` does (PIRLS for the conditional modes, Laplace or adaptive
Gauss-Hermite quadrature, two optimizer stages) and fills the engine-independent
:class:`~mixedbridge.fit.Fit` with ``analysis="glmm"``, ``family`` and ``link`` set;
``fit_glmer_nb`` estimates a negative binomial θ as ``glmer.nb`` does.
"""
from .api import fit_glmm, model_to_fit
from .family import VALID_LINKS, Family, make_family
from .model import GeneralizedLinearMixedModel
from .negbin import fit_glmer_nb

__all__ = ["fit_glmm", "fit_glmer_nb", "model_to_fit", "make_family", "Family", "VALID_LINKS",
           "GeneralizedLinearMixedModel"]
