"""lme4 formula syntax parsed into one model description that both engines consume.

The parser is ours: a tokenizer and a recursive-descent parser for R's formula operators
(``~ + - * / : ^``, parentheses, the random-effects bars ``|`` and ``||``) and a small whitelist of
transformations (``log``, ``exp``, ``sqrt``, ``abs``, ``I``...). Nothing in a formula is ever
evaluated as code: the description is data, and each engine rebuilds what it needs from it.
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from .errors import FormulaError

#: Functions allowed inside a formula (evaluated from the syntax tree by :mod:`.frame`).
FUNCTIONS = {"log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "sin", "cos", "tan", "I", "scale",
             "factor", "as.factor", "as.numeric", "relevel", "cut", "c", "poly", "offset", "ns", "bs", "cbind"}
#: Functions that make a factor of their first argument.
FACTOR_FUNCTIONS = {"factor", "as.factor", "relevel", "cut"}
#: Functions whose value is a matrix: one model-frame column per matrix column (R's names).
MATRIX_FUNCTIONS = {"poly", "ns", "bs"}
#: Package-qualified names allowed (``stats::relevel``): the package each function is in.
PACKAGES = {"base": FUNCTIONS - {"relevel", "poly", "offset", "ns", "bs"}, "stats": {"relevel", "poly", "offset"},
            "splines": {"ns", "bs"}}
#: Names that are constants when the data have no column of that name.
CONSTANTS = {"pi": math.pi, "TRUE": 1.0, "FALSE": 0.0, "T": 1.0, "F": 0.0}
#: Operators allowed in arithmetic inside a function call.
ARITH = {"+", "-", "*", "/", "^"}
#: Comparison and logical operators allowed inside a function call (``I(age > 10)``).
LOGICAL = {">", "<", ">=", "<=", "==", "!=", "&", "|", "%in%"}
#: Deepest nesting of parentheses, function calls and unary minus signs a formula may have.
MAX_NESTING = 50
#: Most terms a formula may expand to (fixed and random-effects terms together, and each
#: expansion of ``*``, ``/`` and ``^`` on the way): a 10-way full factorial has 1,023.
MAX_TERMS = 1024
#: Most variables one interaction term (or one interaction of grouping factors) may have.
MAX_INTERACTION = 50
#: Largest power ``(a + b)^k`` R's ``terms.formula`` accepts (its integer range); a power above the
#: number of terms it applies to means all their interactions.
MAX_POWER = 2**31 - 1

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?)"
    r"|(?P<name>[^\W\d_][\w.]*|\.(?![\d])[\w.]*)"
    r"|`(?P<quoted>(?:[^`\\]|\\[\s\S])*)`"
    r"|\"(?P<str>(?:[^\"\\]|\\[\s\S])*)\"|'(?P<str1>(?:[^'\\]|\\[\s\S])*)'"
    r"|(?P<op>\|\||::|%in%|>=|<=|==|!=|[~+\-*/:^|(),<>&!=]))"
)
_ESCAPED = re.compile(r"\\([\s\S])")
_SYNTACTIC = re.compile(r"(?:[^\W\d_]|\.(?!\d))[\w.]*")


@dataclass(frozen=True)
class Node:
    """A formula syntax-tree node: ``kind`` in name/num/call/bin/neg/paren/bar, with children."""

    kind: str
    value: object = None
    children: tuple = ()


def walk(node: Node) -> Iterator[Node]:
    """Every node of a tree, parents before children, left to right (no recursion: a sum of
    thousands of terms is a tree thousands of levels deep)."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children))


def left_spine(node: Node, ops: frozenset[str] | set[str]) -> tuple[Node, list[tuple[str, Node]]]:
    """A chain ``a op b op c ...`` as R's parser nests it (to the left): its first operand and
    the ``(op, operand)`` pairs that follow, in order."""
    rest: list[tuple[str, Node]] = []
    while node.kind == "bin" and node.value in ops:
        rest.append((str(node.value), node.children[1]))
        node = node.children[0]
    return node, rest[::-1]


