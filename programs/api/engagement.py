"""Engagement reported back: wrapped links (GET /r/{code}), the open pixel (GET /o/{code}.gif) and the bell's
reports (POST /notifications/inbox/seen, POST /notifications/inbox/{id}/click). Every one records through
``notiflow.engagement.record_engagement``; SQL in ``engagement_queries``.

/r/ and /o/ need no login (they are in mail); they answer only for codes stored at planning time, and the
redirect goes to the stored target whatever the request says: no open redirect.
"""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone
from html import escape

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, Field

from notiflow.engagement import EngagementKind, is_machine_open, record_engagement
from programs.api import engagement_queries as queries
from programs.api.auth import SIGNED_IN_ERRORS, CurrentUser
from programs.api.deps import AppSettings, Session
from programs.api.errors import VALIDATION_ERRORS
from programs.api.inbox import mark_read_row
from programs.api.schemas import _Request

router = APIRouter(tags=["engagement"])
inbox_router = APIRouter(
    prefix="/api/v1/notifications/inbox", tags=["inbox"], responses={**SIGNED_IN_ERRORS, **VALIDATION_ERRORS}
)

#: A transparent 1×1 GIF.
PIXEL = base64.b64decode("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7")
_NO_STORE = {"Cache-Control": "no-store, private", "Referrer-Policy": "no-referrer"}
_NOT_FOUND = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Link not found</title><style>body{{font-family:system-ui,sans-serif;max-width:34rem;margin:4rem auto;
padding:0 1rem;color:#222}}a{{color:#1f5fbf}}</style></head>
<body><h1>This link does not work</h1><p>It may have been mistyped, or it is too old.</p>
<p><a href="{app_url}">Open the issue tracker</a></p></body></html>
"""


def _not_found(app_url: str) -> HTMLResponse:
    return HTMLResponse(_NOT_FOUND.format(app_url=escape(app_url, quote=True)), status_code=404, headers=_NO_STORE)


@router.get(
    "/r/{code}",
    response_class=RedirectResponse,
    status_code=302,
    summary="A wrapped link: 302 to the link stored for this code, recording CLICKED",
    responses={302: {"description": "to the stored target"}, 404: {"description": "unknown code (an HTML page)"}},
)
async def follow_link(code: str, session: Session, settings: AppSettings) -> Response:
    link = await queries.link_for(session, code) if len(code) <= 64 else None
    if link is None:
        return _not_found(settings.app_url)
    await record_engagement(session, link.queue_id, EngagementKind.CLICKED, detail={"link": link.link})
    await session.commit()
    return RedirectResponse(link.target, status_code=302, headers=_NO_STORE)


@router.get(
    "/o/{code}.gif",
    response_class=Response,
    summary="The open pixel (NOTIFLOW_TRACK_OPENS only): a 1×1 GIF, recording OPENED",
    responses={200: {"content": {"image/gif": {}}}, 404: {"description": "opens are not tracked, or unknown code"}},
)
async def open_pixel(code: str, request: Request, session: Session, settings: AppSettings) -> Response:
    if not settings.track_opens:
        return Response(status_code=404, headers=_NO_STORE)
    link = await queries.link_for(session, code, pixel=True) if len(code) <= 64 else None
    if link is None:
        return Response(status_code=404, headers=_NO_STORE)
    now = datetime.now(timezone.utc)
    sent = await queries.sent_at(session, link.queue_id)
    machine = is_machine_open(request.headers.get("user-agent"), request.client.host if request.client else None)
    if sent is not None and (now - sent).total_seconds() < settings.machine_open_seconds:
        machine = True
    await record_engagement(session, link.queue_id, EngagementKind.OPENED, detail={"machine": machine}, at=now)
    await session.commit()
    return Response(PIXEL, media_type="image/gif", headers=_NO_STORE)


class SeenRequest(_Request):
    ids: list[uuid.UUID] = Field(max_length=200, description="inbox notification ids the bell showed")


class SeenResult(BaseModel):
    recorded: int = Field(description="how many of them were the caller's own (others are ignored)")


@inbox_router.post("/seen", response_model=SeenResult, summary="The bell showed these notifications: records SEEN")
async def seen(body: SeenRequest, principal: CurrentUser, session: Session) -> SeenResult:
    queue_ids = await queries.own_inbox_rows(session, principal.user_id, list(dict.fromkeys(body.ids)))
    for queue_id in queue_ids:
        await record_engagement(session, queue_id, EngagementKind.SEEN)
    await session.commit()
    return SeenResult(recorded=len(queue_ids))


class ClickResult(BaseModel):
    id: uuid.UUID
    link: str | None = Field(description="where the bell sends the person")
    read_at: datetime | None


@inbox_router.post(
    "/{notification_id}/click",
    response_model=ClickResult,
    summary="'View issue' was clicked in the bell: records CLICKED and marks the notification read (records READ)",
)
async def click(notification_id: uuid.UUID, principal: CurrentUser, session: Session) -> ClickResult:
    row = await mark_read_row(session, principal.user_id, notification_id)
    if row is None:
        raise HTTPException(404, f"notification {notification_id} is not in your inbox")
    if row.queue_id is not None:
        await record_engagement(session, row.queue_id, EngagementKind.CLICKED, detail={"link": "issue"})
    await session.commit()
    return ClickResult(id=row.id, link=row.link, read_at=row.read_at)
