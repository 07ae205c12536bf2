"""The benchmarks' ``calculate``, bounded: ``str(round(float(eval(expression, {"__builtins__": None}, {})), 2))``.

tau-bench's and tau2-bench's ``calculate`` (tau2: airline and retail) ``eval`` the expression after a
character check (digits, ``+-*/().`` and spaces), which lets ``**`` through: ``9**9**9`` makes them compute
for minutes and ``9**9**9**9`` for ever, stalling the rollout worker.  Every built-in domain answers
``calculate`` through this module instead (tau2's toolkits via :func:`bounded_calculate`, tau1's tool
directly), in a few milliseconds at most:

* An expression of the alphabet without ``**`` and at most :data:`MAX_LENGTH` characters is the
  benchmark's own business: nothing in it can run away (:func:`needs_bound` is false, the benchmark's
  code runs it as it is).
* A longer one is refused (:data:`TOO_LONG`): Python's compiler alone spends milliseconds per thousand
  characters on one, and a product of a few hundred 4,000-digit literals takes seconds.
* An expression with ``**`` is compiled by Python (same syntax errors and warnings), then its syntax
  tree is evaluated here, node by node, in Python's order.  Every operation on values that are not both
  integers is Python's own.  An operation on two integers is Python's own when its cost, estimated from
  the operands' sizes, is affordable (:data:`PER_OP_COST`, :data:`TOTAL_COST`) and its result has at most
  :data:`MAX_EXACT_BITS` bits; a power or product with a power of two is computed as a shift (the same
  value, in linear time).
* Otherwise the integer is not built: it is represented by its sign and bounds on its bit length
  (:class:`Huge`, always more than :data:`HUGE_MIN_BITS` bits, too large for a float), and the operations
  that follow are decided from those bounds where they determine the outcome: a huge value that reaches
  the end, or meets a float, reads ``int too large to convert to float`` (Python's own text, as the
  benchmark words it); ``huge + small`` is huge; ``small // huge`` is 0 or -1; ``huge * 0`` is 0;
  ``huge / small`` reads ``integer division result too large for a float``, and so on -- the outcome
  Python's own evaluation reaches.

So the answer is exactly the benchmark's wherever Python's evaluation stays within these bounds, and
the benchmark's own text where the bounds decide the outcome.  Where they do not
(``2**(2**25) - 2**(2**25)``, ``huge // huge`` of similar sizes, ``(-1)**huge`` of unknown parity), the
answer is a refusal that says so (``int too large to compute exactly here: ...``, ``expression too
costly to evaluate here``); the benchmark would compute those for seconds to forever.  For a value larger
than the benchmark machine's memory (``2**2**40``) its process would instead end in a ``MemoryError``
(``Error: `` with an empty message) after a long computation; we answer as Python with unlimited memory.
"""

from __future__ import annotations

import ast
import functools
import math
import operator
import re
import sys
from typing import Any, Callable, List, Optional, Tuple

#: the benchmarks' alphabet (tau-bench's and tau2's ``calculate`` refuse any other character)
CALCULATOR_CHARACTERS = "0123456789+-*/(). "
_OUTSIDE = re.compile("[^" + re.escape(CALCULATOR_CHARACTERS) + "]")

#: Longest expression evaluated (characters): a thousand characters of nested arithmetic (a tower of 333
#: powers, a thousand signs) are compiled and decided in a millisecond or two; far beyond any arithmetic an
#: agent needs.
MAX_LENGTH = 1000
#: Largest integer (in bits) a product, power or floor division builds exactly (as a shift: a power or
#: product of a power of two); a linear-time step on it takes about a millisecond.
MAX_EXACT_BITS = 1 << 24
#: Estimated cost (about nanoseconds of CPython's integer arithmetic on a slow core) above which
#: one integer operation is decided from size bounds instead, where the bounds decide it.
PER_OP_COST = 3e6
#: Estimated integer work one expression may spend in all; beyond it, operations are decided from
#: bounds only (or refused, where the bounds do not decide them).
TOTAL_COST = 6e6
#: A :class:`Huge` value has more bits than this: a float cannot hold it (1024 bits), nor an index.
HUGE_MIN_BITS = 1100
_LO_CLAMP = 1 << 64  # bounds on bit lengths are kept below this (a smaller lower bound stays true)
_DIGIT = 30  # CPython's integer digit, in bits

