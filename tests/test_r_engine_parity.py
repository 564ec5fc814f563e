"""The lme4 engine equals plain lmerTest / pbkrtest (issue #14).

Every model of the cross-check suite (``SUITE`` of tests/test_crosscheck.py) and every chapter
example (examples/*.json) runs through :func:`mixedbridge.run` with ``engine: "lme4"``, under
treatment and sum coding, with each df method (satterthwaite, kenward-roger, asymptotic; an
``lm`` has its residual df) and anova type (I, II, III). Beside it one Rscript process fits the
same rows (``results.outcome.problem.frame.data``, factor levels in their order) with plain
``lmerTest::lmer`` (``stats::lm`` for an lm) and reads ``summary`` and ``anova``. That script is
written from lmerTest's, pbkrtest's and lme4's documentation and sources none of the bridge's R
files, so a bug there cannot hide. The engine's coefficient tests (estimate, SE, t, df, p) and
anova rows (NumDF, DenDF, F, p, sums of squares) must equal R's within 1e-6 relative.

Not every combination runs, and the test ids say which:

* ``kr-skipped-large``: Kenward-Roger on the models above :data:`KR_MAX_ROWS` rows (the two
  fhch2010 models, 6,480 and 12,960 rows): pbkrtest takes minutes on them.
* ``kr-refused-ml``: Kenward-Roger on an ML fit; the spec refuses it (pbkrtest's adjustment is
  for REML fits), and the test checks that refusal instead.
* an lm's type II and III tables are checked against ``car::Anova`` (car is installed by bridge/setup_r.sh).
"""
from __future__ import annotations

import json
import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest

import mixedbridge
from mixedbridge.errors import SpecError
from mixedbridge.results import Results

from .conftest import EXAMPLES
from .test_crosscheck import SUITE
from .test_r_sources import rscript

pytestmark = [pytest.mark.r, pytest.mark.slow]

#: Relative tolerance on every compared number; p-values below TINY_P compare as "both tiny".
RTOL = 1e-6
TINY_P = 1e-300
#: Kenward-Roger is skipped above this many rows (pbkrtest's adjusted covariance is slow there).
KR_MAX_ROWS = 3000
#: The models over KR_MAX_ROWS (checked against the prepared rows by a test below).
LARGE = {"fhch2010 crossed (12,960 rows)", "fhch2010 factor slope"}
CODINGS = ("treatment", "sum")
#: The lme4 engine's optimizer settings, which its fits record in optinfo["control"]; the plain
#: R fits use the same (lme4's defaults stop slightly short of the optimum on some models).
NLOPT_CONTROL = {"xtol_abs": 1e-8, "ftol_abs": 1e-8, "maxeval": 100000}

MODELS: dict[str, dict] = {p.stem: mixedbridge.spec.read_spec(str(p))[0]
                           for p in sorted(EXAMPLES.glob("*.json"))} | SUITE
#: Columns compared: engine column -> R column, per table.
COEF_COLUMNS = {"estimate": "Estimate", "std.error": "Std. Error", "statistic": "t value",
                "df": "df", "p.value": "p"}
ANOVA_COLUMNS = {"NumDF": "NumDF", "DenDF": "DenDF", "statistic": "F value", "p.value": "Pr(>F)",
                 "sumsq": "Sum Sq", "meansq": "Mean Sq"}


@dataclass(frozen=True)
class Check:
    """One engine run: a model under a coding, with a df method and an anova type (or none)."""

    model: str
    coding: str
    df_method: str
    anova_type: str | None

    @property
    def spec(self) -> dict:
        base = MODELS[self.model]
        options = {**base.get("options", {}), "contrasts": self.coding,
                   "anova": False if self.anova_type is None else {"type": self.anova_type}}
        if self.df_method != "residual":
            options["df_method"] = self.df_method
        return {**base, "engine": "lme4", "options": options}

    @property
    def case(self) -> tuple[str, str]:
        return self.model, self.coding


def _is_ml(model: str) -> bool:
    return MODELS[model].get("options", {}).get("reml", True) is False


