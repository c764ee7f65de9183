"""The FastAPI application: routers, error handlers, metrics, and the resources its lifespan owns."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from notiflow.contracts import IssueEvent
from notiflow.db import asyncpg_dsn, make_engine, make_sessionmaker
from notiflow.settings import Settings
from notiflow.temporal import connect_client
from programs.api import (
    analytics,
    analytics_series,
    audit,
    codec,
    engagement,
    events,
    experiments,
    funnel,
    health,
    inbox,
    metrics,
    policies,
    preferences,
    push,
    queue,
    read_escalations,
    redeliver,
    suppressions,
    templates,
    unsubscribe,
    users,
    webhooks,
    why,
)
from programs.api.broadcast import InboxBroadcaster
from programs.api.docs import install_docs
from programs.api.errors import install_error_handlers
from programs.api.frontend import install_frontend
from programs.api.guard import BodyLimit, ClientGate
from programs.api.state import ApiState, TemporalClientFactory, TemporalConnector

DESCRIPTION = """
Durable notifications for the issue tracker, driven by Temporal.

**Authorize** with a bearer JWT (HS256, `NOTIFLOW_JWT_SECRET`): `sub` is the user id; `roles` holds
`admin` for template, escalation policy, queue, analytics, audit, test and codec routes, `service` for the issue system's routes.
`notiflow dev` prints demo tokens. Every error is JSON `{"detail": "..."}`.
"""

ROUTERS = (
    preferences.router,
    push.router,
    templates.router,
    queue.router,
    analytics.router,
    inbox.router,
    events.router,
    users.router,
    unsubscribe.router,
    health.router,
    metrics.router,
    codec.router,
    audit.router,
    redeliver.router,
    webhooks.router,
    why.router,
    analytics_series.router,
    funnel.router,
    policies.router,
    read_escalations.router,
    engagement.router,
    engagement.inbox_router,
    suppressions.router,
    experiments.router,
)


def _document_models(app: FastAPI, *models: type[BaseModel]) -> None:
    """Add schemas that routes reference by $ref but do not declare as parameters (the raw event body)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = build()
            components = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in models:
                model_schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
                components.update(model_schema.pop("$defs", {}))
                components[model.__name__] = model_schema
        assert app.openapi_schema is not None  # build() stores it
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]  # FastAPI's documented way to extend the schema


def create_app(
    settings: Settings, temporal_client_factory: TemporalClientFactory | None = None, *, demo: bool = False
) -> FastAPI:
    """Build the API. The database and the inbox listener open at start-up; Temporal on first use.

    ``demo`` adds the tracker's demo page and its sign-in (/demo, /demo/session): only the dev stack asks for
    it, whatever its secret; ``notiflow api`` never does, so no production API hands out a demo session.
    """
    database_url = settings.require_database_url()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = make_engine(database_url)
        listener = InboxBroadcaster(asyncpg_dsn(database_url))
        try:
            await listener.start()
            app.state.api = ApiState(
                settings=settings,
                engine=engine,
                sessions=make_sessionmaker(engine),
                temporal=TemporalConnector(settings, temporal_client_factory or connect_client),
                inbox=listener,
            )
            yield
        finally:
            await listener.stop()
            await engine.dispose()

    app = FastAPI(
        title="notiflow",
        version="0.1.0",
        description=DESCRIPTION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
    )
    install_docs(app, {"persistAuthorization": True})
    app.state.settings = settings
    app.state.metrics = metrics.ApiMetrics()
    # Outermost last: CORS answers the UI's preflight, metrics count every refusal, the gate runs before any body.
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(ClientGate, settings=settings)
    app.add_middleware(metrics.RequestMetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(codec.CodecCors, origin=settings.public_ui_url)
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    _document_models(app, IssueEvent)
    install_frontend(app, demo=demo)
    return app
