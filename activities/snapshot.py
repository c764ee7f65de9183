"""A small, rarely edited table held in the worker and re-read at most every few seconds."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

#: Seconds a worker keeps templates and escalation policies before reading them again (edits apply within that).
SNAPSHOT_TTL = 5.0
T = TypeVar("T")


class Snapshot(Generic[T]):
    """Templates, escalation policies: read once per SNAPSHOT_TTL instead of once per event."""

    def __init__(self, load: Callable[[AsyncSession], Awaitable[T]]) -> None:
        self._load = load
        self._loaded_at = float("-inf")
        self._value: T | None = None

    async def get(self, session: AsyncSession) -> T:
        if self._value is None or time.monotonic() - self._loaded_at > SNAPSHOT_TTL:
            self._value, self._loaded_at = await self._load(session), time.monotonic()
        return self._value
