"""R engine: lme4, lmerTest, pbkrtest and emmeans through rpy2.

``engine.Lme4Engine`` fits a prepared :class:`~mixedbridge.problem.Problem` in R and fills the
engine-independent :class:`~mixedbridge.fit.Fit`; ``inference_r`` and ``emmeans_r`` run
lmerTest/pbkrtest/lme4 tests and emmeans on the models it keeps; ``session`` runs R for all of
them in one long-lived child process (``_worker.py`` with the operations of ``_ops_infer.py``
and ``_ops_emmeans.py``), started on first use; ``doctor.doctor()`` reports what is installed;
``setup_r.sh`` installs R and the R packages on Debian. Importing this package never loads R.
"""
