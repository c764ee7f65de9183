"""One-click unsubscribe from e-mail links (no login; the signed token says who and what).

GET only shows a confirmation form: mail scanners and link previews fetch
links, and must not unsubscribe anyone. POST does it; it is also what mail
clients send for RFC 8058 one-click (body ``List-Unsubscribe=One-Click``).
"""

from __future__ import annotations

import contextlib
from html import escape

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert

from notiflow.contracts import CRITICAL_TYPES, Channel, NotificationType
from notiflow.engagement import EngagementKind, record_engagement
from notiflow.models import NotificationPreferenceRow, UserRow
from notiflow.settings import Settings
from notiflow.tokens import InvalidUnsubscribeToken, UnsubscribeRequest, read_unsubscribe_token
from programs.api.auth import Responses
from programs.api.deps import AppSettings, Session

_HTML = {"text/html": {"schema": {"type": "string"}}}
#: For /docs: refusals are pages for a person who clicked a link, not JSON.
_REFUSAL_PAGES: Responses = {
    400: {"description": "a page explaining why: tampered or expired link, or a critical type", "content": _HTML},
    404: {"description": "a page saying the person is no longer in the directory", "content": _HTML},
}
router = APIRouter(prefix="/api/v1/notifications/unsubscribe", tags=["unsubscribe"], responses=_REFUSAL_PAGES)

_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;padding:0 1rem;color:#222}}
button{{font-size:1rem;padding:.6rem 1.2rem;border:0;border-radius:.3rem;background:#1f5fbf;color:#fff;cursor:pointer}}
a{{color:#1f5fbf}}</style></head>
<body><h1>{title}</h1>{body}<p><a href="{app_url}">Open the issue tracker</a></p></body></html>
"""


class _Refusal(Exception):
    def __init__(self, status: int, title: str, message: str):
        self.status, self.title, self.message = status, title, message


def _page(settings: Settings, title: str, body_html: str, status: int = 200) -> HTMLResponse:
    html = _PAGE.format(title=escape(title), body=body_html, app_url=escape(settings.app_url, quote=True))
    return HTMLResponse(html, status_code=status)


def _describe(request: UnsubscribeRequest) -> str:
    kind = request.notification_type.replace("_", " ").lower()
    return f"“{kind}” notifications by {request.channel.replace('_', '-').lower()}"


def _checked(settings: Settings, token: str) -> UnsubscribeRequest:
    """The token's request if it can be honoured; _Refusal with a page's worth of explanation if not."""
    try:
        request = read_unsubscribe_token(settings.jwt_secret, token)
    except InvalidUnsubscribeToken as exc:
        raise _Refusal(400, "This link does not work", f"{exc}.") from None
    if request.notification_type not in NotificationType.__members__ or request.channel not in Channel.__members__:
        raise _Refusal(400, "This link does not work", "It names a kind of notification that no longer exists.")
    if request.notification_type in CRITICAL_TYPES:
        raise _Refusal(
            400,
            "These notifications cannot be turned off",
            f"{_describe(request).capitalize()} report production being down, so everyone responsible "
            "receives them. Ask an administrator if you should not be on the list.",
        )
    return request


def _refused(settings: Settings, refusal: _Refusal) -> HTMLResponse:
    return _page(settings, refusal.title, f"<p>{escape(refusal.message)}</p>", refusal.status)


@router.get("/{token}", response_class=HTMLResponse, summary="Confirmation page for an unsubscribe link")
async def confirm_unsubscribe(token: str, request: Request, settings: AppSettings) -> HTMLResponse:
    try:
        wanted = _checked(settings, token)
    except _Refusal as refusal:
        return _refused(settings, refusal)
    form = (
        f"<p>Stop receiving {escape(_describe(wanted))}?</p>"
        f'<form method="post" action="{escape(request.url.path, quote=True)}">'
        '<input type="hidden" name="List-Unsubscribe" value="One-Click">'
        '<button type="submit">Unsubscribe</button></form>'
    )
    return _page(settings, "Unsubscribe", form)


@router.post("/{token}", response_class=HTMLResponse, summary="Unsubscribe (also RFC 8058 one-click)")
async def unsubscribe(token: str, session: Session, settings: AppSettings) -> HTMLResponse:
    try:
        wanted = _checked(settings, token)
    except _Refusal as refusal:
        return _refused(settings, refusal)
    if await session.get(UserRow, wanted.user_id) is None:
        return _page(
            settings,
            "Nothing to unsubscribe",
            "<p>This address is no longer in our directory, so it receives nothing.</p>",
            404,
        )
    statement = insert(NotificationPreferenceRow).values(
        user_id=wanted.user_id,
        notification_type=wanted.notification_type,
        delivery_method=wanted.channel,
        is_enabled=False,
    )
    await session.execute(
        statement.on_conflict_do_update(
            index_elements=["user_id", "notification_type", "delivery_method"],
            set_={"is_enabled": False, "updated_at": func.now()},
        )
    )
    if wanted.queue_id:  # links issued before queue ids were signed in have none
        with contextlib.suppress(ValueError):
            await record_engagement(session, wanted.queue_id, EngagementKind.UNSUBSCRIBED)
    await session.commit()
    return _page(
        settings,
        "You are unsubscribed",
        f"<p>You will no longer receive {escape(_describe(wanted))}. "
        "You can turn them back on in your notification settings.</p>",
    )