TOO_LARGE = "int too large to compute exactly here: an intermediate result has at least {bits} bits"
TOO_COSTLY = "expression too costly to evaluate here"
TOO_LONG = "expression too long to evaluate here: {length} characters (at most {limit})"


class Undecided(OverflowError):
    """An operation on a huge integer whose outcome its size bounds do not determine."""


class Huge:
    """An integer too large to build here: its sign (1, -1, or 0 where unknown), bounds on its
    bit length (``hi`` None: no upper bound known) and its parity (None where unknown).  Always
    more than HUGE_MIN_BITS bits."""

    __slots__ = ("sign", "lo", "hi", "parity")

    def __init__(self, sign: int, lo: int, hi: Optional[int], parity: Optional[int] = None):
        if lo < HUGE_MIN_BITS:
            raise Undecided(TOO_LARGE.format(bits=max(lo, 1)))
        self.sign = sign
        self.lo = min(lo, _LO_CLAMP)
        self.hi = None if hi is None or hi > _LO_CLAMP else hi
        self.parity = parity

    def stand_in(self) -> int:
        """An integer that any operation with a non-integer treats as it treats this one: too large
        for a float or an index, and its decimal text over Python's 4300-digit limit."""
        return -_STAND_IN if self.sign < 0 else _STAND_IN

    def __repr__(self) -> str:
        return f"Huge(sign={self.sign}, bits {self.lo}..{self.hi}, parity {self.parity})"


_STAND_IN = 1 << 15000


def _str_limit_bits() -> Optional[int]:
    """Bits above which ``str(int)`` fails (Python's integer string limit), or None without a limit."""
    digits = getattr(sys, "get_int_max_str_digits", lambda: 0)()
    return math.ceil(digits * math.log2(10)) + 2 if digits else None


def _mag(x) -> Tuple[int, int, Optional[int]]:
    """(sign, lower, upper bound of bit length) of an integer or a Huge."""
    if isinstance(x, Huge):
        return x.sign, x.lo, x.hi
    return (x > 0) - (x < 0), x.bit_length(), x.bit_length()


def _parity(x) -> Optional[int]:
    return x.parity if isinstance(x, Huge) else x & 1


def _is_int(x) -> bool:
    return type(x) is int


def _native(fn, *args):
    """Python's own operation, with a huge integer replaced by its stand-in (for operations whose
    outcome does not depend on the exact value: floats, tuples, calls)."""
    return fn(*[a.stand_in() if isinstance(a, Huge) else a for a in args])


# ------------------------------------------------------------------ decided from bounds

def _neg(x):
    return Huge(-x.sign, x.lo, x.hi, x.parity) if isinstance(x, Huge) else -x


def _sym_add(a, b):
    if _is_int(a) and a == 0:
        return b
    if _is_int(b) and b == 0:
        return a
    sa, la, ha = _mag(a)
    sb, lb, hb = _mag(b)
    pa, pb = _parity(a), _parity(b)
    parity = None if pa is None or pb is None else (pa + pb) & 1
    if hb is not None and hb <= la - 2:  # |b| < |a| / 2: a decides sign and size
        return Huge(sa, la - 1, None if ha is None else ha + 1, parity)
    if ha is not None and ha <= lb - 2:
        return Huge(sb, lb - 1, None if hb is None else hb + 1, parity)
    raise Undecided(TOO_LARGE.format(bits=max(la, lb)))


def _sym_mul(a, b):
    if (_is_int(a) and a == 0) or (_is_int(b) and b == 0):
        return 0
    sa, la, ha = _mag(a)
    sb, lb, hb = _mag(b)
    pa, pb = _parity(a), _parity(b)
    parity = 0 if 0 in (pa, pb) else 1 if pa == pb == 1 else None
    return Huge(sa * sb, la + lb - 1, None if ha is None or hb is None else ha + hb, parity)


def _sym_floordiv(a, b):
    if _is_int(b) and b == 0:
        return _native(operator.floordiv, a, b)  # integer division or modulo by zero
    if _is_int(a) and a == 0:
        return 0
    sa, la, ha = _mag(a)
    sb, lb, hb = _mag(b)
    if hb is not None and la - hb >= HUGE_MIN_BITS:  # quotient in [2**(la-hb-1), 2**(ha-lb+1)]
        return Huge(sa * sb, la - hb, None if ha is None else ha - lb + 2)
    if ha is not None and ha <= lb - 1 and sa and sb:  # 0 < |a| < |b|
        return 0 if sa == sb else -1
    raise Undecided(TOO_LARGE.format(bits=max(la, lb)))


