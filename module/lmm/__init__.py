"""Native linear mixed model estimator."""