def _checks(model: str, coding: str) -> list[tuple[Check, str]]:
    """The checks of a model under a coding, each with its test id."""
    lm = MODELS[model]["analysis"] == "lm"
    methods = ["residual"] if lm else ["satterthwaite", "kenward-roger"]
    out = [(Check(model, coding, "asymptotic", None), f"{model}-{coding}-asymptotic")]
    for method in methods:
        for anova_type in ("I", "II", "III"):
            label = f"{model}-{coding}-{method}-{anova_type}"
            if method == "kenward-roger" and model in LARGE:
                label += "-kr-skipped-large"
            elif method == "kenward-roger" and _is_ml(model):
                label += "-kr-refused-ml"
            out.append((Check(model, coding, method, anova_type), label))
    return out


CHECKS = [c for m in MODELS for coding in CODINGS for c in _checks(m, coding)]


def _kr_skipped(check: Check) -> bool:
    return check.df_method == "kenward-roger" and check.model in LARGE


def _r_string(text: str) -> str:
    """An R string literal (JSON's escapes are R's)."""
    return json.dumps(text)


def _r_vector(items: list[str]) -> str:
    return "c(" + ", ".join(_r_string(s) for s in items) + ")"


R_PRELUDE = """
suppressPackageStartupMessages(library(lmerTest))
ctrl <- lme4::lmerControl(optimizer = "nloptwrap",
                          optCtrl = list(xtol_abs = {xtol_abs}, ftol_abs = {ftol_abs}, maxeval = {maxeval}))
out <- file({out}, "w")
emit <- function(case, table, m) {{
  m <- as.data.frame(m, check.names = FALSE)
  writeLines(paste(case, table, ".rows", ".rows", nrow(m), sep = "\\t"), out)
  for (r in seq_len(nrow(m))) for (cn in names(m)) {{
    writeLines(paste(case, table, rownames(m)[r], cn, sprintf("%.17g", as.numeric(m[r, cn])),
                     sep = "\\t"), out)
  }}
}}
# Wald z tests: lme4's t value with normal p-values.
z_table <- function(cf) cbind(cf[, c("Estimate", "Std. Error", "t value"), drop = FALSE],
                              df = NA, p = 2 * pnorm(-abs(cf[, "t value"])))
has_car <- requireNamespace("car", quietly = TRUE)
writeLines(paste("all", "car", ".rows", ".rows", as.integer(has_car), sep = "\\t"), out)
"""

# An lmer fit and its tests, as lmerTest's and pbkrtest's documentation give them.
R_LMM = """
fm <- lmerTest::lmer({formula}, data = d, REML = {reml}, control = ctrl)
emit({case}, "coef/asymptotic", z_table(summary(fm, ddf = "lme4")$coefficients))
for (ddf in {ddfs}) {{
  cf <- summary(fm, ddf = ddf)$coefficients
  colnames(cf)[colnames(cf) == "Pr(>|t|)"] <- "p"
  emit({case}, paste0("coef/", ddf), cf)
  for (type in c("I", "II", "III")) emit({case}, paste0("anova/", ddf, "/", type),
                                         anova(fm, type = type, ddf = ddf))
}}
"""

# An lm: summary() with residual df; anova() (sequential, type I); car::Anova for types II and
# III. lmerTest's type III hypotheses (the engine's) are SAS's, whatever the coding: for these
# full-rank factorial designs they are car's type III tests under sum coding, so the type III
# reference is the sum-coded refit.
R_LM = """
fm <- lm({formula}, data = d)
cf <- summary(fm)$coefficients
emit({case}, "coef/asymptotic", z_table(cf))
emit({case}, "coef/residual", cbind(cf[, 1:3, drop = FALSE], df = df.residual(fm), p = cf[, 4]))
lm_anova <- function(a) {{
  a <- a[rownames(a) != "Residuals" & rownames(a) != "(Intercept)", , drop = FALSE]
  data.frame(NumDF = a[["Df"]], DenDF = df.residual(fm), `F value` = a[["F value"]],
             `Pr(>F)` = a[["Pr(>F)"]], `Sum Sq` = a[["Sum Sq"]], `Mean Sq` = a[["Sum Sq"]] / a[["Df"]],
             row.names = rownames(a), check.names = FALSE)
}}
emit({case}, "anova/residual/I", lm_anova(anova(fm)))
if (has_car) {{
  emit({case}, "anova/residual/II", lm_anova(car::Anova(fm, type = 2)))
  sum_coded <- lapply(Filter(is.factor, d), function(x) "contr.sum")
  fm3 <- lm({formula}, data = d, contrasts = sum_coded)
  emit({case}, "anova/residual/III", lm_anova(car::Anova(fm3, type = 3)))
}}
"""


