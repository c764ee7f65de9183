"""Where a plan is made (activities/delivery/planner.py): a large slice in the worker's planning process, the
same rows as in a thread; a planning process that died fails the attempt retryably, and the next starts anew."""

from __future__ import annotations

import os
import signal
from collections import Counter
from datetime import datetime, timezone

import pytest
from temporalio.exceptions import ApplicationError

from activities.delivery.planner import Planner
from activities.delivery.planning import PlanningContext, queue_rows
from notiflow.contracts import NotificationType
from notiflow.models import UserRow
from notiflow.runs import Audience, NotificationRequest
from notiflow.settings import Settings
from notiflow.templates.defaults import load_default_templates
from tests.factories import issue_dict


def _planning(people: int) -> tuple[NotificationRequest, PlanningContext]:
    users = {
        f"u-{i}": UserRow(
            id=f"u-{i}",
            name=f"Admin {i}",
            email=f"admin{i}@example.org",
            locale="fr" if i % 2 else "en",
            roles=["admin"],
            is_active=True,
            is_on_call=False,
        )
        for i in range(people)
    }
    request = NotificationRequest(
        source_id="evt-planner", notification_type=NotificationType.ISSUE_CREATED, audience=Audience(admins=True)
    )
    context = PlanningContext(
        recipients={uid: NotificationType.ISSUE_CREATED for uid in users},
        users=users,
        preferences={},
        templates={t.name: t for t in load_default_templates()},
        issue=issue_dict(),
        sent_this_hour=Counter(),
    )
    return request, context


def _comparable(rows) -> list[dict]:
    """Each row's values but its id: a new uuid4 each time it is planned, signed into its unsubscribe link."""
    comparable = []
    for row in rows:
        values = {k: v for k, v in row.values().items() if k != "id"}
        link = values["context_data"].get("unsubscribe_url")
        if link:
            values["context_data"] = values["context_data"] | {"unsubscribe_url": "<link>"}
            values["content"] = values["content"].replace(link, "<link>")
            values["html_content"] = (values["html_content"] or "").replace(link, "<link>")
        comparable.append(values)
    return comparable


@pytest.fixture
def planning_settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"planning_process_from": 3})


async def test_a_large_slice_is_planned_in_the_planning_process_into_the_same_rows(planning_settings):
    planner = Planner(planning_settings)
    request, context = _planning(4)
    now = datetime.now(timezone.utc)
    try:
        rows, _ = await planner.queue_rows(request, context, now)
        assert planner._process is None  # not started: in a thread
        planner.start()  # a large audience's first slice starts it
        rows, plan = await planner.queue_rows(request, context, now)
        assert planner._process is not None  # it went to the process
        expected, expected_plan = queue_rows(request, context, planning_settings, now)
        assert _comparable(rows) == _comparable(expected) and len(rows) == 8  # e-mail + in-app each
        assert plan == expected_plan
        small_request, small = _planning(2)
        assert not planner.in_process(len(small.recipients))  # an event's handful stays in a thread
    finally:
        planner.close()


async def test_a_planning_process_that_died_fails_the_attempt_and_the_next_starts_anew(planning_settings):
    planner = Planner(planning_settings)
    request, context = _planning(3)
    now = datetime.now(timezone.utc)
    planner.start()
    try:
        await planner.queue_rows(request, context, now)
        assert planner._process is not None
        for pid in list(planner._process._processes):  # the planning process: kill -9, as the OOM killer would
            os.kill(pid, signal.SIGKILL)
        with pytest.raises(ApplicationError) as died:
            await planner.queue_rows(request, context, now)
        assert died.value.type == "PlanningProcessDied" and not died.value.non_retryable
        planner.start()  # the next attempt's slice: a new process
        rows, _ = await planner.queue_rows(request, context, now)
        assert len(rows) == 6 and planner._process is not None
    finally:
        planner.close()


def test_planning_in_a_process_can_be_turned_off(settings: Settings):
    off = Planner(settings.model_copy(update={"planning_process_from": 0}))
    off.start()
    assert off._process is None and not off.in_process(100_000)
    assert Planner(settings.model_copy(update={"planning_process_from": 500})).in_process(500)
    assert not Planner(settings.model_copy(update={"planning_process_from": 500})).in_process(499)