def _sym_truediv(a, b):
    if _is_int(b) and b == 0:
        return _native(operator.truediv, a, b)  # division by zero
    sa, la, ha = _mag(a)
    sb, lb, hb = _mag(b)
    if _is_int(a) and a == 0 and sb:
        return -0.0 if sb < 0 else 0.0
    # CPython's int true division: bit-length difference above DBL_MAX_EXP overflows, below
    # DBL_MIN_EXP - DBL_MANT_DIG - 1 it is a signed zero, without dividing
    if hb is not None and la - hb > 1024:
        raise OverflowError("integer division result too large for a float")
    if ha is not None and ha - lb < -1075 and sa and sb:
        return -0.0 if sa != sb else 0.0
    raise Undecided(TOO_LARGE.format(bits=max(la, lb)))


def _sym_pow(a, b):
    sb, lb, hb = _mag(b)
    if sb < 0:
        return _native(operator.pow, a, b)  # a negative exponent goes to float: the huge one overflows
    if sb == 0 and _is_int(b):
        return 1
    if sb == 0:
        raise Undecided(TOO_LARGE.format(bits=lb))  # exponent of unknown sign
    if _is_int(a) and a in (0, 1):
        return a
    sa, la, ha = _mag(a)
    odd = _parity(b)  # of the exponent: decides the sign of a negative base's power
    sign = 1 if sa > 0 or odd == 0 else sa if odd == 1 else 0
    if _is_int(a) and a == -1:
        if odd is None:
            raise Undecided(TOO_LARGE.format(bits=lb))
        return sign
    parity = _parity(a)  # a positive power is even exactly when the base is
    if _is_int(b):
        return Huge(sign, (la - 1) * b + 1, None if ha is None else ha * b, parity)
    # a huge positive exponent: at least 2**(lb-1), so |a|**b has more than that many bits
    lo = _LO_CLAMP if lb - 1 >= 64 else (1 << (lb - 1)) + 1
    return Huge(sign, lo, None, parity)


_SYMBOLIC = {ast.Add: _sym_add, ast.Sub: lambda a, b: _sym_add(a, _neg(b)), ast.Mult: _sym_mul,
             ast.FloorDiv: _sym_floordiv, ast.Div: _sym_truediv, ast.Pow: _sym_pow}
_NATIVE = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.FloorDiv: operator.floordiv,
           ast.Div: operator.truediv, ast.Pow: operator.pow}


# ------------------------------------------------------------------ computed exactly

def _digits(bits: int) -> int:
    return bits // _DIGIT + 1


def _mul_cost(m_bits: int, n_bits: int) -> float:
    """Karatsuba: about n * m**0.585 digit operations (m <= n), 7-15 ns each (measured)."""
    m, n = sorted((_digits(m_bits), _digits(n_bits)))
    return 15.0 * n * m ** 0.585


def _power_of_two(x: int) -> Optional[int]:
    """k when |x| == 2**k, else None (linear time)."""
    x = abs(x)
    return x.bit_length() - 1 if x and not x & (x - 1) else None