@dataclass(frozen=True)
class Variable:
    """A model variable: a data column or a whitelisted transformation of columns.

    ``label`` is R's deparsed spelling (``Days``, ``log(x + 1)``, ``I(Days^2)``); ``expr`` the
    syntax tree; ``columns`` the data columns it reads.
    """

    label: str
    expr: Node
    columns: tuple[str, ...]

    @property
    def is_column(self) -> bool:
        return self.expr.kind == "name"

    @cached_property
    def function(self) -> str | None:
        """The function called (without its package), or None for a plain column (found once:
        a prepare asks a variable a dozen times)."""
        return str(self.expr.value).rpartition("::")[2] if self.expr.kind == "call" else None

    @cached_property
    def is_factor_call(self) -> bool:
        """Whether the variable is a factor: ``factor(f)``, ``relevel(f, ref = "B")``,
        ``cut(x, 3)``, or a logical value ``I(age > 10)`` (a factor FALSE/TRUE, as R's
        ``model.matrix`` codes it)."""
        return self.function in FACTOR_FUNCTIONS or self.is_logical

    @property
    def is_counts(self) -> bool:
        """Whether the variable is ``cbind(successes, failures)``: a binomial response as counts."""
        return self.function == "cbind"

    @property
    def is_matrix(self) -> bool:
        """Whether the variable is matrix-valued (``poly(x, 2)``): several columns, one term."""
        return self.function in MATRIX_FUNCTIONS

    @property
    def is_logical(self) -> bool:
        """Whether the variable is ``I(...)`` of a comparison or logical operation."""
        if self.function != "I":
            return False
        inner = self.expr.children[0]
        while inner.kind == "paren":
            inner = inner.children[0]
        return inner.kind == "not" or (inner.kind == "bin" and inner.value in LOGICAL)


@dataclass(frozen=True)
class Term:
    """A model term: the interaction of its variables (empty = intercept)."""

    variables: tuple[Variable, ...]

    @property
    def label(self) -> str:
        return ":".join(v.label for v in self.variables)

    @property
    def order(self) -> int:
        return len(self.variables)


@dataclass(frozen=True)
class RandomTerm:
    """One random-effects term ``(expr | group)`` after expanding ``||`` and ``/``.

    ``intercept`` whether the term has a random intercept; ``terms`` its other terms; ``group``
    the grouping factor's columns (two or more for an interaction ``a:b``); ``label`` lme4's name
    of the grouping factor (``Subject``, ``cask:batch``).
    """

    intercept: bool
    terms: tuple[Term, ...]
    group: tuple[str, ...]

    @property
    def group_label(self) -> str:
        return ":".join(self.group)

    @property
    def label(self) -> str:
        parts = ["1" if self.intercept else "0"] + [t.label for t in self.terms]
        return f"{' + '.join(parts)} | {self.group_label}"


@dataclass(frozen=True)
class ModelDescription:
    """The whole model: response, fixed terms (R's order), intercept flag, random terms and the
    ``offset(x)`` terms of the formula (added to the linear predictor, not model terms)."""

    response: Variable
    intercept: bool
    fixed: tuple[Term, ...]
    random: tuple[RandomTerm, ...] = field(default=())
    offsets: tuple[Variable, ...] = field(default=())

    @property
    def variables(self) -> list[Variable]:
        """Every variable of the model, response first, without repeats."""
        return list(self._variables)

    @cached_property
    def _variables(self) -> tuple[Variable, ...]:
        """:attr:`variables`, found once (the description does not change; a prepare reads them
        a dozen times)."""
        seen: dict[str, Variable] = {self.response.label: self.response}
        for term in self.fixed + tuple(t for r in self.random for t in r.terms):
            for v in term.variables:
                seen.setdefault(v.label, v)
        return tuple(seen.values())

    @property
    def columns(self) -> list[str]:
        """Every data column the model reads, grouping factors included."""
        return list(self._columns)

    @cached_property
    def _columns(self) -> tuple[str, ...]:
        """:attr:`columns`, found once."""
        cols: list[str] = []
        for v in self._variables + self.offsets:
            cols += [c for c in v.columns if c not in cols]
        for r in self.random:
            cols += [c for c in r.group if c not in cols]
        return tuple(cols)

    @property
    def grouping_columns(self) -> list[str]:
        return list(self._grouping_columns)

    @cached_property
    def _grouping_columns(self) -> tuple[str, ...]:
        """:attr:`grouping_columns`, found once."""
        return tuple(sorted({c for r in self.random for c in r.group}))

    def fixed_formula(self) -> str:
        """The fixed part in R syntax (labels as written)."""
        rhs = ["1" if self.intercept else "0"] + [t.label for t in self.fixed]
        return f"{self.response.label} ~ {' + '.join(rhs)}"


