"""Generated names under which a model frame reaches formulaic and R, and the way back.

Column *i* of the model frame is ``v{i}`` followed by a suffix (``v0_`` for R, ``v0`` for
formulaic) and level *j* of a factor is ``L{j}``, so no column name, level label or formula text
of the user's is ever parsed or evaluated by either. Names coming back (R's coefficient names
``v1_L1:v2_``, grouping factors ``v3_:v2_``, levels ``L3:L1``, words of R's messages) are mapped
to the user's spelling (``timepost:Days``, ``cask:batch``, ``d:A``).
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

from .errors import EngineError

_LEVEL = re.compile(r"^L(\d+)$")


class SafeNames:
    """The generated names of a frame's columns and factor levels.

    Fields: ``data`` the frame; ``labels`` its column names as text; ``suffix`` after ``v{i}``;
    ``safe`` label → generated name; ``matrices`` each matrix-valued variable's label (the
    frame's ``attrs["matrices"]``, ``poly(Days, 2)``) → its columns, named after the columns;
    ``groups`` the grouping factors of numeric columns of the frame (label → factor), sent beside
    the numeric column under a token of their own (``group_safe``). Tokens are numbered frame
    columns first, then matrices, then grouping factors, so every frame column keeps its token.
    """

    def __init__(self, data: pd.DataFrame, suffix: str = "_",
                 groups: dict[str, pd.Series] | None = None) -> None:
        self.data = data
        self.suffix = suffix
        self.groups = dict(groups or {})
        self.matrices: dict[str, list[str]] = dict(data.attrs.get("matrices", {}))
        self.labels = [str(c) for c in data.columns]
        self._names = self.labels + list(self.matrices) + list(self.groups)
        n = len(self.labels) + len(self.matrices)
        self.safe = {lab: f"v{i}{suffix}" for i, lab in enumerate(self._names[:n])}
        self.group_safe = {lab: f"v{n + k}{suffix}" for k, lab in enumerate(self.groups)}
        s = re.escape(suffix)
        self._piece = re.compile(rf"^v(\d+){s}(?:L(\d+)|(\d+))?$")
        self._in_text = re.compile(rf"(?<![A-Za-z0-9._])v(\d+){s}(?:L(\d+)|(\d+))?(?![A-Za-z0-9._])")

    def token(self, label: str) -> str:
        """The generated name of column ``label``."""
        return self.safe[label]

    def group_token(self, label: str) -> str:
        """The generated name of grouping column ``label`` as a factor."""
        return self.group_safe.get(label, self.safe[label])

    def columns(self) -> list[tuple[str, pd.Series]]:
        """Every generated name with its column: the frame's, then the grouping factors."""
        out = [(self.safe[lab], self.data[lab]) for lab in self.labels]
        return out + [(self.group_safe[lab], col) for lab, col in self.groups.items()]

    def label(self, index: int | str) -> str:
        """The user's name of column number ``index``."""
        return self._names[int(index)]

    def categories(self, label: str) -> list[str]:
        """The level labels of factor ``label``, in level order."""
        col = self.groups.get(label, self.data[label])
        return [str(c) for c in col.cat.categories]

    def encoded(self) -> pd.DataFrame:
        """The frame under generated names: factors with levels ``L0``, ``L1`` …, other
        columns as floats."""
        return pd.DataFrame({token: _encode(col) for token, col in self.columns()})

    def coef(self, name: str) -> str:
        """A coefficient name in generated spelling (``v1_L1:v2_``) → the user's
        (``timepost:Days``)."""
        if name == "(Intercept)":
            return name
        out = []
        for piece in name.split(":"):
            m = self._piece.match(piece)
            if not m:
                raise EngineError(f"lme4 engine: unexpected column name {piece!r} from R")
            label = self.label(m.group(1))
            if m.group(2) is not None:
                out.append(label + self.categories(label)[int(m.group(2))])
            else:
                out.append(label + (m.group(3) or ""))
        return ":".join(out)

    def group(self, name: str) -> str:
        """Grouping factor ``v3_:v2_`` → ``cask:batch``."""
        return ":".join(self._group_columns(name))

    def _group_columns(self, name: str) -> list[str]:
        cols = []
        for piece in name.split(":"):
            m = self._piece.match(piece)
            if not m or m.group(2) is not None or m.group(3) is not None:
                raise EngineError(f"lme4 engine: unexpected grouping factor {name!r} from R")
            cols.append(self.label(m.group(1)))
        return cols

    def levels(self, group: str, levels: list[str]) -> list[str]:
        """Levels ``L3:L1`` of grouping factor ``v3_:v2_`` → ``d:A``."""
        cols = self._group_columns(group)
        cats = [self.categories(c) for c in cols]
        return [self._level(group, lev, cats) for lev in levels]

    @staticmethod
    def _level(group: str, lev: str, cats: list[list[str]]) -> str:
        parts = lev.split(":")
        if len(parts) != len(cats):
            raise EngineError(f"lme4 engine: unexpected level {lev!r} of {group!r} from R")
        labels = []
        for part, cat in zip(parts, cats):
            m = _LEVEL.match(part)
            if not m:
                raise EngineError(f"lme4 engine: unexpected level {lev!r} of {group!r} from R")
            labels.append(cat[int(m.group(1))])
        return ":".join(labels)

    def level_label(self, label: str, code: str) -> str:
        """The user's label of level ``code`` (``L2``) of factor ``label``."""
        m = _LEVEL.match(code)
        if not m:
            raise EngineError(f"lme4 engine: unexpected level {code!r} of {label!r} from R")
        return self.categories(label)[int(m.group(1))]

    def text(self, message: str) -> str:
        """Words (R's messages) with generated names replaced by the user's names."""
        def repl(m: re.Match) -> str:
            try:
                return self.coef(m.group(0))
            except (EngineError, IndexError):
                return m.group(0)
        return self._in_text.sub(repl, message)


def _encode(col: pd.Series) -> pd.Series | np.ndarray:
    if isinstance(col.dtype, pd.CategoricalDtype):
        codes = col.cat.codes.to_numpy()
        return pd.Categorical.from_codes(codes, categories=[f"L{j}" for j in range(len(col.cat.categories))])
    return col.to_numpy(dtype=float)
