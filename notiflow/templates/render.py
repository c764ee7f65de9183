"""Rendering a template: ``TemplateSource`` in, ``Rendered`` (subject, text, HTML) out.

Templates are edited by administrators through the API, so a template is untrusted
code running inside the worker: it is rendered in the bounded sandbox (``sandbox``)
within one budget (``limits``); any failure is a ``TemplateError`` naming part and
line, which the delivery activities treat as permanent. An e-mail's HTML part is its
text body in the shared layout (``layout.html.j2``) with the CSS inlined, unless the
template has an HTML part of its own. Rendering does no I/O: the layout is read once
at import and CSS is inlined without fetching remote stylesheets.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from importlib import resources
from itertools import groupby
from typing import Any

import css_inline
from jinja2.sandbox import SecurityError
from jinja2.utils import urlize
from markupsafe import Markup, escape
from pydantic import BaseModel, ConfigDict

from notiflow.contracts import Channel, NotificationType
from notiflow.templates.errors import TemplateError, TemplateLimitError
from notiflow.templates.limits import BUDGET, Budget
from notiflow.templates.locales import locale_documents
from notiflow.templates.sandbox import compile_part

#: Every template set covers these; DIGEST bundles the others for digest subscribers.
TEMPLATE_TYPES: tuple[str, ...] = (*(t.value for t in NotificationType), "DIGEST")
SUBJECT_MAX = 255
#: The sig-dash line ("-- ") that separates an email body from its footer.
FOOTER_MARK = "-- "


class TemplateSource(BaseModel):
    """One template as stored (a notification_templates row or a default from YAML)."""

    model_config = ConfigDict(frozen=True)

    name: str
    notification_type: str
    channel: str
    locale: str
    subject_template: str | None
    body_template: str
    html_template: str | None = None
    version: int = 1


@dataclass(frozen=True)
class Rendered:
    subject: str | None
    text: str
    html: str | None


def template_name(notification_type: str, channel: str, locale: str) -> str:
    return f"{notification_type}.{channel}.{locale}"


def _template_line(exc: BaseException, where: str) -> int | None:
    """Jinja rewrites tracebacks so template frames carry the template's line number."""
    line, tb = None, exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == where:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _run(source: TemplateSource, part: str, text: str, context: dict[str, Any]) -> str:
    tpl = compile_part(source.name, source.version, part, source.locale, text)
    try:
        return tpl.render(context)
    except Exception as exc:
        where = f"{source.name} ({part})"
        line = _template_line(exc, where)
        at = f"{where}{f', line {line}' if line else ''}: "
        if isinstance(exc, TemplateLimitError):
            raise TemplateLimitError(f"{at}{exc}") from None
        if isinstance(exc, RecursionError):
            raise TemplateLimitError(f"{at}calls nested too deeply (recursion limit)") from None
        kind = "forbidden by the sandbox: " if isinstance(exc, SecurityError) else ""
        raise TemplateError(f"{at}{kind}{exc}") from exc


# --------------------------------------------------------------------------- e-mail HTML

#: The e-mail layout's button, per language: (to the issue, to the tracker).
_BUTTON = {lang: (doc["button"]["view"], doc["button"]["home"]) for lang, doc in locale_documents().items()}
_LAYOUT = resources.files(__package__).joinpath("layout.html.j2").read_text(encoding="utf-8")
_LAYOUT_SOURCE = TemplateSource(
    name="layout",
    notification_type="DIGEST",
    channel="EMAIL",
    locale="en",
    subject_template=None,
    body_template="",
    html_template=_LAYOUT,
)

_INLINER = css_inline.CSSInliner(load_remote_stylesheets=False, keep_link_tags=False)


def _tidy(text: str) -> str:
    """Trim trailing spaces (but keep the "-- " footer mark) and runs of blank lines."""
    lines = [line if line == FOOTER_MARK else line.rstrip() for line in text.strip().splitlines()]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines))


