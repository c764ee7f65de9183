"""IssueSlaWorkflow on the time-skipping server, fed by real events through the real pipeline:
due times from the escalation policies, tier after tier exactly once, re-arming, closing, reopening,
and a timer that fires while no worker is running."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select

from notiflow.client import NotificationClient
from notiflow.models import NotificationQueueRow
from notiflow.search import ISSUE_ID, ISSUE_PRIORITY, NOTIFICATION_TYPE
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, DIRECTORY, REPORTER, issue_dict, ref
from tests.time_skipping import add_users, event_at, mails_of_type, save_history, skip_to, wait_closed, wait_until
from workers.main import build_worker
from workflows.sla.rules import apply_observation, escalation_schedule, next_firing
from workflows.sla.types import (
    EscalationPolicy,
    EscalationTier,
    IssueObserved,
    SlaStatus,
)
from workflows.sla.workflows import IssueSlaWorkflow

CHANNELS = ("EMAIL", "IN_APP")


@pytest.fixture
async def nc(time_env, settings, ts_worker, db) -> NotificationClient:
    await add_users(db, DIRECTORY)
    return NotificationClient(time_env.client, settings)


async def publish(nc: NotificationClient, event) -> None:
    await wait_closed(nc.temporal.get_workflow_handle(await nc.publish(event)))


async def overdue_rows(db, issue_id: str) -> set[tuple[str, str, str, str]]:
    """(firing, recipient, channel, status) of every ISSUE_OVERDUE queue row of the issue."""
    async with db() as session:
        rows = (
            (
                await session.execute(
                    select(NotificationQueueRow).where(
                        NotificationQueueRow.issue_id == issue_id,
                        NotificationQueueRow.notification_type == "ISSUE_OVERDUE",
                    )
                )
            )
            .scalars()
            .all()
        )
    return {(r.context_data["source_id"].rsplit("/", 1)[1], r.recipient_id, r.delivery_method, r.status) for r in rows}


def sent(firing: str, *people) -> set[tuple[str, str, str, str]]:
    return {(firing, person.id, channel, "SENT") for person in people for channel in CHANNELS}


async def sla_status(handle, *, armed: bool = True) -> SlaStatus:
    """The SLA's status once its policy is loaded (or once it exists, if ``armed`` is False)."""

    async def ready():
        try:
            status = await handle.query(IssueSlaWorkflow.status)
        except Exception:  # not started yet
            return None
        return status if status.due_at or not armed else None

    return await wait_until(ready, what=f"{handle.id} to be armed")


async def expect_rows(db, issue_id: str, expected: set) -> None:
    async def match():
        return await overdue_rows(db, issue_id) == expected

    try:
        await wait_until(match, what="overdue notices")
    except AssertionError:
        raise AssertionError(f"overdue rows {sorted(await overdue_rows(db, issue_id))} != {sorted(expected)}") from None


async def overdue_mails(db, smtp, user) -> list:
    return [m for m in await mails_of_type(db, smtp, "ISSUE_OVERDUE") if m.rcpt_tos == [user.email]]


async def test_unresolved_high_issue_escalates_tier_by_tier_exactly_once(nc, time_env, db, smtp):
    now = await time_env.get_current_time()
    issue = issue_dict(priority="HIGH", assignee=ref(ASSIGNEE), created_at=now.isoformat())
    await publish(nc, event_at("ISSUE_CREATED", issue, now, actor=REPORTER))
    sla = time_env.client.get_workflow_handle_for(IssueSlaWorkflow.run, f"issue/{issue['id']}/sla")
    due = now + timedelta(hours=24)
    status = await sla_status(sla)
    assert (status.due_at, status.next_firing_at, status.next_tier, status.next_audience) == (due, due, 0, "assignee")
    attributes = (await sla.describe()).typed_search_attributes
    assert (attributes.get(ISSUE_ID), attributes.get(NOTIFICATION_TYPE), attributes.get(ISSUE_PRIORITY)) == (
        issue["id"],
        "ISSUE_OVERDUE",
        "HIGH",
    )

    await skip_to(time_env, due - timedelta(minutes=1))
    await asyncio.sleep(0.5)
    assert await overdue_rows(db, issue["id"]) == set()

    expected: set = set()
    tiers = [
        (timedelta(0), "tier-0-0", [ASSIGNEE]),
        (timedelta(hours=2), "tier-1-0", [ADMIN_EN, ADMIN_FR]),
        (timedelta(hours=4), "tier-2-0", [ADMIN_FR]),
        (timedelta(hours=8), "tier-2-1", [ADMIN_FR]),
        (timedelta(hours=12), "tier-2-2", [ADMIN_FR]),
        (timedelta(hours=16), "tier-2-3", [ADMIN_FR]),
    ]
    for after_due, firing, people in tiers:
        await skip_to(time_env, due + after_due + timedelta(minutes=1))
        expected |= sent(firing, *people)
        await expect_rows(db, issue["id"], expected)

    status = await sla.query(IssueSlaWorkflow.status)
    assert status.tier_reached == 2 and status.next_firing_at is None and not status.closed
    await skip_to(time_env, due + timedelta(days=3))  # the last tier repeated three times: nothing more
    await asyncio.sleep(0.5)
    assert await overdue_rows(db, issue["id"]) == expected
    counts = [len(await overdue_mails(db, smtp, person)) for person in (ASSIGNEE, ADMIN_EN, ADMIN_FR)]
    assert counts == [1, 1, 5]
    assert "escalation level 1" in (await overdue_mails(db, smtp, ADMIN_EN))[0].subject

    arm = f"{now:%Y%m%dT%H%M%SZ}-HIGH"
    notice = await time_env.client.get_workflow_handle(f"notify/sla/{issue['id']}/{arm}/tier-1-0").describe()
    assert notice.typed_search_attributes.get(ISSUE_ID) == issue["id"]  # "all escalations for ISS-…" are findable
    await save_history(sla, "issue_sla_escalations")