# ----------------------------------------------------------------------------------------------
# Tokenizer and parser
# ----------------------------------------------------------------------------------------------

def tokenize(text: str) -> list[tuple[str, str, int]]:
    """Split formula text into (kind, text, position) tokens; unknown characters are errors."""
    tokens, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos or m.lastgroup is None:
            bad = text[pos:].lstrip()[:1]
            raise FormulaError(f"unexpected character {bad!r} at position {pos + 1} of the formula; "
                               "a formula uses column names, numbers and ~ + - * / : ^ ( ) |")
        kind = m.lastgroup
        value = m.group(kind)
        if kind == "quoted":
            if not value:
                raise FormulaError(f"empty backtick-quoted name at position {pos + 1}")
            value = _ESCAPED.sub(r"\1", value)
        if kind in ("str", "str1"):
            value, kind = _ESCAPED.sub(r"\1", value), "str"
        tokens.append(("name" if kind == "quoted" else kind, value, m.start(kind) + 1))
        pos = m.end()
    return tokens


def quote_name(name: str) -> str:
    """A column name as formula text: bare when syntactic, else in backticks, with a backslash
    before each backslash or backtick in it (R's deparse)."""
    if _SYNTACTIC.fullmatch(name):
        return name
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


class _Parser:
    """Recursive-descent parser with R's precedence: ^ > : > * / > + - > | > ~."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0
        self.calls = 0

    def nested(self, pos: int) -> None:
        """Enter a parenthesis, call or unary minus; refused beyond :data:`MAX_NESTING`."""
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise FormulaError(f"the formula nests parentheses, function calls or minus signs more than "
                               f"{MAX_NESTING} deep (at position {pos}); write it with fewer levels")

    def peek(self) -> tuple[str, str, int] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def take(self, op: str | None = None) -> tuple[str, str, int]:
        tok = self.peek()
        if tok is None:
            raise FormulaError(f"the formula ends too early: expected {repr(op) if op else 'a term'} at the end")
        if op is not None and (tok[0] != "op" or tok[1] != op):
            raise FormulaError(f"expected {op!r} at position {tok[2]} but found {tok[1]!r}")
        self.i += 1
        return tok

    def at(self, *ops: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "op" and tok[1] in ops

    def formula(self) -> tuple[Node, Node]:
        if not self.tokens:
            raise FormulaError("the formula is empty; expected 'response ~ terms'")
        if self.at("~"):
            raise FormulaError("the formula has no response before '~'")
        lhs = self.sum()
        self.take("~")
        rhs = self.bar()
        tok = self.peek()
        if tok is not None:
            raise FormulaError(f"unexpected {tok[1]!r} at position {tok[2]} of the formula")
        return lhs, rhs

    def bar(self) -> Node:
        left = self.sum()
        if self.at("|", "||"):
            op = self.take()[1]
            right = self.sum()
            return Node("bar", op, (left, right))
        return left

    def sum(self) -> Node:
        if self.at("-", "+"):
            op = self.take()[1]
            node = self.product()
            left = Node("neg", None, (node,)) if op == "-" else node
        else:
            left = self.product()
        while self.at("+", "-"):
            op = self.take()[1]
            left = Node("bin", op, (left, self.product()))
        return left

    def product(self) -> Node:
        left = self.special()
        while self.at("*", "/"):
            op = self.take()[1]
            left = Node("bin", op, (left, self.special()))
        return left

    def special(self) -> Node:
        left = self.colon()
        while self.at("%in%"):
            self.take()
            left = Node("bin", "%in%", (left, self.colon()))
        return left

    def expr(self) -> Node:
        """An argument of a function call: R's ``|`` and ``&`` (lowest), ``!``, comparisons,
        then the arithmetic of :meth:`sum`."""
        left = self.conjunction()
        while self.at("|"):
            self.take()
            left = Node("bin", "|", (left, self.conjunction()))
        return left

    def conjunction(self) -> Node:
        left = self.negation()
        while self.at("&"):
            self.take()
            left = Node("bin", "&", (left, self.negation()))
        return left

    def negation(self) -> Node:
        if self.at("!"):
            pos = self.take()[2]
            self.nested(pos)
            node = Node("not", None, (self.negation(),))
            self.depth -= 1
            return node
        left = self.sum()
        if self.at(">", "<", ">=", "<=", "==", "!="):
            op = self.take()[1]
            left = Node("bin", op, (left, self.sum()))
        return left

    def colon(self) -> Node:
        left = self.power()
        while self.at(":"):
            self.take()
            left = Node("bin", ":", (left, self.power()))
        return left

    def power(self) -> Node:
        base = self.atom()
        if self.at("^"):
            self.take()
            return Node("bin", "^", (base, self.atom()))
        return base

    def atom(self) -> Node:
        tok = self.take()
        kind, value, pos = tok
        if kind == "num":
            return Node("num", float(value))
        if kind == "str":
            if not self.calls:
                raise FormulaError(f"a quoted string at position {pos} can only be an argument of a function, "
                                   'as in relevel(f, ref = "B")')
            return Node("str", value)
        if kind == "name" and self.at("::"):
            self.take()
            fun = self.take()
            value = f"{value}::{fun[1]}"
            if fun[0] != "name" or not self.at("("):
                raise FormulaError(f"{value!r} at position {pos} must be a function call")
        if kind == "name" and not self.at("("):
            return Node("name", value)
        if kind == "op" and value not in ("(", "-"):
            raise FormulaError(f"unexpected {value!r} at position {pos} of the formula")
        self.nested(pos)
        if kind == "name":
            node = self.call(value, pos)
        elif value == "(":
            node = Node("paren", None, (self.expr() if self.calls else self.bar(),))
            self.take(")")
        else:
            node = Node("neg", None, (self.atom(),))
        self.depth -= 1
        return node

    def call(self, name: str, pos: int) -> Node:
        _check_function(name, pos)
        self.take("(")
        if self.at(")"):
            raise FormulaError(f"function {name!r} at position {pos} needs an argument")
        self.calls += 1
        args = [self.argument()]
        while self.at(","):
            self.take()
            args.append(self.argument())
        self.take(")")
        self.calls -= 1
        if args[0].kind == "arg":
            raise FormulaError(f"the first argument of {name!r} at position {pos} must not be named")
        return Node("call", name, tuple(args))

    def argument(self) -> Node:
        """One argument of a call: an expression, or ``name = expression``."""
        tok = self.peek()
        nxt = self.tokens[self.i + 1] if self.i + 1 < len(self.tokens) else None
        if tok is not None and tok[0] == "name" and nxt is not None and nxt[:2] == ("op", "="):
            self.i += 2
            return Node("arg", tok[1], (self.expr(),))
        return self.expr()


def _check_function(name: str, pos: int) -> None:
    """A function name must be on the whitelist (``pkg::fun`` with ``fun`` in ``pkg``)."""
    pkg, _, fun = name.rpartition("::")
    if fun not in FUNCTIONS or (pkg and fun not in PACKAGES.get(pkg, set())):
        raise FormulaError(f"unknown function {name!r} at position {pos} of the formula; "
                           f"allowed functions are {', '.join(sorted(FUNCTIONS))}")


# ----------------------------------------------------------------------------------------------
# From syntax tree to terms (R's terms.formula semantics)
# ----------------------------------------------------------------------------------------------

_BINARY = frozenset({"+", "-", "*", "/", ":", "^", "%in%"})
_ANY_BINARY = _BINARY | LOGICAL


def deparse(node: Node) -> str:
    """R's deparsed spelling of an expression inside a function call."""
    if node.kind == "name":
        return quote_name(str(node.value))
    if node.kind == "num":
        v = float(node.value)  # type: ignore[arg-type]
        return str(int(v)) if v.is_integer() and abs(v) < 1e15 else repr(v)
    if node.kind == "str":
        return '"' + str(node.value).replace("\\", "\\\\").replace('"', '\\"') + '"'
    if node.kind == "call":
        return f"{node.value}({', '.join(deparse(a) for a in node.children)})"
    if node.kind == "arg":
        return f"{node.value} = {deparse(node.children[0])}"
    if node.kind == "not":
        return f"!{deparse(node.children[0])}"
    if node.kind == "paren":
        return f"({deparse(node.children[0])})"
    if node.kind == "neg":
        return f"-{deparse(node.children[0])}"
    if node.kind == "bar":
        return f"{deparse(node.children[0])} {node.value} {deparse(node.children[1])}"
    first, rest = left_spine(node, _ANY_BINARY)
    out = [deparse(first)]
    for op, right in rest:
        out.append(f"{op}{deparse(right)}" if op in ("^", ":", "/") else f" {op} {deparse(right)}")
    return "".join(out)