class _Evaluation:
    """One expression's evaluation: the integer work spent so far."""

    def __init__(self):
        self.spent = 0.0

    def _spend(self, cost: float, compute, may_defer: bool):
        """``compute()`` when affordable; None (decide from bounds) when too costly and the result
        is large enough to be decided that way (``may_defer``); refused when neither."""
        if cost > PER_OP_COST or self.spent + cost > TOTAL_COST:
            if may_defer:
                return None
            if self.spent + cost > TOTAL_COST:
                raise OverflowError(TOO_COSTLY)
        self.spent += cost
        return compute()

    def exact(self, op, a: int, b: int):
        """The exact result of ``a op b`` (two integers), or None where it is to be decided from
        bounds instead."""
        la, lb = a.bit_length(), b.bit_length()
        big = max(la, lb)
        linear = 2.0 * _digits(big)
        if op is ast.Pow:
            return self._pow(a, b, la, lb)
        if op in (ast.Add, ast.Sub):
            return self._spend(linear, lambda: _NATIVE[op](a, b), big >= HUGE_MIN_BITS + 2)
        if op is ast.Div:
            if b == 0:
                return a / b  # division by zero
            return self._spend(30 * linear, lambda: a / b, True)
        if op is ast.Mult:
            if a == 0 or b == 0:
                return 0
            if la + lb - 1 > MAX_EXACT_BITS:
                return None
            cost = _mul_cost(la, lb)
            if cost > 1e5:  # a product with +-2**k is a shift: the same value in linear time
                for x, other in ((a, b), (b, a)):
                    k = _power_of_two(x)
                    if k is not None:
                        sign = -1 if (a < 0) != (b < 0) else 1
                        return self._spend(linear, lambda: sign * (abs(other) << k), True)
            return self._spend(cost, lambda: a * b, la + lb - 1 >= HUGE_MIN_BITS)
        # ast.FloorDiv
        if b == 0:
            return a // b  # integer division or modulo by zero
        if la <= lb or lb <= 64:
            return self._spend(linear, lambda: a // b, False)
        k = _power_of_two(b)
        if k is not None:  # floor division by +-2**k is a shift (which floors)
            return self._spend(linear, lambda: (a if b > 0 else -a) >> k, False)
        cost = 6.0 * _digits(lb) * _digits(la - lb + 1) + linear
        return self._spend(cost, lambda: a // b, la - lb >= HUGE_MIN_BITS)

    def _pow(self, a: int, b: int, la: int, lb: int):
        if b <= 0:
            return a ** b  # 1, or Python's float path (O(1); it overflows for a huge operand)
        if a in (0, 1):
            return a
        if a == -1:  # Python would loop over the exponent's bits
            return -1 if b & 1 else 1
        if lb > 64:
            return None  # |a| >= 2 to a power above 2**64
        sign = -1 if a < 0 and b & 1 else 1
        k = _power_of_two(a)
        if k is not None:  # +-2**k to the b is a shift
            bits = k * b + 1
            if bits > MAX_EXACT_BITS:
                return None
            return self._spend(2.0 * _digits(bits), lambda: sign * (1 << (k * b)), bits >= HUGE_MIN_BITS)
        estimate = b * math.log2(abs(a))  # the result has floor(estimate) + 1 bits, give or take one
        if estimate > MAX_EXACT_BITS + 1:
            return None
        cost = 9.0 * (1.5 * _digits(int(estimate) // 2) ** 1.585 + 2.0 * _digits(int(estimate)) * _digits(la) ** 0.585)
        return self._spend(cost, lambda: a ** b, (la - 1) * b + 1 >= HUGE_MIN_BITS)

    # -- operations of the syntax tree
    def binop(self, op, a, b):
        if not ((_is_int(a) or isinstance(a, Huge)) and (_is_int(b) or isinstance(b, Huge))):
            return _native(_NATIVE[op], a, b)
        if _is_int(a) and _is_int(b):
            if op is not ast.Pow and a.bit_length() <= 64 and b.bit_length() <= 64:
                return _NATIVE[op](a, b)
            r = self.exact(op, a, b)
            if r is not None:
                return r
        return _SYMBOLIC[op](a, b)

    def unary(self, op, x):
        if isinstance(x, Huge):
            return x if op is ast.UAdd else _neg(x)
        if op is ast.UAdd or not _is_int(x) or x.bit_length() <= 64:
            return +x if op is ast.UAdd else -x
        bits = x.bit_length()
        r = self._spend(_digits(bits), lambda: -x, bits >= HUGE_MIN_BITS)
        return Huge(-1 if x > 0 else 1, bits, bits, x & 1) if r is None else r

    def call(self, func, args: List[Any], starred: bool):
        if starred and isinstance(func, Huge):
            # Python names the object in this error by its decimal text: too long, it fails on that
            limit = _str_limit_bits()
            if limit is None or func.lo < limit:
                raise Undecided(TOO_LARGE.format(bits=func.lo))
        if starred:
            return _native(lambda f, x: f(*x), func, args[0])
        return _native(lambda f, *x: f(*x), func, *args)


_UNARY = (ast.USub, ast.UAdd)


def _interpret(tree: ast.Expression):
    """Evaluate the tree in Python's order (left operand, right operand, operation; callee, argument,
    call), iteratively: an expression nested deeper than Python's recursion limit still evaluates."""
    ev = _Evaluation()
    values: List[Any] = []
    todo: List[Tuple[ast.AST, bool]] = [(tree.body, False)]
    while todo:
        node, ready = todo.pop()
        if isinstance(node, ast.Constant):
            values.append(node.value)
            continue
        if isinstance(node, ast.BinOp):
            children = [node.left, node.right]
        elif isinstance(node, ast.UnaryOp):
            children = [node.operand]
        elif isinstance(node, ast.Call):
            if node.keywords:
                raise RuntimeError("calculate: a call with keywords cannot come from its alphabet")
            children = [node.func] + [a.value if isinstance(a, ast.Starred) else a for a in node.args]
        elif isinstance(node, ast.Tuple):
            children = list(node.elts)
        else:
            raise RuntimeError(f"calculate: unexpected expression node {type(node).__name__}")
        if not ready:
            todo.append((node, True))
            todo.extend((c, False) for c in reversed(children))
            continue
        operands = values[len(values) - len(children):]
        del values[len(values) - len(children):]
        if isinstance(node, ast.BinOp):
            if type(node.op) not in _NATIVE:
                raise RuntimeError(f"calculate: unexpected operator {type(node.op).__name__}")
            values.append(ev.binop(type(node.op), *operands))
        elif isinstance(node, ast.UnaryOp):
            if type(node.op) not in _UNARY:
                raise RuntimeError(f"calculate: unexpected operator {type(node.op).__name__}")
            values.append(ev.unary(type(node.op), operands[0]))
        elif isinstance(node, ast.Call):
            starred = any(isinstance(a, ast.Starred) for a in node.args)
            if starred and len(node.args) != 1:
                raise RuntimeError("calculate: a call with several arguments cannot come from its alphabet")
            values.append(ev.call(operands[0], operands[1:], starred))
        else:
            values.append(tuple(operands))  # only ``()``: the alphabet has no comma
    (value,) = values
    return value


def benchmark_eval(expression: Any):
    """``eval(expression, {"__builtins__": None}, {})`` as both benchmarks' ``calculate`` runs it,
    for an expression that passed their character check.  Returns Python's value, or a
    :class:`Huge` where the integer is too large to build (see the module's notes)."""
    if not isinstance(expression, str):
        return eval(expression, {"__builtins__": None}, {})  # raises eval's own TypeError for a list or dict
    source = expression.lstrip(" \t")  # eval() skips leading spaces and tabs of a string
    code = compile(source, "<string>", "eval")  # the SyntaxError (or RecursionError) eval would raise
    if "**" not in source:
        return eval(code, {"__builtins__": None}, {})
    try:
        tree = ast.parse(source, "<string>", "eval")
    except (RecursionError, MemoryError):  # compile() took it, the ast module's objects do not go as deep
        raise OverflowError("expression too deeply nested to evaluate here") from None
    return _interpret(tree)


def calculator_result(expression: Any) -> str:
    """The text of a successful ``calculate``: ``str(round(float(value), 2))``, for an expression of the
    alphabet; raises what the benchmark's evaluation raises, or a refusal (an ``OverflowError``)."""
    if isinstance(expression, str) and len(expression) > MAX_LENGTH:
        raise OverflowError(TOO_LONG.format(length=len(expression), limit=MAX_LENGTH))
    value = benchmark_eval(expression)
    if isinstance(value, Huge):
        value = value.stand_in()  # float() of it: int too large to convert to float
    return str(round(float(value), 2))


def outside_alphabet(expression: str) -> Optional[str]:
    """The first character of ``expression`` the benchmarks' ``calculate`` refuses, or None."""
    m = _OUTSIDE.search(expression)
    return m.group() if m else None


def needs_bound(expression: Any) -> bool:
    """Whether the benchmark's own evaluation of ``expression`` could run away (a text with ``**``, or longer
    than :data:`MAX_LENGTH`); anything else the benchmark's code answers as it is, at once."""
    return isinstance(expression, str) and (len(expression) > MAX_LENGTH or "**" in expression)


def bounded_calculate(original: Callable[..., str]) -> Callable[..., str]:
    """A toolkit's ``calculate(self, expression)`` (tau2's), answered through the bound.

    Calls that cannot run away go to ``original`` unchanged (every argument error, type and text is its
    own).  An expression that could: with a character outside the alphabet, ``original`` refuses that
    character alone (the refusal the benchmark gives the whole text: its check stops at the first such
    character, before ``eval``); otherwise :func:`calculator_result` answers.  The wrapper keeps
    ``original``'s name, signature, docstring and tool markers (tau2's ``@is_tool`` attributes)."""

    @functools.wraps(original)
    def calculate(self, *args, **kwargs):
        expression = args[0] if len(args) == 1 and not kwargs else kwargs.get("expression") \
            if not args and list(kwargs) == ["expression"] else None
        if not needs_bound(expression):
            return original(self, *args, **kwargs)
        bad = outside_alphabet(expression)
        if bad is not None:
            return original(self, bad)
        return calculator_result(expression)

    return calculate
