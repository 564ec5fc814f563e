"""Inference for fitted models: denominator df (Satterthwaite, Kenward-Roger), F tests per term
(type I/II/III), likelihood-ratio tests, model comparison and intervals (Wald, profile,
parametric bootstrap). One concept per module; :func:`.run.infer` ties them together."""
