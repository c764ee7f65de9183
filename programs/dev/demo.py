"""`notiflow demo`: a scripted issue lifecycle through the real stack, then a delivery report."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

from rich.console import Console
from rich.table import Table
from sqlalchemy import select

from notiflow.client import NotificationClient
from notiflow.contracts import IssueEvent, NotificationType, parse_event
from notiflow.db import make_engine, make_sessionmaker
from notiflow.models import NotificationQueueRow
from notiflow.runs import DeliveryOutcome
from programs.dev.stack import DevStack
from workflows.sla.types import SlaStatus

#: A person's channels, one column each in the runs table; the outside systems share one.
RUN_CHANNELS = ("EMAIL", "IN_APP", "SMS")
HOOK_CHANNELS = ("WEBHOOK", "SLACK", "TEAMS")


def lifecycle(now: datetime) -> list[IssueEvent]:
    """A HIGH issue created, assigned, commented and resolved; an overdue one; an auto-reported CRITICAL error."""
    clerk = {"id": "u-clerk", "name": "Lalao Rina", "email": "lalao@example.mg", "locale": "en"}
    agent = {"id": "u-agent", "name": "Rakoto Andry", "email": "rakoto@example.mg", "locale": "fr"}
    lead = {"id": "u-lead", "name": "Miora Rabe", "email": "miora.lead@example.mg"}
    bot = {"id": "u-bot", "name": "Error reporter"}
    created = now - timedelta(minutes=30)
    issue = {
        "id": "ISS-42",
        "title": "Licence card printer offline",
        "description": "The Antsirabe office printer rejects every card.",
        "category": "HARDWARE",
        "priority": "HIGH",
        "status": "OPEN",
        "reporter": clerk,
        "assignee": None,
        "is_auto_reported": False,
        "created_at": created.isoformat(),
        "resolution_notes": None,
    }
    at = lambda minutes: (created + timedelta(minutes=minutes)).isoformat()  # noqa: E731
    raw = [
        {
            "event_id": "demo-iss42-created",
            "type": "ISSUE_CREATED",
            "occurred_at": at(0),
            "actor": clerk,
            "issue": issue,
        },
        {
            "event_id": "demo-iss42-assigned",
            "type": "ISSUE_ASSIGNED",
            "occurred_at": at(5),
            "actor": lead,
            "issue": issue | {"assignee": agent, "status": "IN_PROGRESS"},
            "changes": {"assignee": {"old": None, "new": "u-agent"}},
        },
        {
            "event_id": "demo-iss42-comment",
            "type": "ISSUE_COMMENT_ADDED",
            "occurred_at": at(10),
            "actor": agent,
            "issue": issue | {"assignee": agent, "status": "IN_PROGRESS"},
            "comment": {"id": "c-1", "body": "Ribbon jammed; replacing it now.", "author": agent},
        },
        {
            "event_id": "demo-iss42-resolved",
            "type": "ISSUE_RESOLVED",
            "occurred_at": at(20),
            "actor": agent,
            "issue": issue
            | {"assignee": agent, "status": "RESOLVED", "resolution_notes": "Ribbon replaced, test card printed."},
        },
        # Filed yesterday, assigned, never resolved: 24 h for HIGH has passed, so its SLA escalates at once.
        {
            "event_id": "demo-iss51-assigned",
            "type": "ISSUE_ASSIGNED",
            "occurred_at": at(22),
            "actor": lead,
            "issue": {
                "id": "ISS-51",
                "title": "Kiosk touchscreen frozen at Mahajanga office",
                "category": "HARDWARE",
                "priority": "HIGH",
                "status": "IN_PROGRESS",
                "reporter": clerk,
                "assignee": agent,
                "created_at": (now - timedelta(hours=25)).isoformat(),
            },
        },
        {
            "event_id": "demo-iss77-auto",
            "type": "ISSUE_CREATED",
            "occurred_at": at(25),
            "actor": bot,
            "issue": {
                "id": "ISS-77",
                "title": "TypeError in licence renewal form",
                "category": "SOFTWARE",
                "priority": "CRITICAL",
                "status": "OPEN",
                "reporter": bot,
                "is_auto_reported": True,
                "created_at": at(25),
                "description": "Uncaught TypeError: cannot read 'expiry' of undefined",
            },
        },
    ]
    return [parse_event(e) for e in raw]


async def _wait_for_rows(sessions, notification_type: NotificationType, timeout: float = 60) -> None:
    """Until rows of that type exist and none is still PENDING (Temporal, not the demo, starts the runs that make them)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        async with sessions() as session:
            statuses = set(
                (
                    await session.execute(
                        select(NotificationQueueRow.status).where(
                            NotificationQueueRow.notification_type == notification_type
                        )
                    )
                ).scalars()
            )
        if statuses and "PENDING" not in statuses:
            return
        await asyncio.sleep(0.2)
    raise RuntimeError(f"{notification_type} was not delivered within {timeout:.0f} s")