async def test_resolved_issue_never_goes_overdue_and_reopening_starts_a_fresh_sla(nc, time_env, db):
    created = await time_env.get_current_time()
    issue = issue_dict(priority="HIGH", assignee=ref(ASSIGNEE), created_at=created.isoformat())
    await publish(nc, event_at("ISSUE_CREATED", issue, created, actor=REPORTER))
    sla = time_env.client.get_workflow_handle_for(IssueSlaWorkflow.run, f"issue/{issue['id']}/sla")
    await sla_status(sla)

    await skip_to(time_env, created + timedelta(hours=23))
    resolved = issue | {"status": "RESOLVED", "resolution_notes": "Ribbon replaced"}
    await publish(nc, event_at("ISSUE_RESOLVED", resolved, created + timedelta(hours=23), actor=ASSIGNEE))
    finished = await wait_closed(sla)
    assert (await sla.result()).closed

    # A comment from before the resolution, delivered late, does not bring the SLA back.
    late = event_at(
        "ISSUE_COMMENT_ADDED",
        issue,
        created + timedelta(hours=1),
        actor=ASSIGNEE,
        comment={"body": "Looking at it.", "author": ref(ASSIGNEE)},
    )
    await publish(nc, late)
    await skip_to(time_env, created + timedelta(hours=48))
    await asyncio.sleep(0.5)
    assert (await sla.describe()).run_id == finished.run_id
    assert await overdue_rows(db, issue["id"]) == set()

    reopened_at = await time_env.get_current_time()
    await publish(nc, event_at("ISSUE_REOPENED", issue, reopened_at, actor=REPORTER))
    status = await sla_status(sla)
    assert status.due_at == reopened_at + timedelta(hours=24) and not status.closed
    await skip_to(time_env, reopened_at + timedelta(hours=24, minutes=1))
    await expect_rows(db, issue["id"], sent("tier-0-0", ASSIGNEE))
    async with db() as session:
        sources = set(
            (
                await session.execute(
                    select(NotificationQueueRow.context_data["source_id"].astext).where(
                        NotificationQueueRow.notification_type == "ISSUE_OVERDUE"
                    )
                )
            ).scalars()
        )
    assert sources == {f"sla/{issue['id']}/{reopened_at.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-HIGH/tier-0-0"}
    await save_history(sla, "issue_sla_reopened")


async def test_priority_raised_to_critical_rearms_from_creation_and_assignment_does_not(nc, time_env, db, smtp):
    created = await time_env.get_current_time()
    issue = issue_dict(priority="LOW", created_at=created.isoformat())
    await publish(nc, event_at("ISSUE_CREATED", issue, created, actor=REPORTER))
    sla = time_env.client.get_workflow_handle_for(IssueSlaWorkflow.run, f"issue/{issue['id']}/sla")
    assert (await sla_status(sla)).due_at == created + timedelta(days=7)

    await skip_to(time_env, created + timedelta(hours=1))
    critical = issue | {"priority": "CRITICAL"}
    await publish(
        nc,
        event_at(
            "ISSUE_STATUS_CHANGED",
            critical,
            created + timedelta(hours=1),
            changes={"priority": {"old": "LOW", "new": "CRITICAL"}},
        ),
    )
    await skip_to(time_env, created + timedelta(hours=2))
    assigned = critical | {"assignee": ref(ASSIGNEE)}
    await publish(
        nc,
        event_at(
            "ISSUE_ASSIGNED",
            assigned,
            created + timedelta(hours=2),
            changes={"assignee": {"old": None, "new": ASSIGNEE.id}},
        ),
    )
    status = await sla.query(IssueSlaWorkflow.status)
    assert status.due_at == created + timedelta(hours=4) and status.priority == "CRITICAL"
    assert (await sla.describe()).typed_search_attributes.get(ISSUE_PRIORITY) == "CRITICAL"

    await skip_to(time_env, created + timedelta(hours=3, minutes=59))
    await asyncio.sleep(0.5)
    assert await overdue_rows(db, issue["id"]) == set()
    await skip_to(time_env, created + timedelta(hours=4, minutes=1))
    await expect_rows(db, issue["id"], sent("tier-0-0", ASSIGNEE))
    assert len(await overdue_mails(db, smtp, ASSIGNEE)) == 1
    await save_history(sla, "issue_sla_rearmed")


