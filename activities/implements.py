"""``@implements(declared)``: register a method as the body of an activity declared in ``workflows/``.

The workflow layer declares each activity it calls (``workflows/<feature>/interface.py``: name and types);
the bodies live here, on classes that hold the worker's resources. ``implements`` gives the method the
declared name and refuses, when the worker imports it, a body whose parameter or result types differ
from the declaration — so a workflow's typed call and the worker's activity cannot drift apart.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any, TypeVar

from temporalio import activity

F = TypeVar("F", bound=Callable[..., Any])


class ActivityMismatch(TypeError):
    """A body's signature differs from its declaration."""


def implements(declared: Callable[..., Any]) -> Callable[[F], F]:
    name = activity._Definition.must_from_callable(declared).name

    def register(method: F) -> F:
        wanted = _types(declared, skip_self=False)
        found = _types(method, skip_self=True)
        if wanted != found:
            raise ActivityMismatch(
                f"{method.__qualname__} implements activity {name!r} declared as "
                f"{_show(wanted)} but takes {_show(found)}"
            )
        return activity.defn(name=name)(method)

    return register


def _types(function: Callable[..., Any], *, skip_self: bool) -> tuple[list[Any], Any]:
    hints = typing.get_type_hints(function)
    parameters = list(inspect.signature(function).parameters)[1 if skip_self else 0 :]
    return [hints.get(p) for p in parameters], hints.get("return")


def _show(types: tuple[list[Any], Any]) -> str:
    arguments, result = types
    return f"({', '.join(getattr(t, '__name__', str(t)) for t in arguments)}) -> {getattr(result, '__name__', result)}"
