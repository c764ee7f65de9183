"""Prometheus metrics: HTTP traffic by route and status, and the delivery queue by channel and status.

Each app has its own registry, so several apps in one process (tests, the dev
stack) never clash over metric names. /metrics needs no token (scrapers rarely
carry one), so the queue counts — a GROUP BY over the whole queue — are taken at
most once per QUEUE_COUNTS_MAX_AGE_SECONDS whatever the scrape rate, and
concurrent scrapes share one query.
"""

from __future__ import annotations

import asyncio
import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from notiflow.models import NotificationQueueRow
from programs.api.deps import State
from programs.api.engagement_queries import counts_by_kind_and_channel

UNMATCHED_ROUTE = "unmatched"
QUEUE_COUNTS_MAX_AGE_SECONDS = 15.0


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "notiflow_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "notiflow_http_request_duration_seconds",
            "Time to answer HTTP requests (SSE: the stream's lifetime)",
            ["method", "route"],
            registry=self.registry,
        )
        self.notifications = Gauge(
            "notiflow_notifications",
            f"Rows in notification_queue by channel and status, counted at most every "
            f"{QUEUE_COUNTS_MAX_AGE_SECONDS:g} s",
            ["channel", "status"],
            registry=self.registry,
        )
        self.engagement = Gauge(
            "notiflow_engagement_events",
            f"Engagement events (one per queue row and kind; repeats not counted) by kind and channel; "
            f"machine=true: opens by mail-privacy proxies and scanners, to leave out of rates. Counted at most "
            f"every {QUEUE_COUNTS_MAX_AGE_SECONDS:g} s",
            ["kind", "channel", "machine"],
            registry=self.registry,
        )
        self._counted_at: float | None = None
        self._counting = asyncio.Lock()

    async def refresh_notification_counts(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        async with self._counting:
            if self._counted_at is not None and time.monotonic() - self._counted_at < QUEUE_COUNTS_MAX_AGE_SECONDS:
                return
            column = NotificationQueueRow.delivery_method
            async with sessions() as session:
                counts = (
                    await session.execute(
                        select(column, NotificationQueueRow.status, func.count()).group_by(
                            column, NotificationQueueRow.status
                        )
                    )
                ).all()
                engagement = await counts_by_kind_and_channel(session)
            self.notifications.clear()
            for channel, status, count in counts:
                self.notifications.labels(channel, status).set(count)
            self.engagement.clear()
            for kind, channel, machine, count in engagement:
                self.engagement.labels(kind, channel, "true" if machine else "false").set(count)
            self._counted_at = time.monotonic()


class RequestMetricsMiddleware:
    """Pure ASGI (not BaseHTTPMiddleware) so SSE streams pass through untouched.

    The route label is the path template (``/inbox/{notification_id}/read``):
    one series per route, not one per id.
    """

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status = 500
        started = time.perf_counter()

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", UNMATCHED_ROUTE)
            self.metrics.requests.labels(scope["method"], template, str(status)).inc()
            self.metrics.latency.labels(scope["method"], template).observe(time.perf_counter() - started)


router = APIRouter(tags=["health"])


@router.get("/metrics", response_class=Response, summary="Prometheus metrics")
async def metrics(request: Request, state: State) -> Response:
    api_metrics: ApiMetrics = request.app.state.metrics
    await api_metrics.refresh_notification_counts(state.sessions)
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
