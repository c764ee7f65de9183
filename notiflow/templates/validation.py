"""Save-time checks: refuse, with a message naming the line, a template that could fail or
escape at send time (syntax, unknown variables or keys, sandbox-escape constructs, limits),
then render it against a full and a sparse sample.
"""

from __future__ import annotations

import re
from typing import Any

from jinja2 import meta, nodes

from notiflow.contracts import Channel
from notiflow.templates.errors import TemplateError
from notiflow.templates.render import TEMPLATE_TYPES, TemplateSource, render
from notiflow.templates.samples import sample_context
from notiflow.templates.sandbox import FORMAT_METHODS, HTML_ENV, TEXT_ENV, compile_part, parse_part

#: Roots whose keys are free-form: templates reach them with ``.get`` and ``is defined``.
_FREE_FORM = frozenset({"context", "changes"})


def _sparse(ctx: dict[str, Any]) -> dict[str, Any]:
    """The same context with every optional part absent: templates must cope with None."""
    sparse = ctx | {"actor": None, "unsubscribe_url": None}
    if sparse["issue"] is not None:
        keep_assignee = ctx["notification_type"] == "ISSUE_ASSIGNED"
        sparse["issue"] = sparse["issue"] | {
            "reporter": None,
            "description": None,
            "resolution_notes": None,
            "category": None,
            "assignee": sparse["issue"]["assignee"] if keep_assignee else None,
        }
    if sparse["comment"] is not None:
        sparse["comment"] = sparse["comment"] | {"author": None, "id": None}
    return sparse


def _merge(value: Any, full: Any) -> Any:
    if value is None:
        return full
    if isinstance(value, dict) and isinstance(full, dict):
        return {k: _merge(value.get(k), full.get(k)) for k in {**full, **value}}
    return value


def _parts(source: TemplateSource) -> list[tuple[str, str]]:
    parts = [("subject", source.subject_template), ("body", source.body_template), ("html", source.html_template)]
    return [(part, text) for part, text in parts if text is not None]


def _path(node: nodes.Node) -> list[str] | None:
    """``issue.reporter['name']`` -> ["issue", "reporter", "name"]; None if not a plain path."""
    keys: list[str] = []
    while isinstance(node, (nodes.Getattr, nodes.Getitem)):
        if isinstance(node, nodes.Getattr):
            keys.append(node.attr)
        elif isinstance(node.arg, nodes.Const) and isinstance(node.arg.value, str):
            keys.append(node.arg.value)
        else:
            return None
        node = node.node
    return [node.name, *reversed(keys)] if isinstance(node, nodes.Name) else None


def _check_forbidden(tree: nodes.Template, where: str) -> None:
    """Refuse the constructs sandbox escapes are built from, with the line they are on."""
    for node in tree.find_all(nodes.Node):
        problem = None
        if isinstance(node, nodes.Name) and node.name.startswith("_"):
            problem = f"names starting with '_' are not allowed ({node.name!r})"
        elif isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            problem = f"attributes starting with '_' are not allowed ({node.attr!r})"
        elif isinstance(node, nodes.Getattr) and node.attr in FORMAT_METHODS:
            problem = f"str.{node.attr}() is not allowed; use the |format filter"
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            problem = f"keys starting with '_' are not allowed ({node.arg.value!r})"
        elif isinstance(node, nodes.Filter) and node.name == "attr":
            problem = "the 'attr' filter is not allowed"
        elif (
            isinstance(node, nodes.Keyword)
            and node.key == "attribute"
            and isinstance(node.value, nodes.Const)
            and re.search(r"(^|\.)_", str(node.value.value))
        ):
            problem = f"attribute names starting with '_' are not allowed ({node.value.value!r})"
        if problem:
            raise TemplateError(f"{where}, line {node.lineno}: {problem}")


def _check_names(tree: nodes.Template, shape: dict[str, Any], where: str) -> None:
    """Unknown variables, and unknown keys under known ones (even in branches the trial render skips)."""
    known = set(shape) | set(TEXT_ENV.globals) | {"locale"}
    unknown = meta.find_undeclared_variables(tree) - known
    if unknown:
        first = min((n for n in tree.find_all(nodes.Name) if n.name in unknown), key=lambda n: n.lineno)
        raise TemplateError(
            f"{where}, line {first.lineno}: unknown variable {first.name!r} (known: {', '.join(sorted(shape))})"
        )
    bound = {n.name for n in tree.find_all(nodes.Name) if n.ctx in ("store", "param")}
    for node in tree.find_all((nodes.Getattr, nodes.Getitem)):
        path = _path(node)
        if not path or path[0] in bound or path[0] in _FREE_FORM or path[0] not in shape:
            continue
        value: Any = shape
        for i, key in enumerate(path):
            if not isinstance(value, dict):
                break
            if key not in value:
                if hasattr(dict, key):  # .get, .items, ... on a known mapping
                    break
                raise TemplateError(f"{where}, line {node.lineno}: unknown variable {'.'.join(path[: i + 1])!r}")
            value = value[key]


def validate_template(source: TemplateSource) -> None:
    """Refuse, with a message naming the line, a template that could fail or escape at send time."""
    if source.notification_type not in TEMPLATE_TYPES:
        raise TemplateError(f"{source.name}: unknown notification type {source.notification_type!r}")
    if source.channel not in Channel.__members__:
        raise TemplateError(f"{source.name}: unknown channel {source.channel!r}")
    if source.channel == Channel.EMAIL and not (source.subject_template or "").strip():
        raise TemplateError(f"{source.name}: an EMAIL template needs a subject")
    sample = sample_context(source.notification_type)
    shape = _merge(sample, sample_context("ISSUE_COMMENT_ADDED") | {"data": {}})
    for part, text in _parts(source):
        env = HTML_ENV if part == "html" else TEXT_ENV
        where = f"{source.name} ({part})"
        tree = parse_part(env, text, where)
        _check_forbidden(tree, where)
        compile_part(source.name, source.version, part, source.locale, text)  # unknown filters/tests
        _check_names(tree, shape, where)
    for ctx in (sample, _sparse(sample)):
        render(source, ctx)
