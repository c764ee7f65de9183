"""The shipped templates (``en.yaml``, ``fr.yaml``): every type × default channel × locale.

Email bodies get a footer appended here: a "-- " line, the type's ``reason``, then the
locale's ``unsubscribe`` text. ``notiflow migrate`` adds the missing ones to the database
(``store.seed_templates``).
"""

from __future__ import annotations

from functools import lru_cache

from notiflow.contracts import DEFAULT_CHANNELS
from notiflow.templates.locales import locale_documents
from notiflow.templates.render import FOOTER_MARK, TemplateSource, template_name


@lru_cache(maxsize=1)
def _defaults() -> tuple[TemplateSource, ...]:
    sources = []
    for locale, doc in locale_documents().items():
        for ntype, spec in doc["templates"].items():
            for channel in map(str, DEFAULT_CHANNELS):
                part = spec[channel]
                body = part["body"].rstrip() + "\n"
                if channel == "EMAIL":  # every email ends with why it was sent and how to stop it
                    body += f"\n{FOOTER_MARK}\n{spec['reason'].strip()}\n{doc['unsubscribe'].strip()}\n"
                sources.append(
                    TemplateSource(
                        name=template_name(ntype, channel, locale),
                        notification_type=ntype,
                        channel=channel,
                        locale=locale,
                        subject_template=part["subject"].strip(),
                        body_template=body,
                    )
                )
    return tuple(sources)


def load_default_templates() -> list[TemplateSource]:
    """The shipped templates: every type × EMAIL/IN_APP × locale."""
    return list(_defaults())