def _one_line(text: str) -> str:
    subject = " ".join(text.split())
    return subject if len(subject) <= SUBJECT_MAX else subject[: SUBJECT_MAX - 1].rstrip() + "…"


def _linkify(line: str) -> Markup:
    """Escaped text with its URLs as links; urlize is slow, so only lines that may hold one pay for it."""
    if "://" in line or "www." in line or "@" in line:
        return Markup(urlize(line, rel="noopener"))
    return escape(line)


def _paragraphs(text: str) -> Markup:
    """Plain text -> escaped HTML: blank lines split paragraphs, runs of "- " lines become
    lists, URLs become links."""
    blocks = re.split(r"\n\s*\n", text.strip())
    return Markup("\n").join(_kept_paragraph(b) if len(b) <= KEPT_PARAGRAPH else _paragraph(b) for b in blocks)


#: Paragraphs up to this long are kept once made (``_kept_paragraph``): at most ~12 MB (text and HTML) for the 1,024 kept.
KEPT_PARAGRAPH = 4096


def _paragraph(block: str) -> Markup:
    """One paragraph's HTML."""
    html = []
    lines = [line.strip() for line in block.splitlines() if line.strip()]
    for bullet, run in groupby(lines, key=lambda line: line.startswith("- ")):
        cells = [_linkify(line[2:] if bullet else line) for line in run]
        if bullet:
            items = Markup("\n").join(Markup("<li>{}</li>").format(cell) for cell in cells)
            html.append(Markup("<ul>\n{}\n</ul>").format(items))
        else:
            html.append(Markup("<p>{}</p>").format(Markup("<br>\n").join(cells)))
    return Markup("\n").join(html)


#: The recipients of one event share most of their paragraphs (only the greeting and the unsubscribe link
#: differ), and linking URLs was a third of rendering an e-mail (bench/PROFILE.md).
_kept_paragraph = functools.lru_cache(maxsize=1024)(_paragraph)


def _inline_css(html: str) -> str:
    try:
        return _INLINER.inline(html)
    except css_inline.InlineError as exc:
        raise TemplateError(f"cannot inline the email's CSS: {exc}") from None


def _email_html(source: TemplateSource, subject: str | None, text: str, context: dict[str, Any]) -> str:
    body, _, footer = text.partition(f"\n{FOOTER_MARK}\n")
    content = _paragraphs(body)
    if source.html_template:
        custom = _run(source, "html", source.html_template, context)
        if re.search(r"<html[\s>]", custom, re.I):
            return _inline_css(custom)
        content = Markup(custom)
    lang = source.locale.split("-")[0].lower()
    view, home = _BUTTON.get(lang, _BUTTON["en"])
    html = _run(
        _LAYOUT_SOURCE,
        "html",
        _LAYOUT,
        {
            "lang": source.locale,
            "subject": subject,
            "content": content,
            "footer": _paragraphs(footer) if footer.strip() else None,
            "button_url": context.get("issue_url") or context.get("app_url"),
            "button_label": view if context.get("issue_url") else home,
        },
    )
    return _inline_css(html)


def render(source: TemplateSource, context: dict[str, Any]) -> Rendered:
    """Render every part of a template within one budget (see ``limits``); any failure
    is a TemplateError naming part and line, a TemplateLimitError when a limit was reached.

    CPU-bound for up to RENDER_SECONDS: call it from a thread when an event loop must keep
    answering (the API does)."""
    token = BUDGET.set(Budget())
    try:
        subject = None
        if source.subject_template is not None:
            subject = _one_line(_run(source, "subject", source.subject_template, context))
        text = _tidy(_run(source, "body", source.body_template, context))
        html = _email_html(source, subject, text, context) if source.channel == Channel.EMAIL else None
    finally:
        BUDGET.reset(token)
    return Rendered(subject=subject, text=text, html=html)