def _r_data(frame: pd.DataFrame, csv: Path) -> str:
    """Write the rows to csv; the R lines that read them back (no text read as NA: the rows have
    no missing values), factors with their level order."""
    frame.to_csv(csv, index=False)
    factors = [c for c in frame.columns if isinstance(frame[c].dtype, pd.CategoricalDtype)]
    classes = ", ".join(f"{_r_string(c)} = \"character\"" for c in factors)
    read = f"read.csv({_r_string(str(csv))}, check.names = FALSE, na.strings = character(0)"
    lines = [f"d <- {read}, colClasses = c({classes}))" if factors else f"d <- {read})"]
    for c in factors:
        levels = [str(v) for v in frame[c].cat.categories]
        lines.append(f"d[[{_r_string(c)}]] <- factor(d[[{_r_string(c)}]], levels = {_r_vector(levels)})")
    return "\n".join(lines)


def _r_case(key: str, check: Check, frame: pd.DataFrame, csv: Path) -> str:
    """The R code of one model under one coding (its results tagged ``key``)."""
    contrasts = "contr.sum" if check.coding == "sum" else "contr.treatment"
    spec = MODELS[check.model]
    code = [f'options(contrasts = c("{contrasts}", "contr.poly"))', _r_data(frame, csv)]
    if spec["analysis"] == "lm":
        code.append(R_LM.format(formula=spec["formula"], case=_r_string(key)))
    else:
        ddfs = ["Satterthwaite"] if check.model in LARGE or _is_ml(check.model) else ["Satterthwaite", "Kenward-Roger"]
        code.append(R_LMM.format(formula=spec["formula"], case=_r_string(key), ddfs=_r_vector(ddfs),
                                 reml="FALSE" if _is_ml(check.model) else "TRUE"))
    return "\n".join(code)


Tables = dict[tuple[str, str], dict[str, dict[str, float]]]


def _parse(lines: list[str]) -> tuple[Tables, dict[tuple[str, str], int]]:
    """R's output lines (case, table, row, column, value): the tables as {(case, table): {row:
    {column: value}}} and each table's row count."""
    tables: Tables = {}
    counts: dict[tuple[str, str], int] = {}
    for line in lines:
        case, table, row, col, value = line.split("\t")
        if row == ".rows":
            counts[(case, table)] = int(value)
            tables.setdefault((case, table), {})
        else:
            tables[(case, table)].setdefault(row, {})[col] = math.nan if value in ("NA", "NaN") else float(value)
    return tables, counts


@dataclass
class Reference:
    """R's tables by case key and table name, the case keys of (model, coding), the engine's
    first run of each case, and whether R has car."""

    tables: Tables
    keys: dict[tuple[str, str], str]
    first: dict[tuple[str, str], Results]
    has_car: bool

    def table(self, check: Check, name: str) -> dict[str, dict[str, float]]:
        key = (self.keys[check.case], name)
        assert key in self.tables, f"plain R gave no {name!r} table for {check.case}"
        return self.tables[key]

    def frame(self, check: Check) -> pd.DataFrame:
        outcome = self.first[check.case].outcome
        assert outcome is not None
        return outcome.problem.frame.data


@pytest.fixture(scope="module")
def reference(with_r) -> Reference:
    """Each model under each coding once through the engine (its asymptotic check, without
    anova) for the prepared rows, then all of them in one plain R process."""
    first: dict[tuple[str, str], Results] = {}
    keys: dict[tuple[str, str], str] = {}
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out.tsv"
        code = [R_PRELUDE.format(out=_r_string(str(out)), **NLOPT_CONTROL)]
        for check in (c for c, _ in CHECKS if c.anova_type is None):
            res = mixedbridge.run(check.spec)
            assert res.outcome is not None
            first[check.case] = res
            key = keys[check.case] = f"c{len(keys)}"
            code.append(_r_case(key, check, res.outcome.problem.frame.data, Path(tmp) / f"{key}.csv"))
        script = Path(tmp) / "parity.R"
        script.write_text("\n".join([*code, "close(out)"]), encoding="utf-8")
        rscript(str(script), timeout=600)
        tables, counts = _parse(out.read_text(encoding="utf-8").splitlines())
    return Reference(tables, keys, first, has_car=counts[("all", "car")] == 1)