def columns_of(node: Node) -> tuple[str, ...]:
    """The data columns an expression reads (names other than :data:`CONSTANTS`)."""
    return tuple(dict.fromkeys(str(n.value) for n in walk(node) if n.kind == "name" and n.value not in CONSTANTS))


def _check_arith(node: Node) -> None:
    """Inside a function call only arithmetic, comparisons and logical operations on columns,
    numbers and strings are allowed."""
    for n in walk(node):
        if n.kind == "bar":
            raise FormulaError("a random-effects bar '|' cannot appear inside a function call")
        if n.kind == "bin" and n.value not in ARITH | LOGICAL:
            raise FormulaError(f"operator {n.value!r} cannot be used inside a function call")


def _variable(node: Node) -> Variable:
    if node.kind == "call":
        for arg in node.children:
            _check_arith(arg)
        if node.value != "I" and node.children[0].kind in ("num", "str"):
            raise FormulaError(f"{deparse(node)} has no variable in it")
    return Variable(deparse(node), node, columns_of(node))


def _check_count(count: int, where: Node) -> None:
    """Refuse an expansion beyond :data:`MAX_TERMS` terms before it is made."""
    if count > MAX_TERMS:
        text = deparse(where)
        text = text if len(text) <= 60 else text[:57] + "..."
        raise FormulaError(f"'{text}' expands to more than {MAX_TERMS:,} terms, the most a model may have; "
                           "name the interactions you need instead of crossing every variable")


