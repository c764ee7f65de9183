"""Prometheus metrics: HTTP traffic by route and status, and the delivery queue by channel and status.

Each app has its own registry, so several apps in one process (tests, the dev
stack) never clash over metric names.
"""

from __future__ import annotations

import time

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from notiflow.api.deps import Session
from notiflow.models import NotificationQueueRow

UNMATCHED_ROUTE = "unmatched"


class ApiMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "notiflow_http_requests", "HTTP requests by route template and status",
            ["method", "route", "status"], registry=self.registry,
        )
        self.latency = Histogram(
            "notiflow_http_request_duration_seconds", "Time to answer HTTP requests (SSE: the stream's lifetime)",
            ["method", "route"], registry=self.registry,
        )
        self.notifications = Gauge(
            "notiflow_notifications", "Rows in notification_queue by channel and status, counted at scrape time",
            ["channel", "status"], registry=self.registry,
        )

    async def count_notifications(self, session: AsyncSession) -> None:
        column = NotificationQueueRow.delivery_method
        counts = await session.execute(
            select(column, NotificationQueueRow.status, func.count()).group_by(column, NotificationQueueRow.status)
        )
        self.notifications.clear()
        for channel, status, count in counts:
            self.notifications.labels(channel, status).set(count)


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
async def metrics(request: Request, session: Session) -> Response:
    api_metrics: ApiMetrics = request.app.state.metrics
    await api_metrics.count_notifications(session)
    return Response(generate_latest(api_metrics.registry), media_type=CONTENT_TYPE_LATEST)
