"""Engagement: what recipients do with what notiflow delivered (issue 17 §1).

One recording function for every source — the inbox routes (SEEN, READ, ARCHIVED, CLICKED), the wrapped
links (CLICKED), the open pixel (OPENED), one-click unsubscribe (UNSUBSCRIBED), bounces and complaints
(BOUNCED, COMPLAINED): ``record_engagement``. One row per queue row and kind; the first time wins and a
repeat raises ``count`` and ``last_at``. The recipient and channel are copied from the queue row, so a
caller names only the row.

Link wrapping happens after rendering, on the planned rows (``wrap_links``): each link notiflow put in an
EMAIL, SMS, Slack or Teams message is replaced by ``{public_api_url}/r/{code}``, a random code per (row,
link) whose target is stored (``save_tracked_links``, after the rows are inserted). The unsubscribe link
is never wrapped; IN_APP rows and generic webhooks keep the raw link (the bell reports its own clicks; a
webhook is read by a program).
"""

from __future__ import annotations

import enum
import html
import ipaddress
import json
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import DateTime, bindparam, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.ext.asyncio import AsyncSession

from notiflow.settings import Settings


class EngagementKind(enum.StrEnum):
    SEEN = "SEEN"
    READ = "READ"
    CLICKED = "CLICKED"
    ARCHIVED = "ARCHIVED"
    OPENED = "OPENED"
    BOUNCED = "BOUNCED"
    COMPLAINED = "COMPLAINED"
    UNSUBSCRIBED = "UNSUBSCRIBED"


#: Channels whose links are wrapped (IN_APP: the bell reports clicks itself; WEBHOOK: read by a program).
TRACKED_CHANNELS = frozenset({"EMAIL", "SMS", "PUSH", "SLACK", "TEAMS"})
#: The name of the open pixel's code in ``tracked_links.link`` (never redirected by /r/).
OPEN_PIXEL = "open"
#: 12 random bytes = 96 bits, 16 url-safe characters.
CODE_BYTES = 12

_RECORD = text(
    """
    INSERT INTO engagement_events AS e (queue_id, recipient_id, channel, kind, occurred_at, last_at, count, detail)
    SELECT q.id, q.recipient_id, q.delivery_method, :kind, coalesce(:at, now()), coalesce(:at, now()), 1, :detail
    FROM notification_queue q WHERE q.id = :queue_id
    ON CONFLICT (queue_id, kind) DO UPDATE SET
        count = e.count + 1,
        last_at = greatest(e.last_at, excluded.last_at),
        -- an open first seen from a machine (proxy prefetch, scanner) and later from a person: say when
        detail = CASE
            WHEN (e.detail ->> 'machine') = 'true' AND coalesce(excluded.detail ->> 'machine', 'false') <> 'true'
                 AND NOT (e.detail ? 'human_at')
            THEN e.detail || jsonb_build_object('human_at', excluded.occurred_at)
            ELSE e.detail END
    RETURNING e.count
    """
).bindparams(
    bindparam("queue_id", type_=UUID(as_uuid=True)),
    bindparam("detail", type_=JSONB),
    bindparam("at", type_=DateTime(timezone=True)),
)


async def record_engagement(
    session: AsyncSession,
    queue_id: uuid.UUID | str,
    kind: EngagementKind | str,
    *,
    detail: dict[str, Any] | None = None,
    at: datetime | None = None,
) -> int:
    """Record ``kind`` for the queue row: the first time inserts, a repeat counts. Returns the count so far,
    0 if the row does not exist (a code outliving its row, a stale token): nothing is recorded then.

    Runs in the caller's transaction (the caller commits).
    """
    kind = EngagementKind(kind)
    row_id = queue_id if isinstance(queue_id, uuid.UUID) else uuid.UUID(str(queue_id))
    result = await session.execute(_RECORD, {"queue_id": row_id, "kind": str(kind), "detail": detail, "at": at})
    count = result.scalar_one_or_none()
    return int(count or 0)


# ------------------------------------------------------------------ wrapped links


def new_code() -> str:
    """A link code: 96 random bits from ``secrets``, url-safe."""
    return secrets.token_urlsafe(CODE_BYTES)


def tracked_url(settings: Settings, code: str) -> str:
    return f"{settings.public_api_url}/r/{code}"


def pixel_url(settings: Settings, code: str) -> str:
    return f"{settings.public_api_url}/o/{code}.gif"


@dataclass(frozen=True)
class PendingLink:
    """A code to store once its row is inserted (the row is found by its dedupe key)."""

    dedupe_key: str
    code: str
    link: str
    target: str


#: What may continue a URL: a link followed by one of these is another link, not this one.
_URL_GOES_ON = r"(?![\w\-~%/?#=&+]|\.\w)"


def _replace_link(body: str, raw: str, wrapped: str) -> tuple[str, int]:
    pattern = re.compile(re.escape(raw) + _URL_GOES_ON)
    body, n = pattern.subn(lambda _m: wrapped, body)
    escaped = html.escape(raw, quote=True)
    if escaped != raw:
        body, m = re.compile(re.escape(escaped) + _URL_GOES_ON).subn(lambda _m: wrapped, body)
        n += m
    return body, n


def _get(row: Any, name: str) -> Any:
    return row.get(name) if isinstance(row, dict) else getattr(row, name, None)


def _set(row: Any, name: str, value: Any) -> None:
    if isinstance(row, dict):
        row[name] = value
    else:
        setattr(row, name, value)