async def test_timer_that_fires_while_no_worker_runs_is_sent_once_by_the_next_worker(time_env, settings, db, smtp):
    await add_users(db, DIRECTORY)
    nc = NotificationClient(time_env.client, settings)
    created: datetime = await time_env.get_current_time()
    issue = issue_dict(priority="CRITICAL", assignee=ref(ASSIGNEE), created_at=created.isoformat())
    sla = time_env.client.get_workflow_handle(f"issue/{issue['id']}/sla")
    # Worker A arms the timer, then stops. Without a workflow cache it leaves no sticky queue behind: the real
    # server releases a stopped worker's sticky queue, the test server cannot (it would wait for A forever).
    async with build_worker(time_env.client, settings, max_cached_workflows=0):
        await publish(nc, event_at("ISSUE_CREATED", issue, created, actor=REPORTER))
        await sla_status(sla)
    due = created + timedelta(hours=4)

    skipping = asyncio.create_task(skip_to(time_env, due + timedelta(minutes=30)))
    await asyncio.sleep(1.5)
    assert not skipping.done()  # the timer fired; the server's clock waits for a worker to take the task
    assert await overdue_rows(db, issue["id"]) == set()

    async with build_worker(time_env.client, settings):  # worker B: replays the history, sends the notice
        await skipping
        await expect_rows(db, issue["id"], sent("tier-0-0", ASSIGNEE))
        await asyncio.sleep(1.0)
    assert await overdue_rows(db, issue["id"]) == sent("tier-0-0", ASSIGNEE)
    assert len(await overdue_mails(db, smtp, ASSIGNEE)) == 1


def test_observe_rearms_on_priority_change_and_reopening_only_and_ignores_stale_events():
    created = datetime(2026, 11, 25, 8, tzinfo=timezone.utc)
    policies = {
        p: EscalationPolicy(priority=p, due_minutes=m) for p, m in (("HIGH", 1440), ("LOW", 10080), ("CRITICAL", 240))
    }

    def seen(event_type: str, hours: float, **issue) -> IssueObserved:
        issue = {"priority": "HIGH", "status": "OPEN", "assignee_id": None} | issue
        return IssueObserved(
            event_id=f"e-{hours}",
            type=event_type,
            occurred_at=created + timedelta(hours=hours),
            issue_id="ISS-1",
            created_at=created,
            policy=policies[issue["priority"]],
            **issue,
        )

    armed = apply_observation(None, seen("ISSUE_CREATED", 0)).model_copy(update={"fired": 1})
    assert armed.due_at == created + timedelta(hours=24)
    assigned = apply_observation(armed, seen("ISSUE_ASSIGNED", 2, assignee_id="u-1"))
    assert (assigned.arm, assigned.fired, assigned.assignee_id) == (armed.arm, 1, "u-1")
    assert (
        apply_observation(assigned, seen("ISSUE_STATUS_CHANGED", 1, priority="LOW")) == assigned
    )  # older than the latest
    raised = apply_observation(assigned, seen("ISSUE_STATUS_CHANGED", 3, priority="CRITICAL", assignee_id="u-1"))
    assert (raised.due_at, raised.fired) == (created + timedelta(hours=4), 0) and raised.arm != armed.arm
    resolved = apply_observation(raised, seen("ISSUE_RESOLVED", 4, priority="CRITICAL", status="RESOLVED"))
    assert resolved.closed and resolved.arm == raised.arm and next_firing(resolved) is None
    reopened = apply_observation(resolved, seen("ISSUE_REOPENED", 5, priority="CRITICAL"))
    assert not reopened.closed and reopened.due_at == created + timedelta(hours=9)


def test_escalation_schedule_repeats_the_last_tier():
    due = datetime(2026, 11, 26, 8, tzinfo=timezone.utc)
    policy = EscalationPolicy(
        priority="HIGH",
        due_minutes=1440,
        repeat_last=2,
        repeat_every_minutes=240,
        tiers=[
            EscalationTier(after_minutes=120, audience="admins"),
            EscalationTier(after_minutes=240, audience="on_call"),
        ],
    )
    assert [
        ((f.at - due) / timedelta(hours=1), f.tier, f.repeat, f.audience) for f in escalation_schedule(due, policy)
    ] == [(0, 0, 0, "assignee"), (2, 1, 0, "admins"), (4, 2, 0, "on_call"), (8, 2, 1, "on_call"), (12, 2, 2, "on_call")]
