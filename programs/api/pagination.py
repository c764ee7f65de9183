"""Keyset pagination on (created_at DESC, id DESC), shared by the queue, the inbox and the audit log.

An offset scans and throws away every earlier row; a keyset seeks straight to
the next page through the (created_at, id) index, so page 10,000 of a table
with millions of rows costs the same as page 1. The cursor is opaque to
clients: base64url of the last row's key.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Query
from sqlalchemy import Select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


@dataclass(frozen=True)
class PageRequest:
    cursor: str | None
    limit: int


async def page_request(
    cursor: Annotated[
        str | None, Query(description="next_cursor from the previous page; omit for the first page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="items per page")] = DEFAULT_LIMIT,
) -> PageRequest:
    return PageRequest(cursor=cursor, limit=limit)


PageParams = Annotated[PageRequest, Depends(page_request)]


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = f"{created_at.isoformat()}|{row_id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at_text, row_id = raw.split("|")
        created_at = datetime.fromisoformat(created_at_text)
        if created_at.tzinfo is None:
            raise ValueError("cursor time without zone")
        return created_at, uuid.UUID(row_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise HTTPException(422, "cursor is not valid: pass next_cursor from the previous page unchanged") from None


async def fetch_page(
    session: AsyncSession, query: Select, model: Any, page: PageRequest, *, time_column: str = "created_at"
) -> tuple[list[Any], str | None]:
    """Rows of ``query`` (selecting ``model``) after the cursor, newest first by ``time_column``, and the next cursor."""
    at = getattr(model, time_column)
    if page.cursor:
        query = query.where(tuple_(at, model.id) < tuple_(*decode_cursor(page.cursor)))
    query = query.order_by(at.desc(), model.id.desc()).limit(page.limit + 1)
    rows = list((await session.scalars(query)).all())
    if len(rows) <= page.limit:
        return rows, None
    last = rows[page.limit - 1]
    return rows[: page.limit], encode_cursor(getattr(last, time_column), last.id)