def _check_order(order: int, where: Node) -> None:
    """Refuse an interaction of more than :data:`MAX_INTERACTION` variables before it is made."""
    if order > MAX_INTERACTION:
        text = deparse(where)
        text = text if len(text) <= 60 else text[:57] + "..."
        raise FormulaError(f"'{text}' makes an interaction of more than {MAX_INTERACTION} variables, the most a "
                           "term may have; name the interactions you need")


def _terms(node: Node) -> tuple[list[frozenset], bool | None]:
    """Expand an expression into (terms as sets of variable labels, intercept flag or None)."""
    if node.kind == "bin":
        return _binary_terms(node)
    if node.kind == "num":
        if node.value in (0.0, 1.0):
            return [], bool(node.value)
        raise FormulaError(f"the number {deparse(node)} cannot be a term; use 1 or 0 for the intercept")
    if node.kind in ("name", "call"):
        return [frozenset([deparse(node)])], None
    if node.kind == "paren":
        if node.children[0].kind == "bar":
            raise FormulaError("random-effects terms '( ... | group )' may only be added at the top level")
        return _terms(node.children[0])
    if node.kind == "neg":
        terms, icpt = _terms(node.children[0])
        if icpt is not None and not terms:
            return [], not icpt
        raise FormulaError(f"'-{deparse(node.children[0])}' can only follow another term")
    raise FormulaError("a random-effects bar '|' must be inside parentheses: (1 | group)")


def _binary_terms(node: Node) -> tuple[list[frozenset], bool | None]:
    """Terms of a chain ``a op b op c ...`` of R's formula operators ``+ - : * / ^``, folded
    from the left as R's ``terms.formula`` reads it."""
    first, rest = left_spine(node, _BINARY)
    terms, icpt = _terms(first)
    for op, right in rest:
        terms, icpt = _combine(op, terms, icpt, right, node)
    return terms, icpt


