"""The filters templates get besides Jinja's own: ``datetime`` (in the recipient's time zone),
``hours`` (a duration given in hours), ``number`` (locale decimal mark) and ``label`` (an enum
value such as a priority, status or notification type in the template's language).

Labels and date formats come from the locale files (``labels``, ``datetime_format``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from jinja2 import pass_context
from jinja2.runtime import Context

from notiflow.templates.locales import locale_documents

_LABELS: dict[str, dict[str, str]] = {lang: dict(doc.get("labels") or {}) for lang, doc in locale_documents().items()}
_DATETIME_FORMATS: dict[str, str] = {lang: doc["datetime_format"] for lang, doc in locale_documents().items()}


def _locale(ctx: Context) -> str:
    return str(ctx.get("locale") or "en").split("-")[0].lower()


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo | None:
    try:
        return ZoneInfo(name)
    except Exception:  # a bad time zone in the directory must not lose the message
        return None


@pass_context
def _f_datetime(ctx: Context, value: Any, fmt: str | None = None) -> str:
    """ISO string or datetime -> text, in the recipient's time zone when known."""
    if value is None or value == "":
        return ""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    recipient = ctx.get("recipient")
    zone = _zone(recipient.get("timezone") or "") if isinstance(recipient, dict) else None
    if zone is not None:
        moment = moment.astimezone(zone)
    return moment.strftime(fmt or _DATETIME_FORMATS.get(_locale(ctx), _DATETIME_FORMATS["en"])).strip()


@pass_context
def _f_hours(ctx: Context, value: Any) -> str:
    """A duration in hours -> "2 d 3 h" / "2 j 3 h", "5 h 30 min", "45 min"."""
    if value is None:
        return "—"
    days, rest = divmod(round(float(value) * 60), 24 * 60)
    hours, minutes = divmod(rest, 60)
    parts = [f"{days} {'j' if _locale(ctx) == 'fr' else 'd'}"] if days else []
    parts += [f"{hours} h"] if hours else []
    parts += [f"{minutes} min"] if minutes and not days else []
    return " ".join(parts) or "0 min"


@pass_context
def _f_number(ctx: Context, value: Any, digits: int = 1) -> str:
    if value is None:
        return "—"
    text = f"{float(value):.{int(digits)}f}"
    return text.replace(".", ",") if _locale(ctx) == "fr" else text


@pass_context
def _f_label(ctx: Context, value: Any) -> str:
    """Enum value -> words in the template's language; unknown values read as words too."""
    if value is None:
        return "—"
    raw = str(value)
    return _LABELS.get(_locale(ctx), {}).get(raw) or raw.replace("_", " ").capitalize()


#: Added to both environments (``sandbox``), each behind the limits.
FILTERS = {"datetime": _f_datetime, "hours": _f_hours, "number": _f_number, "label": _f_label}
