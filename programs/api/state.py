"""What the API holds for its lifetime: settings, database, Temporal client, inbox fan-out."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from fastapi import HTTPException
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from temporalio.client import Client

from notiflow.settings import Settings
from programs.api.broadcast import InboxBroadcaster

TemporalClientFactory = Callable[[Settings], Awaitable[Client]]
TEMPORAL_CONNECT_TIMEOUT_SECONDS = 5.0


class TemporalConnector:
    """Connects on first use, so the API starts and serves inbox and preferences while Temporal is down."""

    def __init__(self, settings: Settings, factory: TemporalClientFactory) -> None:
        self._settings = settings
        self._factory = factory
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    async def client(self) -> Client:
        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(
                        self._factory(self._settings), TEMPORAL_CONNECT_TIMEOUT_SECONDS
                    )
                except Exception as exc:
                    raise HTTPException(503, self._unreachable(exc)) from exc
            return self._client

    def _unreachable(self, exc: BaseException) -> str:
        if isinstance(exc, TimeoutError):
            reason = f"no answer within {TEMPORAL_CONNECT_TIMEOUT_SECONDS:g} s"
        else:
            reason = str(exc) or type(exc).__name__
        return (
            f"Temporal at {self._settings.temporal_address} (namespace {self._settings.temporal_namespace}) "
            f"is not reachable: {reason}; start it or set NOTIFLOW_TEMPORAL_ADDRESS"
        )


@dataclass
class ApiState:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    temporal: TemporalConnector
    inbox: InboxBroadcaster
