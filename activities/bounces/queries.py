"""The suppression list and the bounce reports: SQL and the effects of a report, in the caller's transaction.

- ``suppressed`` — which of these (channel, address) pairs must not be sent to (planning asks it).
- ``add_suppression`` / ``remove_suppression`` — one active entry per (channel, address); removing keeps it.
- ``record_report`` — store a report received at the bounce address and apply what it means: a hard bounce
  (5.x.x) marks the row bounced and suppresses the address; soft bounces (4.x.x, delayed) are counted and
  ``NOTIFLOW_SOFT_BOUNCE_LIMIT`` distinct mails soft-bounced within 7 days suppress it (reason
  ``SOFT_BOUNCE_LIMIT``); a complaint (ARF) suppresses it for non-critical mail. A report that matches no
  mail, or cannot be read, is kept with the reason and changes nothing else.
- ``suppress_invalid`` — an SMS gateway's "number invalid" or a hook's 410 Gone (reason ``INVALID``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import bindparam, cast, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncSession

from activities.bounces import effects
from activities.bounces.parse import COMPLAINT, HARD, SOFT, UNKNOWN, RecipientStatus, Report, parse_report
from activities.bounces.suppression import (
    ALL,
    COMPLAINT_REASON,
    HARD_BOUNCE,
    INVALID,
    NON_CRITICAL,
    SOFT_BOUNCE_LIMIT,
    SYSTEM,
    normalise_address,
)
from notiflow.contracts import Channel
from notiflow.models import BounceReportRow, NotificationQueueRow, SuppressionRow, table
from notiflow.verp import queue_id_of

#: How much of a report's raw message is kept.
RAW_LIMIT = 256 * 1024
#: Soft bounces of an address are counted over this window.
SOFT_BOUNCE_WINDOW = timedelta(days=7)

Queue = NotificationQueueRow


async def suppressed(
    session: AsyncSession, channel_addresses: Iterable[tuple[str, str]]
) -> dict[tuple[str, str], SuppressionRow]:
    """The active entries for these (channel, address) pairs, keyed by the pairs as given."""
    wanted: dict[tuple[str, str], list[tuple[str, str]]] = {}
    for channel, address in channel_addresses:
        if address:
            wanted.setdefault((str(channel), normalise_address(str(channel), address)), []).append((channel, address))
    if not wanted:
        return {}
    rows = (
        await session.scalars(
            select(SuppressionRow).where(
                SuppressionRow.active,
                SuppressionRow.address.in_({address for _, address in wanted}),
            )
        )
    ).all()
    found: dict[tuple[str, str], SuppressionRow] = {}
    for row in rows:
        for given in wanted.get((row.channel, row.address), []):
            found[given] = row
    return found


async def add_suppression(
    session: AsyncSession,
    *,
    channel: str,
    address: str,
    reason: str,
    scope: str = ALL,
    status_code: str | None = None,
    status_text: str | None = None,
    queue_id: uuid.UUID | None = None,
    created_by: str = SYSTEM,
    now: datetime | None = None,
) -> tuple[SuppressionRow, bool]:
    """Put an address on the list; returns the active entry and whether it is new.

    An address already listed keeps its entry, unless that entry only held back non-critical mail
    (a complaint) and this one stops everything: then the new one replaces it.
    """
    now = now or datetime.now(timezone.utc)
    channel, address = str(channel), normalise_address(str(channel), address)
    current = await session.scalar(
        select(SuppressionRow)
        .where(SuppressionRow.channel == channel, SuppressionRow.address == address, SuppressionRow.active)
        .with_for_update()
    )
    if current is not None:
        if not (current.scope == NON_CRITICAL and scope == ALL):
            return current, False
        current.active, current.removed_at, current.removed_by = False, now, f"{created_by} ({reason})"
        await session.flush()
    new_id = uuid.uuid4()
    inserted = await session.scalar(
        insert(table(SuppressionRow))
        .values(
            id=new_id,
            channel=channel,
            address=address,
            reason=reason,
            scope=scope,
            status_code=status_code,
            status_text=(status_text or None) and status_text[:2000],
            queue_id=queue_id,
            created_by=created_by,
            created_at=now,
            active=True,
        )
        .on_conflict_do_nothing(index_elements=["channel", "address"], index_where=text("active"))
        .returning(table(SuppressionRow).c.id)
    )
    row = await session.scalar(
        select(SuppressionRow)
        .where(SuppressionRow.channel == channel, SuppressionRow.address == address, SuppressionRow.active)
        .execution_options(populate_existing=True)
    )
    assert row is not None
    return row, inserted is not None


async def remove_suppression(
    session: AsyncSession, suppression_id: uuid.UUID, removed_by: str, now: datetime | None = None
) -> SuppressionRow | None:
    """Take an entry off the list (kept, inactive); None if there is no such entry."""
    row = await session.get(SuppressionRow, suppression_id, with_for_update=True)
    if row is None:
        return None
    if row.active:
        row.active, row.removed_at, row.removed_by = False, now or datetime.now(timezone.utc), removed_by
        await session.flush()
    return row


async def suppress_invalid(
    session: AsyncSession, *, channel: str, address: str, queue_id: uuid.UUID | None, text: str
) -> tuple[SuppressionRow, bool]:
    """A gateway or receiver said the address does not exist (SMS "number invalid", a hook's 410)."""
    return await add_suppression(
        session,
        channel=channel,
        address=address,
        reason=INVALID,
        status_code=_http_status(text),
        status_text=text,
        queue_id=queue_id,
    )


def _http_status(text: str) -> str | None:
    import re

    match = re.search(r"\b(4\d\d)\b", text)
    return match.group(1) if match else None


# --- bounce reports ------------------------------------------------------------------------------------------


@dataclass
class Received:
    """One message the bounce receiver accepted."""

    raw: bytes
    envelope_from: str | None
    envelope_to: str | None
    #: the VERP code of the address it was sent to, if any
    code: str | None


async def _queue_row(session: AsyncSession, code: str | None, message_id: str | None) -> tuple[Queue | None, str]:
    """The mail a report is about, by VERP code, else by the returned Message-ID; or why none was found."""
    if code:
        queue_id = queue_id_of(code)
        row = await session.get(Queue, queue_id) if queue_id else None
        if row is not None and row.delivery_method == Channel.EMAIL:
            return row, ""
        if not message_id:
            return None, f"VERP code {code!r} names no mail notiflow sent"
    if message_id:
        row = await session.scalar(
            select(Queue).where(Queue.provider_message_id == message_id, Queue.delivery_method == Channel.EMAIL)
        )
        if row is None:  # our Message-IDs are <queue id@domain>: a row whose answer was never stored
            local = message_id.strip("<>").split("@", 1)[0]
            try:
                row = await session.get(Queue, uuid.UUID(local))
            except ValueError:
                row = None
            row = row if row is not None and row.delivery_method == Channel.EMAIL else None
        if row is not None:
            return row, ""
        prefix = f"VERP code {code!r} names no mail notiflow sent; " if code else "no VERP code; "
        return None, f"{prefix}Message-ID {message_id} matches no mail notiflow sent"
    return None, "no VERP code in the address and no Message-ID in the returned headers"


def _recipient(report: Report, address: str | None) -> RecipientStatus | None:
    if not report.recipients:
        return None
    if address:
        for recipient in report.recipients:
            if recipient.address.lower() == address.lower():
                return recipient
    return report.recipients[0]


async def _mark(session: AsyncSession, queue_id: uuid.UUID, key: str, value: dict[str, Any]) -> None:
    """Add ``{key: value}`` to the queue row's context_data."""
    await session.execute(
        update(Queue)
        .where(Queue.id == queue_id)
        .values(
            context_data=func.coalesce(Queue.context_data, cast({}, JSONB)).op("||")(
                bindparam(f"mark_{key}", {key: value}, type_=JSONB)
            )
        )
    )


async def soft_bounced_mails(session: AsyncSession, address: str, since: datetime) -> int:
    """How many distinct mails to this address soft-bounced since then."""
    count = await session.scalar(
        select(func.count(func.distinct(BounceReportRow.queue_id))).where(
            BounceReportRow.address == address,
            BounceReportRow.bounce_type == SOFT,
            BounceReportRow.queue_id.is_not(None),
            BounceReportRow.received_at >= since,
        )
    )
    return int(count or 0)


async def record_report(
    session: AsyncSession, received: Received, *, soft_bounce_limit: int, now: datetime | None = None
) -> BounceReportRow:
    """Store the report and apply its effects, all in the caller's transaction."""
    now = now or datetime.now(timezone.utc)
    report = parse_report(received.raw)
    row, unmatched = await _queue_row(session, received.code, report.message_id)
    recipient = _recipient(report, row.address if row else None)
    bounce_type = report.bounce_type
    if report.kind != "ARF" and recipient is not None:
        bounce_type = recipient.bounce_type
    if report.kind == UNKNOWN and not report.recipients:
        unmatched = "; ".join(r for r in (report.problem, unmatched) if r)
    address = row.address if row is not None and row.address else recipient.address if recipient else None
    entry = BounceReportRow(
        id=uuid.uuid4(),
        received_at=now,
        kind=report.kind,
        envelope_from=(received.envelope_from or "")[:500] or None,
        envelope_to=(received.envelope_to or "")[:500] or None,
        raw_size=len(received.raw),
        raw=received.raw[:RAW_LIMIT],
        verp_code=(received.code or "")[:64] or None,
        message_id=(report.message_id or "")[:500] or None,
        queue_id=row.id if row is not None else None,
        channel=str(Channel.EMAIL),
        address=normalise_address(Channel.EMAIL, address)[:500] if address else None,
        action=(report.feedback_type if report.kind == "ARF" else recipient.action if recipient else None),
        status=recipient.status if recipient else None,
        diagnostic=recipient.diagnostic if recipient else None,
        bounce_type=bounce_type,
        unmatched_reason=unmatched or None,
    )
    session.add(entry)
    await session.flush()
    if row is None or unmatched or not entry.address:
        return entry
    detail = {"report_id": str(entry.id), "at": now.isoformat(), "status": entry.status}
    suppression: SuppressionRow | None = None
    if bounce_type == HARD:
        await _mark(session, row.id, "bounced", detail | {"text": entry.diagnostic})
        await effects.record_engagement(
            session,
            report_id=entry.id,
            queue_id=row.id,
            kind=effects.BOUNCED,
            occurred_at=now,
            detail={"status": entry.status, "hard": True},
        )
        suppression, _ = await add_suppression(
            session,
            channel=Channel.EMAIL,
            address=entry.address,
            reason=HARD_BOUNCE,
            status_code=entry.status or "5.0.0",
            status_text=entry.diagnostic,
            queue_id=row.id,
            now=now,
        )
    elif bounce_type == SOFT:
        await _mark(session, row.id, "soft_bounced", detail)
        mails = await soft_bounced_mails(session, entry.address, now - SOFT_BOUNCE_WINDOW)
        if mails >= soft_bounce_limit:
            suppression, _ = await add_suppression(
                session,
                channel=Channel.EMAIL,
                address=entry.address,
                reason=SOFT_BOUNCE_LIMIT,
                status_code=entry.status or "4.0.0",
                status_text=f"{mails} mails soft-bounced within 7 days; last: {entry.diagnostic or entry.status}",
                queue_id=row.id,
                now=now,
            )
    elif bounce_type == COMPLAINT:
        await _mark(session, row.id, "complained", detail | {"feedback_type": report.feedback_type})
        await effects.record_engagement(
            session,
            report_id=entry.id,
            queue_id=row.id,
            kind=effects.COMPLAINED,
            occurred_at=now,
            detail={"feedback_type": report.feedback_type},
        )
        suppression, _ = await add_suppression(
            session,
            channel=Channel.EMAIL,
            address=entry.address,
            reason=COMPLAINT_REASON,
            scope=NON_CRITICAL,
            status_code=report.feedback_type,
            status_text=f"the recipient reported the mail as {report.feedback_type}",
            queue_id=row.id,
            now=now,
        )
    if suppression is not None:
        entry.suppression_id = suppression.id
        await session.flush()
    return entry


async def record_unprocessed(session: AsyncSession, received: Received, reason: str) -> BounceReportRow:
    """Keep a report whose processing failed, with the reason (nothing else changes)."""
    entry = BounceReportRow(
        id=uuid.uuid4(),
        kind=UNKNOWN,
        envelope_from=(received.envelope_from or "")[:500] or None,
        envelope_to=(received.envelope_to or "")[:500] or None,
        raw_size=len(received.raw),
        raw=received.raw[:RAW_LIMIT],
        verp_code=(received.code or "")[:64] or None,
        bounce_type="NONE",
        unmatched_reason=reason[:2000],
    )
    session.add(entry)
    await session.flush()
    return entry
