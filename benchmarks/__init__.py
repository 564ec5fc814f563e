"""Rerunnable speed benchmarks: native estimator vs lme4 (through the bridge) and Python peers.

``make bench`` (or ``.venv/bin/python -m benchmarks.run``) regenerates ``docs/benchmarks.md`` and
``benchmarks/results/latest.json``; ``--quick`` runs tiny inputs as a smoke test.
"""
