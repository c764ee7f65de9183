"""/healthz, /readyz (naming what is down) and /metrics."""

from __future__ import annotations

import uuid

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import insert

from notiflow.models import NotificationQueueRow
from tests.api.helpers import add_users, bearer, person


async def test_healthz_answers_without_dependencies(api):
    assert (await api.get("/healthz")).json() == {"status": "ok"}


async def test_readyz_names_temporal_when_it_is_down(api, api_settings):
    response = await api.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["database"] == "ok" and body["checks"]["inbox_listener"] == "ok"
    assert body["detail"].startswith("not ready — temporal: Temporal at " + api_settings.temporal_address)


async def test_readyz_is_ready_when_everything_answers(temporal_api):
    response = await temporal_api.get("/readyz")
    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "temporal": "ok", "inbox_listener": "ok"},
    }


def samples(text: str, name: str) -> dict[tuple, float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_metrics_count_requests_by_route_and_deliveries_by_channel(api, db):
    await add_users(db, person("u-1"))
    async with db.begin() as session:
        await session.execute(
            insert(NotificationQueueRow),
            [
                {
                    "template_name": "t",
                    "delivery_method": channel,
                    "notification_type": "ISSUE_CREATED",
                    "content": "c",
                    "status": status,
                    "dedupe_key": str(uuid.uuid4()),
                }
                for channel, status in (
                    ("EMAIL", "SENT"),
                    ("EMAIL", "SENT"),
                    ("EMAIL", "FAILED"),
                    ("IN_APP", "PENDING"),
                )
            ],
        )
    inbox_item = f"/api/v1/notifications/inbox/{uuid.uuid4()}/read"
    await api.post(inbox_item, headers=bearer("u-1"))
    await api.post("/api/v1/notifications/inbox/not-a-uuid/read", headers=bearer("u-1"))
    await api.get("/healthz")

    response = await api.get("/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    requests = samples(response.text, "notiflow_http_requests_total")
    read_route = (("method", "POST"), ("route", "/api/v1/notifications/inbox/{notification_id}/read"))
    assert requests[(*read_route, ("status", "404"))] == 1
    assert requests[(*read_route, ("status", "422"))] == 1
    assert requests[(("method", "GET"), ("route", "/healthz"), ("status", "200"))] == 1
    assert samples(response.text, "notiflow_notifications") == {
        (("channel", "EMAIL"), ("status", "SENT")): 2,
        (("channel", "EMAIL"), ("status", "FAILED")): 1,
        (("channel", "IN_APP"), ("status", "PENDING")): 1,
    }


async def test_scrapes_do_not_count_the_queue_each_time(api, db, monkeypatch):
    """/metrics needs no token, so the GROUP BY over the queue runs at most once per QUEUE_COUNTS_MAX_AGE_SECONDS."""
    from programs.api import metrics

    def queue_row(status: str) -> dict:
        return {
            "template_name": "t",
            "delivery_method": "EMAIL",
            "notification_type": "ISSUE_CREATED",
            "content": "c",
            "status": status,
            "dedupe_key": str(uuid.uuid4()),
        }

    async with db.begin() as session:
        await session.execute(insert(NotificationQueueRow), [queue_row("SENT")])
    first = samples((await api.get("/metrics")).text, "notiflow_notifications")
    async with db.begin() as session:
        await session.execute(insert(NotificationQueueRow), [queue_row("SENT"), queue_row("FAILED")])
    for _ in range(20):
        assert samples((await api.get("/metrics")).text, "notiflow_notifications") == first
    assert first == {(("channel", "EMAIL"), ("status", "SENT")): 1}

    monkeypatch.setattr(metrics, "QUEUE_COUNTS_MAX_AGE_SECONDS", 0.0)  # as if the interval had passed
    assert samples((await api.get("/metrics")).text, "notiflow_notifications") == {
        (("channel", "EMAIL"), ("status", "SENT")): 2,
        (("channel", "EMAIL"), ("status", "FAILED")): 1,
    }
