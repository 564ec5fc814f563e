"""Regenerate docs/gallery: every plot for the chapter's examples, as PNG, with a README.

Run from the repository root:  .venv/bin/python docs/make_gallery.py

The images are deterministic: running it twice leaves the files byte-identical.
"""
from __future__ import annotations

import base64
import sys
from pathlib import Path

import mixedbridge
from mixedbridge import spec as specmod
from mixedbridge.analysis import prepare
from mixedbridge.plots import make_plots

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "gallery"

EMMEANS = {"type": "emmeans", "horizontal": "time", "ci_level": 0.95}
CHECKS = [{"type": "residuals"}, {"type": "qq"}]
RANEF = [{"type": "ranef_qq"}, {"type": "caterpillar"}]

#: Example spec → (caption, plot requests).
GALLERY = {
    "table-12-1-tenthirty-lm": ("Ordinary regression of leg-press load on time × group (Table 12.1)", CHECKS + [
        {**EMMEANS, "lines": "group", "background": "jitter"},
    ]),
    "table-12-2-tenthirty-lmm": ("Random intercept per participant (Table 12.2)", CHECKS + RANEF + [
        {**EMMEANS, "lines": "group", "background": "jitter"},
        {**EMMEANS, "lines": "group", "background": "violin", "background_by": "participant"},
        {**EMMEANS, "panels": "group", "background": "boxplot", "ci_type": "mean"},
    ]),
    "table-12-3-strengthvolume-lmm": ("Isokinetic strength by time × sets (Table 12.3; Figure 12.2)", CHECKS + RANEF + [
        {**EMMEANS, "lines": "sets", "background": "jitter", "background_by": "participant"},
    ]),
    "table-12-4-sleepstudy-lmm": ("Sleep deprivation, random intercepts and slopes (Table 12.4; Figures 12.3-12.6)",
                                  CHECKS + RANEF + [
        {"type": "data_lines", "covariate": "Days", "random": "none"},
        {"type": "data_lines", "covariate": "Days", "random": "intercepts"},
        {"type": "data_lines", "covariate": "Days", "random": "slopes"},
        {"type": "cluster_fits", "covariate": "Days"},
        {"type": "shrinkage", "covariate": "Days"},
    ]),
}


def _describe(request: dict) -> str:
    rest = ", ".join(f"{k}={v}" for k, v in request.items() if k != "type")
    return f"`{request['type']}`" + (f" ({rest})" if rest else "")


def build_example(stem: str, caption: str, requests: list[dict]) -> list[str]:
    """Fit one example, write its plots, and return its README section's lines."""
    path = ROOT / "examples" / f"{stem}.json"
    raw, base = specmod.read_spec(path)
    problem = prepare(specmod.validate(raw), base)
    fit = mixedbridge.run(path).fits["native"]
    lines = [f"## {stem}", "", f"{caption}: `{raw['formula']}`", ""]
    for request in requests:
        plots, notes = make_plots(problem, fit, [request], formats=("png",))
        for plot in plots:
            name = f"{stem}-{plot['name']}.png"
            (OUT / name).write_bytes(base64.b64decode(plot["png"]))
            size = f"{plot['width']}×{plot['height']} px"
            lines += [f"### {plot['title']}", "", f"Request: {_describe(request)}; {size}.",
                      "", f"![{plot['title']}]({name})", ""]
        lines += [f"> Note: {n}" for n in notes] + ([""] if notes else [])
    return lines


def main() -> int:
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.png"):
        old.unlink()
    lines = ["# Plot gallery", "",
             "Every plot `mixedbridge.plots.make_plots` draws, for the chapter's examples (native engine).",
             "Regenerate with `.venv/bin/python docs/make_gallery.py`; the files are byte-identical on rerun.", ""]
    for stem, (caption, requests) in GALLERY.items():
        lines += build_example(stem, caption, requests)
        print(f"{stem}: done", file=sys.stderr)
    (OUT / "README.md").write_text("\n".join(lines).rstrip() + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
