"""Templates in the database, as the activities use them: rows ↔ sources, the active set (read
through the activities' 5-second snapshot), picked by locale, rendered; and the shipped defaults
seeded into the table (``notiflow migrate``).

"Pick the template, else FAILED; render it, else FAILED" is one function,
``render_for``, shared by the delivery plan and the digest. The only module of this package
that imports SQLAlchemy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from notiflow.models import NotificationTemplateRow, UserRow
from notiflow.settings import Settings
from notiflow.templates.defaults import load_default_templates
from notiflow.templates.errors import TemplateError
from notiflow.templates.render import Rendered, TemplateSource, render, template_name


async def load_active_templates(session: AsyncSession) -> dict[str, TemplateSource]:
    rows = (await session.execute(select(NotificationTemplateRow).where(NotificationTemplateRow.is_active))).scalars()
    return {r.name: template_source(r) for r in rows}


def template_source(row: NotificationTemplateRow) -> TemplateSource:
    return TemplateSource(
        name=row.name,
        notification_type=row.notification_type,
        channel=row.template_type,
        locale=row.locale,
        subject_template=row.subject_template,
        body_template=row.body_template,
        html_template=row.html_template,
        version=row.version,
    )


def pick_template(templates: dict[str, TemplateSource], notification_type, channel, locale: str | None):
    """The recipient's language, else its base language, else English."""
    for candidate in (locale or "en", (locale or "en").split("-")[0], "en"):
        source = templates.get(template_name(str(notification_type), str(channel), candidate))
        if source is not None:
            return source
    return None


def render_or_reason(source: TemplateSource, context: dict[str, Any]) -> tuple[Rendered | None, str | None]:
    """The rendered parts, or why the template failed: a permanent failure of that one row, not the batch."""
    try:
        return render(source, context), None
    except TemplateError as exc:
        return None, f"template {source.name} v{source.version}: {exc}"


@dataclass(frozen=True)
class RenderOutcome:
    template_name: str
    rendered: Rendered | None
    #: why the row cannot be sent (no template, or it failed to render); None when rendered
    failure: str | None

    def row_fields(self) -> dict[str, Any]:
        """The queue row's template and content columns."""
        rendered = self.rendered
        return {
            "template_name": self.template_name,
            "subject": (rendered.subject or "")[:255] if rendered else None,
            "content": rendered.text if rendered else "",
            "html_content": rendered.html if rendered else None,
        }


def render_for(
    templates: dict[str, TemplateSource], notification_type, channel, locale: str | None, context: dict[str, Any]
) -> RenderOutcome:
    """Pick the template for the recipient's language and render it; a missing or failing one is the reason."""
    source = pick_template(templates, notification_type, channel, locale)
    if source is None:
        return RenderOutcome(
            template_name(str(notification_type), str(channel), "en"),
            None,
            f"no active template for {notification_type} on {channel}",
        )
    rendered, failure = render_or_reason(source, context)
    return RenderOutcome(source.name, rendered, failure)


def recipient_context(user: UserRow, settings: Settings) -> dict[str, Any]:
    """The ``recipient`` every template sees."""
    return {
        "id": user.id,
        "name": user.name,
        "email": user.email,
        "locale": user.locale,
        "timezone": user.timezone or settings.timezone,
    }


def display_name(source: TemplateSource) -> str:
    """How a shipped template is listed: "Issue Created (EMAIL, fr)"."""
    return f"{source.notification_type.replace('_', ' ').title()} ({source.channel}, {source.locale})"


def sms_default_templates() -> list[TemplateSource]:
    """The shipped SMS and PUSH templates: the ``SMS: {body}`` / ``PUSH: {subject, body}`` entries of each type.

    SMS and PUSH are opt-in channels (and a critical notification's fallback), so these are seeded
    beside the default channels' templates rather than counted among them. A PUSH subject is the title.
    """
    from notiflow.templates.locales import locale_documents

    return [
        TemplateSource(
            name=template_name(ntype, channel, locale),
            notification_type=ntype,
            channel=channel,
            locale=locale,
            subject_template=spec[channel]["subject"].strip() if spec[channel].get("subject") else None,
            body_template=spec[channel]["body"].strip() + "\n",
        )
        for locale, doc in locale_documents().items()
        for ntype, spec in doc["templates"].items()
        for channel in ("SMS", "PUSH")
        if channel in spec
    ]


async def seed_templates(sessions: async_sessionmaker[AsyncSession]) -> int:
    """Insert each default template that has no version yet; edited templates are left alone."""
    defaults = [*load_default_templates(), *sms_default_templates()]
    async with sessions.begin() as session:
        present = set((await session.execute(select(NotificationTemplateRow.name))).scalars())
        missing = [t for t in defaults if t.name not in present]
        if missing:
            await session.execute(
                insert(NotificationTemplateRow)
                .values(
                    [
                        {
                            "name": t.name,
                            "display_name": display_name(t),
                            "description": "default template shipped with notiflow",
                            "template_type": t.channel,
                            "notification_type": t.notification_type,
                            "locale": t.locale,
                            "subject_template": t.subject_template,
                            "body_template": t.body_template,
                            "html_template": t.html_template,
                            "version": 1,
                            "created_by": "notiflow",
                        }
                        for t in missing
                    ]
                )
                .on_conflict_do_nothing()
            )
    return len(missing)
