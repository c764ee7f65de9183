"""What one render may spend, and the checks that charge it.

An administrator's template runs in the API (save, preview) and in the worker (every
send), so it must not be able to take a process's CPU or memory. Jinja's sandbox stops
escapes, not work: nested ``range(100000)`` loops, ``|center(20000000)``,
``((9**100)**100)**100`` and 3,000 nested ``{% if %}`` all went through it. Each limit
below raises ``TemplateLimitError`` (a ``TemplateError``, so the API answers 422 and the
worker marks the row FAILED) with a message naming the limit.

The deterministic limits (sizes, iterations) catch every case we know of in a few
milliseconds and fail the same way on every machine; the time budget is the backstop
for what they miss (say, a recursive macro with a large fan-out), checked at every loop
iteration, call, filter, attribute access and operator, so no Python-level loop outlives
it. A single C-level step (one ``sort``, one ``join``) cannot be interrupted, which is
why every step that can multiply a size is checked *before* it runs. Measured on the
2-core dev machine: every pathological template of issue 9 (and the others in
tests/test_templating.py) is refused in 1-35 ms, the time budget fires within 30 ms of
its deadline, a 1,200-item digest renders in 65 ms. The checks cost 0-0.3 ms per render
(a mail 0.39 → 0.32 ms, a digest 0.51 → 0.52 ms, the daily summary 0.45 → 0.77 ms,
which calls many filters).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from contextvars import ContextVar
from functools import wraps
from typing import Any

from jinja2 import nodes

from notiflow.templates.errors import TemplateLimitError

#: One template part (subject, body, HTML) as stored, in characters.
MAX_SOURCE_CHARS = 65_536
#: Blocks ({% if %}, {% for %}, {% macro %} …) inside one another. Python itself refuses
#: more than 20 nested loops in the code Jinja generates, and the parser recurses per level.
MAX_NESTING = 16
#: Depth of one expression's tree (``1+1+…``, ``x|f|f|…``); Jinja's compiler recurses on it.
MAX_EXPRESSION_DEPTH = 100
#: Items of one ``range()``.
MAX_RANGE = 10_000
#: Loop iterations in one render, all loops together.
MAX_LOOP_ITERATIONS = 100_000
#: Bits of an integer a template computes (4,096 bits ≈ 1,233 digits).
MAX_INT_BITS = 4_096
#: Characters of one value a template builds (a string, or a list or dict as text), and
#: the largest number a filter or string method accepts as a width or count.
MAX_VALUE_CHARS = 1_000_000
#: Characters one render writes or builds, all parts together (subject, text, HTML and the
#: layout around it): each piece of output where it is written (so a macro's output counts
#: in the macro and again where it is printed), and each string or container a filter, call,
#: operator or ``~`` returns (containers by item count). This is what bounds memory when
#: every single value is within MAX_VALUE_CHARS: ``range(10000)|map('center', 999999)|join``
#: would otherwise hold 10 GB before the clock ran out. A 1,200-item digest uses 0.4 M.
MAX_OUTPUT_CHARS = 8_000_000
#: Wall-clock budget of one render, all parts together: 250 times the slowest shipped template.
RENDER_SECONDS = 0.5


class Budget:
    """What one ``render()`` may still spend; one per render, found through ``BUDGET``."""

    __slots__ = ("deadline", "iterations", "produced")

    def __init__(self) -> None:
        self.deadline = time.monotonic() + RENDER_SECONDS
        self.iterations = 0
        self.produced = 0


#: The running render's budget. A context variable, so concurrent renders in threads
#: (``asyncio.to_thread`` in the API) each see their own; None while Jinja folds constants
#: at compile time, when only the size checks apply.
BUDGET: ContextVar[Budget | None] = ContextVar("template_budget", default=None)


def tick() -> Budget | None:
    budget = BUDGET.get()
    if budget is not None and time.monotonic() > budget.deadline:
        raise TemplateLimitError(f"rendering took longer than {RENDER_SECONDS} s (time limit)")
    return budget


def charge(size: int) -> None:
    """Count characters written or built against MAX_OUTPUT_CHARS (no clock: whatever
    repeats a write or a step, a loop or a call, checks it already)."""
    budget = BUDGET.get()
    if budget is not None:
        budget.produced += size
        if budget.produced > MAX_OUTPUT_CHARS:
            raise TemplateLimitError(f"more than {MAX_OUTPUT_CHARS:,} characters written or built (output size limit)")


def weight(value: Any) -> int:
    """About how many characters ``value`` makes as text, counting what containers hold;
    stops counting past MAX_VALUE_CHARS, so it costs at most that many steps."""
    total, stack = 0, [value]
    while stack and total <= MAX_VALUE_CHARS:
        item = stack.pop()
        if isinstance(item, str):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset)):
            total += 2 + 2 * len(item)
            stack.extend(item)
        elif isinstance(item, dict):
            total += 2 + 4 * len(item)
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, int):
            total += item.bit_length() // 3 + 1
        else:
            total += 8
    return total


def check_size(size: int, what: str) -> None:
    if size > MAX_VALUE_CHARS:
        raise TemplateLimitError(f"{what} too large: more than {MAX_VALUE_CHARS:,} characters (value size limit)")


def check_int(value: Any) -> Any:
    if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
        raise TemplateLimitError(f"number too large: more than {MAX_INT_BITS:,} bits (integer size limit)")
    return value


def check_result(value: Any, what: str) -> Any:
    """After a step: a string or container past the value limit, or an integer past the bit limit, fails;
    its size is charged to the render. Shallow (``len``), so it is cheap; the steps that can multiply
    sizes are checked before they run."""
    if isinstance(value, (str, list, tuple, dict, set, frozenset)):
        check_size(len(value), what)
        charge(len(value))
    return check_int(value)


def check_int_args(args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> None:
    for arg in (*args, *kwargs.values()):
        if isinstance(arg, int) and abs(arg) > MAX_VALUE_CHARS:
            raise TemplateLimitError(
                f"{what}: argument {arg} too large (value size limit: at most {MAX_VALUE_CHARS:,})"
            )


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[#0 +\-]*(\*|\d+)?(?:\.(\*|\d+))?")


def check_printf(template: Any, args: Any) -> None:
    """``'%20000000d' % 1``, ``'%*d'|format(…)``: refuse widths past the limit before formatting."""
    if not isinstance(template, str):
        return
    for width, precision in _PRINTF_SPEC.findall(template):
        for number in (width, precision):
            if number == "*" or (number and int(number) > MAX_VALUE_CHARS):
                raise TemplateLimitError(
                    f"format width {number!r} too large or computed (value size limit: at most {MAX_VALUE_CHARS:,})"
                )
    check_size(len(template) + weight(args), "formatted text")


def _text_arg(value: Any) -> int:
    return len(value) if isinstance(value, str) else len(str(value)) if isinstance(value, int) else 0


def _estimate_indent(s: Any, width: Any = 4, *_: Any, **__: Any) -> int:
    text = str(s) if isinstance(s, str) else ""
    return len(text) + (text.count("\n") + 1) * (_text_arg(width) or (width if isinstance(width, int) else 0))


def _estimate_replace(s: Any, old: Any = "", new: Any = "", *_: Any, **__: Any) -> int:
    text = s if isinstance(s, str) else ""
    return len(text) + (len(text) + 1) * _text_arg(new)


def _estimate_wordwrap(
    s: Any, width: Any = 79, break_long_words: Any = True, wrapstring: Any = None, *_: Any, **kwargs: Any
) -> int:
    text = s if isinstance(s, str) else ""
    return len(text) * (1 + _text_arg(kwargs.get("wrapstring", wrapstring) or "\n"))


def estimate_join(items: Any, separator: Any = "", *_: Any, **kwargs: Any) -> int:
    separator = kwargs.get("d", separator)
    count = len(items) if hasattr(items, "__len__") else 0
    return weight(items) + count * _text_arg(separator)


def _estimate_translate(s: Any, table: Any = None, *_: Any, **__: Any) -> int:
    longest = max((_text_arg(v) for v in table.values()), default=1) if isinstance(table, dict) else 1
    return len(s) * max(longest, 1) if isinstance(s, str) else 0


def _estimate_expandtabs(s: Any, tabsize: Any = 8, *_: Any, **kwargs: Any) -> int:
    tabsize = kwargs.get("tabsize", tabsize)
    return len(s) + s.count("\t") * (tabsize if isinstance(tabsize, int) else 0) if isinstance(s, str) else 0


def _estimate_tojson(value: Any, indent: Any = None, *_: Any, **kwargs: Any) -> int:
    indent = kwargs.get("indent", indent)
    return weight(value) * (1 + (indent if isinstance(indent, int) else _text_arg(indent)))


def _estimate_format(s: Any, *args: Any, **kwargs: Any) -> int:
    check_printf(s, (args, kwargs))
    return 0


#: Steps whose output can be much larger than their input, by filter or str-method name:
#: the size they would make, computed from their arguments before they run.
ESTIMATES: dict[str, Callable[..., int]] = {
    "indent": _estimate_indent,
    "replace": _estimate_replace,
    "wordwrap": _estimate_wordwrap,
    "join": estimate_join,
    "translate": _estimate_translate,
    "expandtabs": _estimate_expandtabs,
    "format": _estimate_format,
    "tojson": _estimate_tojson,
}
#: Filters that reshape or count a container without turning it into text: the one
#: argument they need not have weighed first (weighing a 3,000-item digest takes ~5 ms).
_STRUCTURAL_FILTERS = frozenset(
    {
        "length",
        "count",
        "first",
        "last",
        "list",
        "selectattr",
        "rejectattr",
        "select",
        "reject",
        "map",
        "sort",
        "unique",
        "dictsort",
        "groupby",
        "batch",
        "slice",
        "sum",
        "min",
        "max",
        "reverse",
        "items",
        "default",
        "d",
        "random",
    }
)


def bounded_filter(name: str, func: Any) -> Any:
    """``func`` behind the limits: time, number arguments, a size estimate for the filters that
    multiply sizes, the weight of a container it would turn into text, and its result's size."""
    skip = 1 if getattr(func, "jinja_pass_arg", None) else 0  # context / eval_ctx / environment
    estimate = ESTIMATES.get(name)

    @wraps(func)
    def bounded(*args: Any, **kwargs: Any) -> Any:
        tick()
        what = f"|{name}"
        values = args[skip:]
        check_int_args(values[1:], kwargs, what)
        if values and name not in _STRUCTURAL_FILTERS and not isinstance(values[0], str):
            check_size(weight(values[0]), f"input of {what}")
        if estimate is not None and values:
            check_size(estimate(*values, **kwargs), f"output of {what}")
        return check_result(func(*args, **kwargs), f"output of {what}")

    return bounded