def _differs(got: float | None, want: float, column: str) -> bool:
    """Whether an engine value differs from R's beyond RTOL (None and NA agree; p-values below
    TINY_P agree with each other)."""
    if got is None or math.isnan(got):
        return not math.isnan(want)
    if column == "p.value" and got < TINY_P and want < TINY_P:
        return False
    return not math.isclose(got, want, rel_tol=RTOL)


def _compare(what: str, got: dict[str, dict], want: dict[str, dict[str, float]],
             columns: dict[str, str]) -> list[str]:
    """The differences between the engine's rows and R's (by row name), in words."""
    if set(got) != set(want):
        return [f"{what}: engine rows {sorted(got)} != R rows {sorted(want)}"]
    return [f"{what} {row} {col}: engine {got[row][col]!r}, R {want[row][rcol]!r}"
            for row in want for col, rcol in columns.items()
            if _differs(got[row][col], want[row][rcol], col)]


def _r_method(method: str) -> str:
    return {"satterthwaite": "Satterthwaite", "kenward-roger": "Kenward-Roger"}.get(method, method)


def _engine_rows(res: Results, name: str) -> dict[str, dict]:
    if name not in {t.name for t in res.tables}:
        return {}
    rows = res.table(name).rows
    return {r["term"]: r for r in rows if name != "parameters" or r.get("effect", "fixed") == "fixed"}


def _param(check: Check, label: str) -> object:
    marks = []
    if _kr_skipped(check):
        marks.append(pytest.mark.skip(reason=f"Kenward-Roger is not checked above {KR_MAX_ROWS} rows: "
                                             "pbkrtest takes minutes on fhch2010"))
    return pytest.param(check, id=label, marks=marks)


@pytest.mark.parametrize("check", [_param(c, label) for c, label in CHECKS])
def test_engine_equals_plain_lmertest(reference, check):
    if check.df_method == "kenward-roger" and _is_ml(check.model):
        with pytest.raises(SpecError, match="Kenward-Roger needs a REML fit"):
            mixedbridge.run(check.spec)
        return
    res = reference.first[check.case] if check.anova_type is None else mixedbridge.run(check.spec)
    assert res.outcome is not None
    pd.testing.assert_frame_equal(res.outcome.problem.frame.data, reference.frame(check))
    diffs = _compare("coef", _engine_rows(res, "parameters"),
                     reference.table(check, f"coef/{_r_method(check.df_method)}"), COEF_COLUMNS)
    if check.anova_type is not None:
        method = "residual" if check.df_method == "residual" else _r_method(check.df_method)
        if method == "residual" and check.anova_type != "I" and not reference.has_car:
            pytest.fail("R's car is not installed, so an lm's type II/III tables have no plain-R reference "
                        "(bridge/setup_r.sh installs r-cran-car)")
        diffs += _compare(f"anova {check.anova_type}", _engine_rows(res, "anova"),
                          reference.table(check, f"anova/{method}/{check.anova_type}"), ANOVA_COLUMNS)
    assert not diffs, "\n".join(diffs[:20])


def test_the_large_models_are_those_over_the_kenward_roger_limit(reference):
    nrows = {m: len(reference.frame(Check(m, "treatment", "asymptotic", None))) for m in MODELS}
    assert LARGE == {m for m, n in nrows.items() if n > KR_MAX_ROWS}, nrows


def test_the_plain_r_fits_use_the_engines_optimizer_control(reference):
    for (model, coding), res in reference.first.items():
        if MODELS[model]["analysis"] == "lmm":
            control = res.fit.optinfo["control"]
            assert {k: control[k] for k in NLOPT_CONTROL} == NLOPT_CONTROL, (model, coding)
            assert res.fit.optinfo["optimizer"] == "nloptwrap"


def test_every_model_and_coding_has_a_plain_r_reference(reference):
    assert len(reference.keys) == 2 * len(MODELS) >= 34
    cases = {k for k, _ in reference.tables}
    assert cases == {*reference.keys.values(), "all"}
