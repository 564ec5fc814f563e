"""The R code of the bridge lives in ``bridge/R/*.R``: every file parses, no R is left inside
Python strings, one ``lmerControl`` serves every fit, the fit records the control R used, and
the lme4 engine's Satterthwaite df equal plain lmerTest's under sum coding (issue #14).

The tests marked ``r`` need R (Rscript, lme4, lmerTest): skipped without it outside CI,
failed under CI=true.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from mixedbridge.bridge._worker import R_DIR, SAFE_FORMULA, r_files

from .conftest import ROOT

BRIDGE = ROOT / "bridge"
R_FILES = sorted((BRIDGE / "R").glob("*.R"))


def rscript(*args: str, timeout: float = 120) -> str:
    """Run Rscript (skipped without it outside CI) and return what it printed."""
    exe = shutil.which("Rscript")
    if exe is None:
        if os.environ.get("CI", "").strip().lower() == "true":
            pytest.fail("Rscript is required under CI=true")
        pytest.skip("Rscript is not installed")
    done = subprocess.run([exe, "--vanilla", *args], check=False, capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_worker_sources_every_r_file():
    assert R_FILES and [str(p) for p in R_FILES] == r_files()
    assert os.path.samefile(R_DIR, BRIDGE / "R")


@pytest.mark.r
@pytest.mark.parametrize("path", R_FILES, ids=lambda p: p.name)
def test_r_file_parses(path):
    out = rscript("-e", "invisible(parse(file = commandArgs(TRUE)[1])); cat('parsed')", str(path))
    assert out.strip() == "parsed"


def test_no_r_left_in_python():
    lines = [f"{p.name}:{i}: {line.strip()}" for p in sorted(BRIDGE.glob("*.py"))
             for i, line in enumerate(p.read_text().splitlines(), 1) if "<-" in line]
    assert not lines, lines


def test_one_lmer_control():
    code = {p.name: p.read_text() for p in sorted(BRIDGE.glob("*.py")) + R_FILES}
    places = [name for name, text in code.items() for _ in re.finditer(r"(?<!g)lmerControl\(", text)]
    assert places == ["fitting.R"]
    glmer_places = [name for name, text in code.items() for _ in re.finditer(r"glmerControl\(", text)]
    assert glmer_places == ["fitting.R"]  # one glmer control too (glmer_control())
    calls = [(name, m.group(0)) for name, text in code.items()
             for m in re.finditer(r"lme4::lmer\([^)]*\)", text)]
    assert calls and all("control = ctrl" in c for _, c in calls), calls
    assert not any("LMER_CONTROL" in text for text in code.values())


def test_r_and_python_refuse_the_same_formulas():
    helpers = (BRIDGE / "R" / "helpers.R").read_text()
    m = re.search(r'^safe_formula_pattern <- "(.*)"$', helpers, re.MULTILINE)
    assert m and m.group(1) == SAFE_FORMULA.pattern


def _r_values(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.strip().splitlines() if "=" in line)


@pytest.mark.r
def test_the_fit_records_the_control_r_used(with_r):
    from mixedbridge import datasets
    from mixedbridge.bridge.engine import Lme4Engine
    from mixedbridge.formula import parse_formula
    from mixedbridge.frame import model_frame
    from mixedbridge.problem import Problem

    # what lmer records with the bridge's lmer_control(), in plain R
    out = rscript("-e", """
        for (f in c("helpers.R", "fitting.R")) source(file.path("bridge", "R", f))
        d <- read.csv("module/datasets/sleepstudy.csv"); d$Subject <- factor(d$Subject)
        fm <- lme4::lmer(Reaction ~ Days + (Days | Subject), data = d, control = lmer_control())
        ctrl <- fm@optinfo$control
        cat(paste0(names(ctrl), "=", format(unlist(ctrl), digits = 17), collapse = "\\n"), "\\n")
        cat("optimizer=", fm@optinfo$optimizer, "\\n", sep = "")
    """)
    expected = _r_values(out)
    df, factors = datasets.load("sleepstudy")
    desc = parse_formula("Reaction ~ Days + (Days | Subject)")
    problem = Problem.build("lmm", desc, model_frame(df, desc, {}, factors), {"reml": True})
    fit = Lme4Engine().fit(problem)
    assert fit.optinfo["optimizer"] == expected.pop("optimizer").strip() == "nloptwrap"
    control = fit.optinfo["control"]
    assert set(control) == set(expected)
    for key, value in expected.items():
        assert control[key] == float(value), key
    assert control["xtol_abs"] == control["ftol_abs"] == 1e-8 and control["maxeval"] == 100000


@pytest.mark.r
@pytest.mark.slow
def test_satterthwaite_df_under_sum_coding_equal_lmertest(with_r):
    """Issue #14: the deviance function lmerTest differentiates is rebuilt from the stored fit's
    call, whose random-effects design must use the fit's (sum) contrasts."""
    from mixedbridge import analysis

    out = rscript("-e", """
        for (f in c("helpers.R", "fitting.R")) source(file.path("bridge", "R", f))
        options(contrasts = c("contr.sum", "contr.poly"))
        d <- read.csv("module/datasets/fhch2010.csv")
        for (v in c("id", "task", "stimulus")) d[[v]] <- factor(d[[v]])
        fm <- lmerTest::lmer(rt ~ task * stimulus + (1 + stimulus | id), data = d, control = lmer_control())
        cf <- summary(fm)$coefficients
        cat(paste0(rownames(cf), "=", format(cf[, "df"], digits = 17), ";",
                   format(abs(cf[, "t value"]), digits = 17), collapse = "\\n"), "\\n")
    """, timeout=300)
    expected = {k: [float(x) for x in v.split(";")] for k, v in _r_values(out).items()}
    spec = {"analysis": "lmm", "engine": "lme4", "data": {"dataset": "fhch2010"},
            "formula": "rt ~ task * stimulus + (1 + stimulus | id)", "options": {"contrasts": "sum"}}
    rows = {r["term"]: r for r in analysis.run(spec).table("parameters").rows}
    assert set(expected) <= set(rows)
    for term, (df, t) in expected.items():
        np.testing.assert_allclose(rows[term]["df"], df, rtol=1e-6, err_msg=term)
        np.testing.assert_allclose(abs(rows[term]["statistic"]), t, rtol=1e-6, err_msg=term)
    assert expected["(Intercept)"][0] == pytest.approx(42.98, abs=0.01)