def _combine(op: str, lt: list[frozenset], li: bool | None, right: Node,
             whole: Node) -> tuple[list[frozenset], bool | None]:
    """The terms of ``left op right`` given the left side's terms (``whole`` the chain, for
    messages)."""
    if op == "^":
        return _power_terms(right, lt, whole), li
    rt, ri = _terms(right)
    if op == "+":
        _check_count(len(lt) + len(rt), whole)
        return _unique(lt + rt), ri if ri is not None else li
    if op == "-":
        drop = set(rt)
        return [t for t in lt if t not in drop], (not ri if ri is not None else li)
    _check_count(len(lt) * len(rt) + len(lt) + len(rt), whole)
    _check_order(max(map(len, lt), default=0) + max(map(len, rt), default=0), whole)
    crossed = [a | b for a in lt for b in rt]
    if op in (":", "%in%"):
        return _unique(crossed), None
    if op == "*":
        return _unique(lt + rt + crossed), None
    if op == "/":
        outer = frozenset().union(*lt) if lt else frozenset()
        _check_order(len(outer) + max(map(len, rt), default=0), whole)
        return _unique(lt + [outer | b for b in rt]), None
    raise FormulaError(f"operator {op!r} is not allowed here")


def _power_terms(right: Node, lt: list[frozenset], whole: Node) -> list[frozenset]:
    """``(a + b + c)^k``: the terms and their interactions up to order k (all of them when k is
    at least the number of terms)."""
    k = float(right.value) if right.kind == "num" else 0.0  # type: ignore[arg-type]
    if not (k.is_integer() and 1 <= k <= MAX_POWER):
        raise FormulaError(f"the power in {deparse(whole)} must be a positive whole number "
                           f"(at most {MAX_POWER:,}, R's limit)")
    order = min(int(k), len(lt))
    _check_count(sum(math.comb(len(lt), j) for j in range(1, order + 1)), whole)
    out = list(lt)
    for j in range(2, order + 1):
        for combo in itertools.combinations(lt, j):
            out.append(frozenset().union(*combo))
    return _unique(out)


def _unique(terms: list[frozenset]) -> list[frozenset]:
    return list(dict.fromkeys(t for t in terms if t))


def _variables_of(node: Node, out: dict[str, Variable]) -> None:
    stack = [node]
    while stack:
        n = stack.pop()
        if n.kind in ("name", "call"):
            v = _variable(n)
            out.setdefault(v.label, v)
        else:
            stack.extend(reversed(n.children))


def _build_terms(node: Node, default_intercept: bool = True) -> tuple[bool, tuple[Term, ...]]:
    """Terms in R's order (by order of interaction, then as written) and the intercept flag."""
    sets, icpt = _terms(node)
    variables: dict[str, Variable] = {}
    _variables_of(node, variables)
    order = {lab: i for i, lab in enumerate(variables)}
    terms = [Term(tuple(variables[lab] for lab in sorted(s, key=order.__getitem__))) for s in sets]
    terms.sort(key=lambda t: t.order)
    return (default_intercept if icpt is None else icpt), tuple(terms)


def _split_top(node: Node) -> tuple[list[Node], list[Node]]:
    """Split the right-hand side into fixed parts and random-effects bars."""
    fixed: list[Node] = []
    bars: list[Node] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.kind == "bin" and n.value == "+":
            stack.extend(reversed(n.children))
        elif n.kind == "paren" and n.children[0].kind == "bar":
            bars.append(n.children[0])
        elif n.kind == "bar":
            raise FormulaError("a random-effects bar '|' must be inside parentheses: (1 | group)")
        else:
            _reject_nested_bar(n)
            fixed.append(n)
    return fixed, bars


def _reject_nested_bar(node: Node) -> None:
    if any(n.kind == "bar" for n in walk(node)):
        raise FormulaError("random-effects terms '( ... | group )' may only be added at the top level")


_GROUPING = frozenset({":", "/", "+"})


def _group_factors(node: Node) -> list[tuple[str, ...]]:
    """Grouping factors of a bar's right-hand side: ``a``, ``a:b``, ``a/b`` (= a + b:a), ``a + b``."""
    if node.kind == "paren":
        return _group_factors(node.children[0])
    if node.kind == "name":
        return [(str(node.value),)]
    if not (node.kind == "bin" and node.value in _GROUPING):
        raise FormulaError(f"{deparse(node)!r} is not a grouping factor; after '|' name a column, "
                           "an interaction a:b, or a nesting a/b")
    first, rest = left_spine(node, _GROUPING)
    groups = _group_factors(first)
    for op, right in rest:
        _check_count(len(groups), node)
        _check_order(len(groups[-1]), node)
        inner = _group_factors(right)
        if op == "+":
            groups = groups + inner
        elif op == ":" and len(groups) == 1 and len(inner) == 1:
            groups = [groups[0] + inner[0]]
        elif op == "/" and len(inner) == 1:
            groups = groups + [inner[0] + groups[-1]]
        else:
            what = "the nested factor must be a single factor" if op == "/" else "cannot interact grouping factors"
            raise FormulaError(f"{what} in {deparse(node)}")
    return groups