def bounded_range(*args: int) -> range:
    numbers = range(*args)
    if len(numbers) > MAX_RANGE:
        raise TemplateLimitError(f"range() of {len(numbers):,} items: at most {MAX_RANGE:,} (range limit)")
    return numbers


def depth_check(tree: nodes.Template, where: str) -> None:
    """Refuse deep nesting before the compiler recurses into it (iteratively, so it cannot overflow)."""
    stack: list[tuple[nodes.Node, int, int]] = [(tree, 0, 0)]
    while stack:
        node, blocks, depth = stack.pop()
        if isinstance(
            node,
            (
                nodes.For,
                nodes.If,
                nodes.Macro,
                nodes.CallBlock,
                nodes.FilterBlock,
                nodes.With,
                nodes.Block,
                nodes.AssignBlock,
                nodes.ScopedEvalContextModifier,
            ),
        ):
            blocks += 1
            if blocks > MAX_NESTING:
                raise TemplateLimitError(
                    f"{where}, line {node.lineno}: blocks nested more than {MAX_NESTING} deep (nesting limit)"
                )
        if isinstance(node, nodes.Expr):
            depth += 1
            if depth > MAX_EXPRESSION_DEPTH:
                raise TemplateLimitError(
                    f"{where}, line {node.lineno}: expression nested more than "
                    f"{MAX_EXPRESSION_DEPTH} deep (nesting limit)"
                )
        stack.extend((child, blocks, depth if isinstance(node, nodes.Expr) else 0) for child in node.iter_child_nodes())