def wrap_links(rows: list[Any], settings: Settings) -> list[PendingLink]:
    """Rewrite the planned rows' bodies so that every link goes through ``/r/{code}``; the codes to store.

    Only PENDING rows of EMAIL, SMS, Slack and Teams with an issue link; the unsubscribe link (another URL)
    is left as it is. ``context_data.link`` keeps the raw link (digests and the queue API read it);
    ``context_data.tracked_link`` is the wrapped one (SMS keeps it when a long text is cut). With
    ``NOTIFLOW_TRACK_OPENS`` an HTML mail also gets the open pixel.
    """
    pending: list[PendingLink] = []
    for row in rows:  # dicts of column values, or row objects with the same attributes
        channel = _get(row, "delivery_method")
        if _get(row, "status") != "PENDING" or channel not in TRACKED_CHANNELS:
            continue
        context = _get(row, "context_data") or {}
        raw = context.get("link")
        key = _get(row, "dedupe_key")
        if settings.track_clicks and raw:
            code = new_code()
            wrapped = tracked_url(settings, code)
            used = 0
            if channel in ("SLACK", "TEAMS"):
                body = json.loads(_get(row, "content"))
                if body.get("link") == raw:
                    body["link"] = wrapped
                    _set(row, "content", json.dumps(body, ensure_ascii=False, separators=(",", ":"), default=str))
                    used = 1
            elif channel == "PUSH":  # the link is the notification's click target, not in its text
                used = 1
            else:
                for field in ("subject", "content", "html_content"):
                    if _get(row, field):
                        replaced, n = _replace_link(_get(row, field), raw, wrapped)
                        _set(row, field, replaced)
                        used += n
            if used:
                _set(row, "context_data", context | {"tracked_link": wrapped})
                pending.append(PendingLink(key, code, "issue", raw))
        if settings.track_opens and channel == "EMAIL" and _get(row, "html_content"):
            code = new_code()
            _set(row, "html_content", add_pixel(_get(row, "html_content"), pixel_url(settings, code)))
            pending.append(PendingLink(key, code, OPEN_PIXEL, ""))
    return pending


def add_pixel(html_body: str, url: str) -> str:
    pixel = f'<img src="{html.escape(url, quote=True)}" width="1" height="1" alt="" style="display:block;border:0">'
    at = html_body.lower().rfind("</body>")
    return html_body[:at] + pixel + html_body[at:] if at >= 0 else html_body + pixel


_SAVE = text(
    """
    INSERT INTO tracked_links (code, queue_id, link, target)
    SELECT :code, q.id, :link, :target FROM notification_queue q WHERE q.dedupe_key = :dedupe_key
    ON CONFLICT (code) DO NOTHING
    """
)


async def save_tracked_links(session: AsyncSession, pending: list[PendingLink]) -> None:
    """Store the codes of ``wrap_links`` against the rows as inserted (after ``insert_queue_rows``).

    A row that already existed (a retried plan) keeps the body and codes of its first planning; the new
    codes then point at it too, unused and unguessable.
    """
    if pending:
        await session.execute(
            _SAVE, [{"code": p.code, "link": p.link, "target": p.target, "dedupe_key": p.dedupe_key} for p in pending]
        )


@dataclass(frozen=True)
class RowLink:
    """A code for a row that already exists (a digest's item: the click counts on the item's own row)."""

    code: str
    queue_id: uuid.UUID
    link: str
    target: str


def wrap_row_link(
    settings: Settings, queue_id: uuid.UUID, channel: str, raw: str | None, link: str = "issue"
) -> tuple[str | None, RowLink | None]:
    """The URL to put in a message for ``raw`` on that row's behalf, and the code to store (None: left raw)."""
    if not raw or not settings.track_clicks or channel not in TRACKED_CHANNELS:
        return raw, None
    code = new_code()
    return tracked_url(settings, code), RowLink(code, queue_id, link, raw)


async def save_row_links(session: AsyncSession, links: list[RowLink]) -> None:
    if links:
        await session.execute(
            text(
                "INSERT INTO tracked_links (code, queue_id, link, target) VALUES (:code, :queue_id, :link, :target) "
                "ON CONFLICT (code) DO NOTHING"
            ).bindparams(bindparam("queue_id", type_=UUID(as_uuid=True))),
            [{"code": r.code, "queue_id": r.queue_id, "link": r.link, "target": r.target} for r in links],
        )


# ------------------------------------------------------------------ machine opens

#: Fetchers that open mail for the reader, not the reader (their opens are ``detail.machine = true``).
#: User agents containing: Google's image proxy (Gmail), Yahoo's mail proxy.
MACHINE_USER_AGENT_MARKERS = ("GoogleImageProxy", "YahooMailProxy")
#: User agents equal to: Apple Mail Privacy Protection's bare agents (a person's Safari adds Version/… Safari/…).
MACHINE_USER_AGENTS = (
    "Mozilla/5.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)",
)
#: Addresses: Apple (17.0.0.0/8, Mail Privacy Protection's relays) and Google's image proxy ranges.
MACHINE_NETWORKS = tuple(
    ipaddress.ip_network(n) for n in ("17.0.0.0/8", "66.102.0.0/20", "66.249.80.0/20", "64.233.160.0/19")
)


def is_machine_open(user_agent: str | None, address: str | None) -> bool:
    """True for a known mail-privacy proxy or prefetcher (by user agent or address)."""
    agent = user_agent or ""
    if any(marker in agent for marker in MACHINE_USER_AGENT_MARKERS) or agent.strip() in MACHINE_USER_AGENTS:
        return True
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return False
    return any(ip in network for network in MACHINE_NETWORKS)