def _random_terms(bar: Node) -> list[RandomTerm]:
    lhs, rhs = bar.children
    intercept, terms = _build_terms(lhs)
    groups = _group_factors(rhs)
    out: list[RandomTerm] = []
    for g in groups:
        if bar.value == "||":
            if intercept:
                out.append(RandomTerm(True, (), g))
            out += [RandomTerm(False, (t,), g) for t in terms]
        else:
            if not intercept and not terms:
                raise FormulaError(f"the random-effects term ({deparse(lhs)} | {deparse(rhs)}) has no effects")
            out.append(RandomTerm(intercept, terms, g))
    return out


def parse_formula(text: str) -> ModelDescription:
    """Parse lme4 formula text into a :class:`ModelDescription` (immutable, so the recent
    formulas' descriptions are kept: a host that sends the same model again parses it once)."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty; expected 'response ~ terms'")
    return _parse_text(text)


@lru_cache(maxsize=64)
def _parse_text(text: str) -> ModelDescription:
    """:func:`parse_formula` of a non-empty text (errors are raised, never kept)."""
    parser = _Parser(text)
    if sum(tok[:2] == ("op", "~") for tok in parser.tokens) != 1:
        raise FormulaError("the formula needs exactly one '~' between the response and the terms")
    lhs, rhs = parser.formula()
    return from_tree(lhs, rhs)


def from_tree(lhs: Node, rhs: Node) -> ModelDescription:
    """The :class:`ModelDescription` of the syntax tree ``lhs ~ rhs``, with R's term semantics.

    :func:`parse_formula` parses text into this tree; a caller that assembles a model from
    its parts (the JASP adapter) builds the tree itself and gets the same description without
    writing formula text to parse.
    """
    if lhs.kind not in ("name", "call"):
        raise FormulaError(f"the response {deparse(lhs)!r} must be one column or a transformation of one")
    response = _variable(lhs)
    _check_cbind(lhs, rhs)
    fixed_nodes, bars = _split_top(rhs)
    offsets = tuple(_variable(n) for n in fixed_nodes if _is_offset(n))
    fixed_nodes = [n for n in fixed_nodes if not _is_offset(n)]
    if not fixed_nodes:
        fixed_node = Node("num", 1.0)
    else:
        fixed_node = fixed_nodes[0]
        for n in fixed_nodes[1:]:
            fixed_node = Node("bin", "+", (fixed_node, n))
    intercept, fixed = _build_terms(fixed_node)
    random = tuple(r for bar in bars for r in _random_terms(bar))
    _check_count(len(fixed) + sum(len(r.terms) + r.intercept for r in random), rhs)
    return ModelDescription(response, intercept, fixed, random, offsets)


def _is_cbind(node: Node) -> bool:
    return node.kind == "call" and str(node.value).rpartition("::")[2] == "cbind"


def _check_cbind(lhs: Node, rhs: Node) -> None:
    """``cbind(successes, failures)`` only as the whole response, with two unnamed arguments
    (a binomial response as counts, as glmer takes it)."""
    if any(_is_cbind(n) for n in walk(rhs)) or any(_is_cbind(n) for n in walk(lhs) if n is not lhs):
        raise FormulaError("cbind(successes, failures) can only be the whole response, on the left of '~'")
    if _is_cbind(lhs) and (len(lhs.children) != 2 or any(a.kind == "arg" for a in lhs.children)):
        raise FormulaError(f"the response {deparse(lhs)} must have two unnamed arguments: "
                           "cbind(successes, failures)")


def _is_offset(node: Node) -> bool:
    """Whether a top-level part of the right-hand side is ``offset(x)``: R's ``terms.formula``
    knows the offset by that name only (``stats::offset(x)`` is an ordinary variable)."""
    return node.kind == "call" and node.value == "offset"