async def _escalation(nc: NotificationClient, sessions) -> str:
    """Wait for ISS-51's overdue notice and read its SLA's status query: what fires next, and when."""
    await _wait_for_rows(sessions, NotificationType.ISSUE_OVERDUE)
    status = await nc.temporal.get_workflow_handle("issue/ISS-51/sla").query("status", result_type=SlaStatus)
    return (
        f"Escalation: ISS-51 was due {status.due_at:%Y-%m-%d %H:%M} UTC; tier {status.tier_reached} sent "
        f"(ISSUE_OVERDUE to the assignee); next: tier {status.next_tier} ({status.next_audience}) at "
        f"{status.next_firing_at:%H:%M} UTC — see issue/ISS-51/sla in the web UI"
    )


async def run_demo(nc: NotificationClient, database_url: str, console: Console) -> bool:
    """Publish the lifecycle, wait for every run, print the report; True when nothing failed."""
    events = lifecycle(datetime.now(timezone.utc))
    outcomes: list[tuple[IssueEvent, str, DeliveryOutcome]] = []
    started = asyncio.get_running_loop().time()
    for event in events:
        workflow_id = await nc.publish(event)
        outcome = await nc.temporal.get_workflow_handle(workflow_id, result_type=DeliveryOutcome).result()
        outcomes.append((event, workflow_id, outcome))
    elapsed = asyncio.get_running_loop().time() - started
    engine = make_engine(database_url, pool_size=1)
    sessions = make_sessionmaker(engine)
    try:
        escalation = await _escalation(nc, sessions)
        await nc.temporal.get_schedule_handle("summary-daily").trigger()
        await _wait_for_rows(sessions, NotificationType.DAILY_ISSUE_SUMMARY)
        async with sessions() as session:
            rows = (
                (
                    await session.execute(
                        select(NotificationQueueRow).order_by(
                            NotificationQueueRow.created_at,
                            NotificationQueueRow.recipient_id,
                            NotificationQueueRow.delivery_method,
                        )
                    )
                )
                .scalars()
                .all()
            )
    finally:
        await engine.dispose()

    runs = Table(title="Workflow runs (open them in the Temporal web UI)")
    for column in ("event", "workflow id", *(f"{ch} sent/failed/skipped" for ch in RUN_CHANNELS), "hooks sent"):
        runs.add_column(column)
    for event, workflow_id, outcome in outcomes:
        cells = [f"{c.sent}/{c.failed}/{c.skipped}" if (c := outcome.channels.get(ch)) else "-" for ch in RUN_CHANNELS]
        hooks = sum(c.sent for ch, c in outcome.channels.items() if ch in HOOK_CHANNELS)
        runs.add_row(f"{event.type} {event.issue.id}", workflow_id, *cells, str(hooks or "-"))
    console.print(runs)
    console.print(escalation)
    console.print("Daily summary: schedule summary-daily triggered once (it also runs every day at 08:00)")

    report = Table(title="Delivery report: who got what")
    for column in ("issue", "type", "recipient", "channel", "status"):
        report.add_column(column, no_wrap=True)
    report.add_column("subject / reason", no_wrap=True, overflow="ellipsis", max_width=56)
    for row in rows:
        style = {"SENT": "green", "FAILED": "red", "CANCELLED": "yellow"}.get(row.status, "")
        report.add_row(
            row.issue_id or "",
            row.notification_type,
            row.recipient_id or "",
            row.delivery_method,
            f"[{style}]{row.status}[/]" if style else row.status,
            row.error_message or row.subject or "",
        )
    console.print(report)
    console.print(
        f"{len(events)} events in {elapsed:.2f} s; {sum(r.status == 'SENT' for r in rows)} deliveries sent, "
        f"{sum(r.status == 'FAILED' for r in rows)} failed"
    )
    return not any(r.status == "FAILED" for r in rows)


def print_caught(stack: DevStack, console: Console) -> None:
    """What the local catchers received — mail, SMS, webhook/Slack/Teams — listed like their index.txt."""
    if stack.mail:
        console.print(f"{len(stack.mail.sink.messages)} mails caught by the local SMTP server")
    for catcher, title, what in (
        (stack.sms, "SMS caught by the local gateway", ("to", "text")),
        (stack.hooks, "webhook, Slack and Teams deliveries caught", ("path", "what")),
    ):
        if catcher is None:
            continue
        caught = catcher.caught()
        table = Table(title=f"{len(caught)} {title}")
        for column in ("file", *what):
            table.add_column(column, overflow="fold")
        for request in caught:
            line = catcher.describe(request).split("\t")
            table.add_row(request.file.name if request.file else "", *line[:1], " ".join(line[1:]))
        console.print(table)
